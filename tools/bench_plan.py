"""Planning 10,000 leaves × 100 files from a warm cache. Goal: ≤ 2 s.

The cache is warmed by writing its entry directly (a million real files would
measure the disk, not olmix); the config is real and goes through the whole
builder: load, validate, flatten, cache read, weights, budget, feasibility and
plan validation. Writing the plan file is timed separately.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from olmix.leaves import leaves
from olmix.loading.config import load_config
from olmix.planning import cache
from olmix.planning.plan import build_plan
from olmix.planning.planfile import write_plan
from olmix.planning.resolve import ResolvedLeaf, apply_path_map

SOURCES, TOPICS, BUCKETS, FILES = 10, 10, 100, 100


def config_text() -> str:
    lines = ["name: bench-10k", "proxy_model_id: olmo3_1b", "chinchilla_multiple: 1.0", "sources:"]
    for s in range(SOURCES):
        lines += [f"  - name: s{s}", "    topics:"]
        for t in range(TOPICS):
            lines += [f"      - name: t{t}", "        quality:"]
            for q in range(BUCKETS):
                lines += [f"          - name: q{q:03d}", f"            paths: ['s3://bench/s{s}/t{t}/q{q:03d}/*.npy']"]
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(config_text())
        path_map = [("s3://bench/", "/mirror/bench/")]
        lvs = leaves(load_config(config))
        resolved = []
        for leaf in lvs:
            folder = apply_path_map(leaf.paths[0], path_map).removesuffix("*.npy")
            files = {f"{folder}part-{i:05d}.npy": 10_000_000 for i in range(FILES)}
            resolved.append(ResolvedLeaf(leaf.name, (apply_path_map(leaf.paths[0], path_map),), files))
        directory = Path(tmp) / "cache"
        entry = cache.store(lvs, "uint32", path_map, resolved, directory)
        print(f"warm cache entry: {entry.stat().st_size / 1e6:.1f} MB for {len(lvs):,} leaves × {FILES} files")

        start = time.perf_counter()
        plan = build_plan(config, path_map=path_map, cache_directory=directory)
        wall = time.perf_counter() - start
        n_files = sum(len(x.files) for x in plan.runs[0].leaves)
        print(f"build_plan from warm cache: {len(plan.runs[0].leaves):,} leaves, {n_files:,} files: {wall:.2f} s")

        start = time.perf_counter()
        write_plan(plan, Path(tmp) / "plan.json")
        print(f"write_plan (validate + atomic write): {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
