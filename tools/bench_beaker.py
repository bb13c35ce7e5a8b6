"""Benchmark: the Beaker backend's specs for a 100-run group, and its calls to a stand-in Beaker service.

Building and checking the 100 experiment specs is measured offline (time,
peak Python memory with tracemalloc). Then the group is launched through the
real beaker-py client against tests/services/beakerservice (Beaker's REST and gRPC
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from olmix.backends import RunSpec

RUNS = 100
SETTINGS: dict[str, Any] = {
    "image": "beaker://ai2/olmix",
    "clusters": ["ai2/jupiter", "ai2/augusta"],
    "workspace": "ai2/olmix-bench",
    "budget": "ai2/oe-data",
    "priority": "high",
    "gpus": 8,
    "nodes": 2,
    "weka": [{"bucket": "oe-data-default", "mount_path": "/weka/oe-data-default"}],
}  # as a launch records them (olmix.backends.beakerspec.settings_from_config)


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
    if importlib.util.find_spec("tests.services.beakerservice") is None:
        print("service calls: skipped (tests/services/beakerservice, the stand-in Beaker service, is not here)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        _service(Path(tmp))


def _service(tmp: Path) -> None:
    """A 100-run group launched through the launcher and the real client, then its status read once."""
    import os

    from olmix.backends.beaker import BeakerBackend
    from olmix.launch import launcher
    from tests.services.beakerservice import UNSET_VARIABLES, BeakerService

    with BeakerService(tmp / "beaker") as svc:
        os.environ.update(svc.env)
        for name in UNSET_VARIABLES:
            os.environ.pop(name, None)
        svc.add_workspace(SETTINGS["workspace"])
        for cluster in SETTINGS["clusters"]:
            svc.add_cluster(cluster)
        config = tmp / "bench.yaml"
        config.write_text("name: bench\nsources: [{name: a, paths: [/a]}]\n")
        plan = {
            "plan_version": 1,
            "group": "bench-0123abcd",
            "config": {"path": str(config), "sha256": launcher.sha256_file(config), "overrides": []},
            "runs": [{"name": f"r{i:03d}", "leaves": []} for i in range(RUNS)],
        }
        command = ["{python}", "-m", "olmix.train", "--plan", "{plan}", "--out", "{run_dir}"]
        svc.reset_calls()
        started = time.perf_counter()
        launcher.launch(plan, config, BeakerBackend(**SETTINGS), tmp / "runs", command=command)
        launch_s, launch_calls = time.perf_counter() - started, dict(svc.calls)
        jobs = [e.id for e in svc.experiments()]
        for i, job in enumerate(jobs):  # a group under way: most running, some waiting, failed or done
            svc.set_job_state(job, ["running", "running", "queued", "succeeded", "failed"][i % 5])
        svc.reset_calls()
        started = time.perf_counter()
        launcher.statuses(tmp / "runs" / "bench-0123abcd", BeakerBackend(**SETTINGS))
        status_s, status_calls = time.perf_counter() - started, dict(svc.calls)

    def shown(calls: dict[str, int]) -> str:
        return ", ".join(f"{n} {name}" for name, n in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0])))

    print(f"launch {RUNS} runs: {sum(launch_calls.values())} service calls, {launch_s:.2f} s ({shown(launch_calls)})")
    print(
        f"one status read of {RUNS} runs (40 running, 20 queued, 20 succeeded, 20 failed): "
        f"{sum(status_calls.values())} service calls, {status_s:.2f} s ({shown(status_calls)})"
    )


def main() -> None:
    if importlib.util.find_spec("beaker") is None:
        print("skipped: beaker-py is not installed (pip install 'olmix[beaker]')")
        return
    specs()
    service()


if __name__ == "__main__":
    main()
