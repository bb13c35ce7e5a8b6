"""Benchmark: the Beaker backend's specs for a 100-run group, and its calls to a stand-in Beaker service.

Building and checking the 100 experiment specs is measured offline (time,
peak Python memory with tracemalloc). Then the group is launched through the
real beaker-py client against tests/beakerservice.py (Beaker's REST and gRPC
services on loopback) and its status read once: the service's own call
counters say how many calls each took. Skipped with the reason where
beaker-py or the stand-in is missing.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from olmix.backends import RunSpec

RUNS = 100
SETTINGS = {
    "image": "beaker://ai2/olmix",
    "clusters": ["ai2/jupiter", "ai2/augusta"],
    "workspace": "ai2/olmix-bench",
    "budget": "ai2/oe-data",
    "priority": "high",
    "gpus": 8,
    "nodes": 2,
    "weka": [{"bucket": "oe-data-default", "mount_path": "/weka/oe-data-default"}],
}


def _specs(folder: Path) -> list[RunSpec]:
    from olmix.backends import RunSpec

    out = []
    for i in range(RUNS):
        run_dir = folder / f"r{i:03d}"
        plan = run_dir / "plan.json"
        command = [sys.executable, "-m", "olmix.train", "--plan", str(plan), "--out", str(run_dir)]
        env = {"OMP_NUM_THREADS": "8"}
        out.append(RunSpec("bench-group", f"r{i:03d}", run_dir, plan, command, f"{i:032x}", env, ["WANDB_API_KEY"]))
    return out


def specs() -> None:
    from olmix.backends.beaker import BeakerBackend

    backend = BeakerBackend(**SETTINGS)
    runs = _specs(Path("/runs/bench-group"))
    backend.spec(runs[0])  # loads beaker-py's spec types once, as any launch does before its first run
    tracemalloc.start()
    started = time.perf_counter()
    built = [backend.spec(run) for run in runs]
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(built) == RUNS
    print(f"build and check {RUNS} experiment specs: {elapsed * 1000:.1f} ms, peak {peak / 2**20:.2f} MiB")


def service() -> None:
    if importlib.util.find_spec("tests.beakerservice") is None:
        print("service calls: skipped (tests/beakerservice.py, the stand-in Beaker service, is not here)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        _service(Path(tmp))


def _service(tmp: Path) -> None:
    raise NotImplementedError


def main() -> None:
    if importlib.util.find_spec("beaker") is None:
        print("skipped: beaker-py is not installed (pip install 'olmix[beaker]')")
        return
    specs()
    service()


if __name__ == "__main__":
    main()
