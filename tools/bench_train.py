"""Benchmark: one small demo run through `python -m olmix.train` on this machine.

Writes the demo corpus into a temporary folder, plans the shipped top-10%
quality-threshold config over it with olmix's planner (shrunk to olmo3_1m and
40 steps of 4 × 128 tokens with --set overrides, as `make demo` does), trains
it in a child process, and prints wall time, peak memory and tokens per second. Skipped with a note when the
`olmix[train]` extra is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = 40


def plan_demo_run(corpus: Path, run_dir: Path) -> Path:
    """Plan the shipped top-10% config over the demo corpus at `corpus`, shrunk to olmo3_1m and STEPS steps of
    4 × 128 tokens; write it to `run_dir`/plan.json and return that path."""
    from olmix.catalogue import TOKENS_PER_PARAMETER, parameters
    from olmix.planning.plan import build_plan
    from olmix.planning.planfile import write_plan

    config = Path(__file__).resolve().parents[1] / "config/examples/launch/quality_thresholds/quality_top10pct.yaml"
    multiple = STEPS * 4 * 128 / (TOKENS_PER_PARAMETER * parameters("olmo3_1m"))
    plan = build_plan(
        config,
        path_map=[("s3://ai2-llm/preprocessed/", f"{corpus}/")],
        use_cache=False,
        overrides=["proxy_model_id=olmo3_1m", f"chinchilla_multiple={multiple}"],
    )
    write_plan(plan, run_dir / "plan.json")
    return run_dir / "plan.json"


def main() -> None:
    if any(importlib.util.find_spec(m) is None for m in ("torch", "olmo_core")):
        print("bench_train: skipped, the olmix[train] extra is not installed")
        return
    from olmix.demodata import write_corpus

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        started = time.perf_counter()
        write_corpus(root, seed=0)
        corpus_seconds = time.perf_counter() - started
        run_dir = Path(tmp) / "runs" / "bench" / "quality-top10pct"
        run_dir.mkdir(parents=True)
        plan_demo_run(root, run_dir)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "olmix.train", "--plan", str(run_dir / "plan.json"), "--device", "cpu"],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            sys.exit(1)
        metrics = json.loads((run_dir / "metrics.json").read_text())
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    sources = metrics["heldout"]["sources"]
    print(f"demo corpus ({os.cpu_count()} cores): written in {corpus_seconds:.1f} s")
    print(
        f"demo run olmo3_1m, {metrics['steps']} steps × 4 × 128 tokens on cpu: "
        f"wall {wall:.1f} s (training {metrics['train_seconds']:.1f} s), "
        f"peak RSS {peak / 2**20:.0f} MiB, {metrics['tokens_per_second']:.0f} tokens/s trained"
    )
    print(
        f"  final train loss {metrics['final_train_loss']:.3f}; held-out loss "
        + ", ".join(f"{s} {v['loss']:.3f}" for s, v in sources.items())
    )


if __name__ == "__main__":
    main()
