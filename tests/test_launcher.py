from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from olmix import launcher
from olmix.backends import RunState
from olmix.backends.local import LocalBackend

from .conftest import REPO

CONFIG = REPO / "config/examples/minimal.yaml"
RUNS = ["run-a", "run-b", "run-c"]


def make_plan(runs: list[str] = RUNS, config: Path = CONFIG) -> dict[str, Any]:
    return {
        "plan_version": 1,
        "group": "g-0123abcd",
        "config": {"path": str(config), "sha256": launcher.sha256_file(config), "overrides": []},
        "runs": [{"name": name, "leaves": []} for name in runs],
    }


def trainer(tmp_path: Path, body: str) -> list[str]:
    """A trainer command running `body` (Python) with RUN and LOG (a shared append-only file) defined."""
    script = tmp_path / "trainer.py"
    script.write_text(
        "import os, sys, time\nRUN = sys.argv[1]\nLOG = sys.argv[2]\n"
        "def log(event):\n"
        "    with open(LOG, 'a') as f:\n"
        "        f.write(f'{RUN} {event} {time.time()}\\n')\n" + body
    )
    return [sys.executable, str(script), "{run}", str(tmp_path / "events.log")]


def events(tmp_path: Path) -> list[tuple[str, str, float]]:
    path = tmp_path / "events.log"
    if not path.exists():
        return []
    return [(r, e, float(t)) for r, e, t in (line.split() for line in path.read_text().splitlines())]


def wait_finished(group_dir: Path, backend: LocalBackend, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, found = launcher.statuses(group_dir, backend)
        if all(s is not None and s.state.finished for s in found.values()):
            return found
        time.sleep(0.1)
    raise AssertionError(f"runs did not finish: {found}")


def test_launch_runs_every_run_once_and_records_it(tmp_path: Path) -> None:
    backend = LocalBackend()
    command = trainer(tmp_path, "log('start')\nprint('training', RUN)\n")
    results = launcher.launch(make_plan(), CONFIG, backend, tmp_path / "out", command=command)
    assert [(r.run, r.new) for r in results] == [(name, True) for name in RUNS]
    group_dir = tmp_path / "out" / "g-0123abcd"
    found = wait_finished(group_dir, backend)
    assert {name: s.state for name, s in found.items()} == dict.fromkeys(RUNS, RunState.SUCCEEDED)
    assert sorted(r for r, e, _ in events(tmp_path)) == RUNS
    assert (group_dir / "run-b" / "train.log").read_text() == "training run-b\n"
    record = json.loads((group_dir / "launch.json").read_text())
    assert record["config"]["sha256"] == launcher.sha256_file(CONFIG)
    assert [r["state"] for r in record["runs"]] == ["submitted"] * 3
    assert json.loads((group_dir / "run-c" / "plan.json").read_text())["runs"] == [{"name": "run-c", "leaves": []}]
    # Launching the same group again submits nothing.
    again = launcher.launch(make_plan(), CONFIG, backend, tmp_path / "out", command=command)
    assert [r.new for r in again] == [False] * 3
    assert len(events(tmp_path)) == 3


KILL_POINTS = [
    ("before-submit", 1),
    ("before-submit", 2),
    ("after-submit", 1),
    ("after-submit", 3),
    ("mid-save", 1),  # writing the first record
    ("mid-save", 3),  # run-a marked submitting, about to be marked submitted
    ("mid-save", 5),
]


@pytest.mark.slow
@pytest.mark.parametrize(("where", "n"), KILL_POINTS)
def test_a_killed_launch_resumes_submitting_every_run_exactly_once(tmp_path: Path, where: str, n: int) -> None:
    command = trainer(tmp_path, "log('start')\n")
    out = tmp_path / "out"
    args = {"plan": make_plan(), "config": str(CONFIG), "output": str(out), "command": command, "kill": [where, n]}
    proc = subprocess.run([sys.executable, str(REPO / "tests/launch_killer.py"), json.dumps(args)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    backend = LocalBackend()
    results = launcher.launch(make_plan(), CONFIG, backend, out, command=command)
    assert sorted(r.run for r in results) == RUNS
    wait_finished(out / "g-0123abcd", backend)
    assert sorted(r for r, e, _ in events(tmp_path)) == RUNS  # each run started exactly once


@pytest.mark.slow
def test_max_parallel_one_never_overlaps(tmp_path: Path) -> None:
    backend = LocalBackend(max_parallel=1)
    command = trainer(tmp_path, "log('start')\ntime.sleep(0.3)\nlog('end')\n")
    launcher.launch(make_plan(), CONFIG, backend, tmp_path / "out", command=command)
    wait_finished(tmp_path / "out" / "g-0123abcd", backend)
    spans = sorted(
        (t_start, t_end)
        for run in RUNS
        for t_start in [t for r, e, t in events(tmp_path) if r == run and e == "start"]
        for t_end in [t for r, e, t in events(tmp_path) if r == run and e == "end"]
    )
    assert len(spans) == 3
    assert all(prev_end <= next_start for (_, prev_end), (next_start, _) in itertools.pairwise(spans))


@pytest.mark.slow
def test_cancel_stops_the_whole_process_group(tmp_path: Path) -> None:
    backend = LocalBackend(max_parallel=2)
    body = (
        "import subprocess\nchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "log(f'child:{child.pid}')\ntime.sleep(60)\n"
    )
    launcher.launch(make_plan(["slow"]), CONFIG, backend, tmp_path / "out", command=trainer(tmp_path, body))
    group_dir = tmp_path / "out" / "g-0123abcd"
    deadline = time.monotonic() + 20
    while not any(e.startswith("child:") for _, e, _ in events(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    child_pid = int(next(e.removeprefix("child:") for _, e, _ in events(tmp_path) if e.startswith("child:")))
    running = launcher.statuses(group_dir, backend)[1]["slow"]
    assert running is not None and running.state == RunState.RUNNING
    assert launcher.cancel(group_dir, backend) == ["slow"]
    found = wait_finished(group_dir, backend)
    assert found["slow"].state == RunState.CANCELLED
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    state = Path(f"/proc/{child_pid}/stat").read_text().split()[2] if Path(f"/proc/{child_pid}").exists() else "gone"
    assert state in ("gone", "Z")
    assert launcher.cancel(group_dir, backend) == []  # nothing left to cancel


def test_secrets_never_reach_records_or_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = "s3cr3t-planted-value-8d7f"
    monkeypatch.setenv("OLMIX_TEST_TOKEN", planted)
    backend = LocalBackend()
    body = "print('token is', os.environ['OLMIX_TEST_TOKEN'])\n"
    launcher.launch(
        make_plan(["r"]),
        CONFIG,
        backend,
        tmp_path / "out",
        command=trainer(tmp_path, body),
        secrets=["OLMIX_TEST_TOKEN"],
    )
    group_dir = tmp_path / "out" / "g-0123abcd"
    wait_finished(group_dir, backend)
    assert (group_dir / "r" / "train.log").read_text() == "token is ***\n"
    written = [p for p in group_dir.rglob("*") if p.is_file()]
    assert len(written) >= 6
    assert not [p for p in written if planted.encode() in p.read_bytes()]


def test_missing_secret_submits_nothing(tmp_path: Path) -> None:
    os.environ.pop("OLMIX_TEST_ABSENT", None)
    with pytest.raises(launcher.LaunchError, match="OLMIX_TEST_ABSENT"):
        launcher.launch(
            make_plan(), CONFIG, LocalBackend(), tmp_path / "out", command=["true"], secrets=["OLMIX_TEST_ABSENT"]
        )
    assert not (tmp_path / "out").exists()


def test_resuming_with_a_changed_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.read_text())
    launcher.launch(make_plan(["r"], config), config, LocalBackend(), tmp_path / "out", command=["true"])
    config.write_text(CONFIG.read_text() + "# edited\n")
    with pytest.raises(launcher.LaunchError, match="different content"):
        launcher.launch(make_plan(["r"], config), config, LocalBackend(), tmp_path / "out", command=["true"])


def test_a_trainer_that_fails_is_failed_with_its_exit_code(tmp_path: Path) -> None:
    backend = LocalBackend()
    launcher.launch(make_plan(["r"]), CONFIG, backend, tmp_path / "out", command=trainer(tmp_path, "sys.exit(3)\n"))
    found = wait_finished(tmp_path / "out" / "g-0123abcd", backend)
    assert (found["r"].state, found["r"].exit_code) == (RunState.FAILED, 3)
