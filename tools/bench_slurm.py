"""Benchmark: the Slurm backend against a private one-node Slurm (tests/slurmcluster.py).

A 100-run group submitted as one job array and run by run, and its status
read with one squeue call beside one call per run: scheduler calls and wall
time. The jobs are held (`--hold`), so only the scheduler is measured. Then
the demo's top-10% run trained through sbatch and srun, for tokens per
second beside `bench_train` (no Slurm). Skipped with the reason where Slurm
is not installed or this is not root.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

RUNS = 100
REPO = Path(__file__).resolve().parents[1]


def scheduler(tmp: Path) -> None:
    from olmix.backends import RunSpec
    from olmix.backends.slurm import SlurmBackend

    backend = SlurmBackend(sbatch_args=["--hold"])

    def specs(kind: str, token: str) -> list[RunSpec]:
        folder = tmp / kind
        return [
            RunSpec(kind, f"r{i}", folder / f"r{i}", folder / f"r{i}/plan.json", ["true"], token.format(i=i))
            for i in range(RUNS)
        ]

    array, single = specs("array", "array.{i}"), specs("single", "single{i}")
    started = time.perf_counter()
    array_ids = backend.submit_many(array)
    array_s, array_calls = time.perf_counter() - started, len(backend.calls)
    backend.calls.clear()
    started = time.perf_counter()
    single_ids = [backend.submit(spec) for spec in single]
    single_s, single_calls = time.perf_counter() - started, len(backend.calls)
    dirs = [spec.run_dir for spec in array]
    backend.calls.clear()
    started = time.perf_counter()
    found = backend.query(array_ids, dirs)
    batch_s, batch_calls = time.perf_counter() - started, list(backend.calls)
    backend.calls.clear()
    started = time.perf_counter()
    for job_id, run_dir in zip(array_ids, dirs, strict=True):
        backend.status(job_id, run_dir)
    each_s, each_calls = time.perf_counter() - started, len(backend.calls)
    assert len(found) == RUNS and {s.state.value for s in found.values()} == {"pending"}
    print(f"submit {RUNS} runs as one job array: {array_calls} sbatch call, {array_s:.2f} s")
    print(f"submit {RUNS} runs one by one:       {single_calls} sbatch calls, {single_s:.2f} s")
    print(f"status of {RUNS} runs in one query:  {len(batch_calls)} call ({', '.join(batch_calls)}), {batch_s:.3f} s")
    print(f"status of {RUNS} runs one by one:    {each_calls} calls, {each_s:.2f} s")
    backend.cancel_many(array_ids + single_ids)


def training(tmp: Path) -> None:
    from olmix.backends import RunSpec
    from olmix.backends.slurm import SlurmBackend
    from olmix.demodata import write_corpus
    from tools.bench_train import plan_demo_run

    root = tmp / "corpus"
    write_corpus(root, seed=0)
    run_dir = tmp / "runs" / "bench" / "quality-top10pct"
    run_dir.mkdir(parents=True)
    plan_demo_run(root, run_dir)
    command = [sys.executable, "-m", "olmix.train", "--plan", str(run_dir / "plan.json"), "--device", "cpu"]
    spec = RunSpec("bench", run_dir.name, run_dir, run_dir / "plan.json", command, "benchtrain")
    backend = SlurmBackend()
    started = time.perf_counter()
    job_id = backend.submit(spec)
    while not (status := backend.status(job_id, run_dir)).state.finished:
        time.sleep(0.5)
    wall = time.perf_counter() - started
    if status.exit_code != 0:
        print((run_dir / "train.log").read_text()[-3000:], file=sys.stderr)
        sys.exit(1)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(
        f"demo run olmo3_1m, {metrics['steps']} steps × 4 × 128 tokens on cpu under sbatch + srun: "
        f"wall {wall:.1f} s from sbatch to exit (training {metrics['train_seconds']:.1f} s), "
        f"{metrics['tokens_per_second']:.0f} tokens/s trained"
    )


def main() -> None:
    sys.path.insert(0, str(REPO))
    try:
        from tests import slurmcluster
    except ImportError:
        print("bench_slurm: skipped, needs a source checkout (tests/slurmcluster.py)")
        return
    if (reason := slurmcluster.unavailable()) is not None:
        print(f"bench_slurm: skipped, {reason}")
        return
    old = os.environ.get("SLURM_CONF")
    with tempfile.TemporaryDirectory() as tmp, slurmcluster.running() as cluster:
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            scheduler(Path(tmp))
            if all(importlib.util.find_spec(m) is not None for m in ("torch", "olmo_core")):
                cluster.wait_idle()
                training(Path(tmp))
            else:
                print("bench_slurm training: skipped, the olmix[train] extra is not installed")
        finally:
            if old is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = old


if __name__ == "__main__":
    main()
