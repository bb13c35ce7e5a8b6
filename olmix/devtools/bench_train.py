"""Benchmark: one small demo run through `python -m olmix.train` on this machine.

Writes the demo corpus into a temporary folder, plans one quality-threshold
run over it by hand (top 10%: vigintiles 19 and 20 of the six topics, plus
arxiv and wikipedia, olmo3_1m), trains it in a child process, and prints wall
time, peak memory and tokens per second. Skipped with a note when the
`olmix[train]` extra is missing.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STEPS = 40


def demo_plan(
    root: Path, requested_tokens: int, *, buckets: tuple[int, ...] = (19, 20), model: str = "olmo3_1m"
) -> dict[str, Any]:
    """A plan of one run over the demo corpus keeping `buckets` of every topic, plus arxiv and wikipedia."""
    from olmix import demodata

    folders = [
        (f"all_dressed:{topic}:vigintile_{bucket:04d}", f"{demodata.ALL_DRESSED}/{topic}/vigintile_{bucket:04d}")
        for topic in demodata.TOPICS
        for bucket in buckets
    ]
    folders += [("arxiv", demodata.ARXIV), ("wikipedia", demodata.WIKIPEDIA)]
    leaves = []
    for name, folder in folders:
        path = root / folder / demodata.FILE
        tokens = path.stat().st_size // 4
        ratio = 1 / len(folders)
        needed = math.ceil(requested_tokens * ratio)
        leaves.append(
            {
                "name": name,
                "ratio": ratio,
                "max_repetition_factor": 1.0,
                "tokens_available": tokens,
                "tokens_needed": needed,
                "repetition": needed / tokens,
                "files": {str(path): tokens},
            }
        )
    run = {
        "name": f"quality-top{5 * len(buckets)}pct",
        "model": model,
        "parameters": 1_000_000,
        "chinchilla_multiple": requested_tokens / 20_000_000,
        "requested_tokens": requested_tokens,
        "seed": 42,
        "dtype": "uint32",
        "tokenizer": "dolma2",
        "global_batch_size": None,
        "device_batch_size": 4,
        "leaves": leaves,
    }
    return {"plan_version": 1, "olmix_version": "0.1.0", "group": "bench", "runs": [run]}


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
        (run_dir / "plan.json").write_text(json.dumps(demo_plan(root, STEPS * 4 * 128)))
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
