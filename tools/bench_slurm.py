"""Benchmark: the Slurm backend against a private one-node Slurm (tests/services/slurmcluster.py).

A 100-run group through the launcher (`launch run`, `status`, `cancel`) as
one job array and, beside it, run by run (one sbatch and one scancel per
run), and its status read with one query beside one call per run: scheduler
calls and wall time. The jobs are held (`--hold`), so only the scheduler is
measured. Then the demo's top-10% run trained through sbatch and srun, and
through sbatch, srun and torchrun with two CPU processes, for tokens per
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

RUNS = 100
REPO = Path(__file__).resolve().parents[1]


def _plan(group: str) -> dict[str, Any]:
    from olmix.launch import launcher

    config = REPO / "config/examples/minimal.yaml"
    return {
        "plan_version": 1,
        "group": group,
        "config": {"path": str(config), "sha256": launcher.sha256_file(config), "overrides": []},
        "runs": [{"name": f"r{i:03d}", "leaves": []} for i in range(RUNS)],
    }


def _timed(backend: Any, work: Callable[[], Any]) -> tuple[Any, float, list[str]]:
    backend.calls.clear()
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started, list(backend.calls)


def _calls(calls: list[str]) -> str:
    counts = {name: calls.count(name) for name in dict.fromkeys(calls)}
    return " + ".join(f"{n} {name}" for name, n in counts.items()) or "no scheduler call"


def _group(tmp: Path, label: str, backend: Any) -> tuple[Any, ...]:
    """Launch, status and cancel of one 100-run group: (label, then calls and seconds of each)."""
    from olmix.launch import launcher

    group = "bench-" + label.split()[0]
    plan = _plan(group)
    config = Path(plan["config"]["path"])
    results, submit_s, submit_calls = _timed(
        backend, lambda: launcher.launch(plan, config, backend, tmp / "runs", command=["true"])
    )
    assert len(results) == RUNS
    group_dir = tmp / "runs" / group
    (_, found), status_s, status_calls = _timed(backend, lambda: launcher.statuses(group_dir, backend))
    assert {s.state.value for s in found.values() if s} == {"pending"}
    cancelled, cancel_s, cancel_calls = _timed(backend, lambda: launcher.cancel(group_dir, backend))
    assert len(cancelled) == RUNS
    return label, submit_calls, submit_s, status_calls, status_s, cancel_calls, cancel_s


def scheduler(tmp: Path) -> None:
    """A 100-run group through the launcher (launch, status, cancel): as one array, and run by run."""
    from olmix.backends.slurm import SlurmBackend
    from olmix.launch import launcher

    class RunByRun(SlurmBackend):
        """The Slurm backend as a backend without arrays or group cancel: the launcher's per-run path."""

        submits_together = False

        def cancel(self, job_id: str, run_dir: Path) -> None:
            super().cancel_many([(job_id, run_dir)])

        def cancel_many(self, jobs: list[tuple[str, Path]]) -> None:
            for job_id, run_dir in jobs:
                self.cancel(job_id, run_dir)

    rows = [
        _group(tmp, "one job array", SlurmBackend(sbatch_args=["--hold"])),
        _group(tmp, "run by run", RunByRun(sbatch_args=["--hold"])),
    ]
    # Status asked run by run, as a backend without a batch query would (one squeue per run).
    group_dir = tmp / "runs" / "bench-one"
    ids = [(str(e.job_id), group_dir / e.name) for e in launcher.read_record(group_dir).runs]
    each = SlurmBackend()
    _, each_s, each_calls = _timed(each, lambda: [each.status(j, d) for j, d in ids])
    print(f"a {RUNS}-run group through the launcher (held jobs: the scheduler alone is measured)")
    for label, submit_calls, submit_s, status_calls, status_s, cancel_calls, cancel_s in rows:
        print(f"  {label:<13} launch run: {_calls(submit_calls)}, {submit_s:.2f} s")
        print(f"  {label:<13} status:     {_calls(status_calls)}, {status_s:.3f} s")
        print(f"  {label:<13} cancel:     {_calls(cancel_calls)}, {cancel_s:.2f} s")
    print(f"  status asked run by run: {_calls(each_calls)}, {each_s:.2f} s")


def training(tmp: Path, processes: int) -> None:
    """The demo's top-10% run trained under sbatch + srun (+ torchrun with more than one process), on the CPU."""
    from olmix.backends import RunSpec
    from olmix.backends.slurm import SlurmBackend
    from olmix.demodata import write_corpus
    from tools.bench_train import plan_demo_run

    root = tmp / "corpus"
    if not root.exists():
        write_corpus(root, seed=0)
    run_dir = tmp / "runs" / f"bench-train-{processes}" / "quality-top10pct"
    run_dir.mkdir(parents=True)
    plan_demo_run(root, run_dir)
    command = [sys.executable, "-m", "olmix.train", "--plan", str(run_dir / "plan.json"), "--device", "cpu"]
    spec = RunSpec("bench", run_dir.name, run_dir, run_dir / "plan.json", command, f"benchtrain{processes}")
    cores = len(os.sched_getaffinity(0))
    backend = SlurmBackend(processes_per_node=processes, sbatch_args=[f"--cpus-per-task={cores}"])
    started = time.perf_counter()
    job_id = backend.submit(spec)
    while not (status := backend.status(job_id, run_dir)).state.finished:
        time.sleep(0.5)
    wall = time.perf_counter() - started
    if status.exit_code != 0:
        print((run_dir / "train.log").read_text()[-3000:], file=sys.stderr)
        sys.exit(1)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    how = "sbatch + srun" if processes == 1 else f"sbatch + srun + torchrun, {processes} processes"
    print(
        f"demo run olmo3_1m, {metrics['steps']} steps × {metrics['settings']['global_batch_size']} × "
        f"{metrics['settings']['sequence_length']} tokens on {cores} cpu cores under {how}: "
        f"wall {wall:.1f} s from sbatch to exit (training {metrics['train_seconds']:.1f} s), "
        f"{metrics['tokens_per_second']:.0f} tokens/s trained"
    )


def main() -> None:
    sys.path.insert(0, str(REPO))
    try:
        from tests.services import slurmcluster
    except ImportError:
        print("bench_slurm: skipped, needs a source checkout (tests/services/slurmcluster.py)")
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
                for processes in (1, 2):
                    cluster.wait_idle()
                    training(Path(tmp), processes)
            else:
                print("bench_slurm training: skipped, the olmix[train] extra is not installed")
        finally:
            if old is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = old


if __name__ == "__main__":
    main()
