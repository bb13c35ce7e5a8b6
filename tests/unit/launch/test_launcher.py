from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from olmix import runpaths
from olmix.backends import RunState
from olmix.backends.local import LocalBackend
from olmix.errors import ExtraMissing, OlmixError
from olmix.launch import launcher
from tests.conftest import REPO
from tests.support.launch_killer import killed
from tests.support.launches import CONFIG, RUNS, make_plan, wait_finished
from tests.support.polling import poll
from tests.support.slow_backend import SlowBackend, submissions


def trainer(tmp_path: Path, body: str, name: str = "trainer.py") -> list[str]:
    """A trainer command running `body` (Python) with RUN and LOG (a shared append-only file) defined."""
    script = tmp_path / name
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
    killed(args)
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


# -- one writer per record: status and cancel racing a resumed launch ---------------------------------------


def actor(args: dict[str, Any]) -> subprocess.Popen[bytes]:
    """A `tests.support.launch_actor` process: a launch, a status or a cancel from another terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.launch_actor", json.dumps(args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def killed_launch(tmp_path: Path, plan: dict[str, Any], command: list[str], backend: dict[str, Any], n: int) -> None:
    """A launch SIGKILLed right after its n-th submission, before recording it."""
    args = {
        "action": "launch",
        "backend": backend,
        "plan": plan,
        "config": str(CONFIG),
        "output": str(tmp_path / "out"),
        "command": command,
        "kill": ["after-submit", n],
    }
    proc = actor(args)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err.decode()


@pytest.mark.parametrize("action", ["status", "cancel"])
def test_a_status_or_cancel_that_read_before_a_resume_never_saves_its_older_copy(tmp_path: Path, action: str) -> None:
    # The order that made a resume submit runs twice, made certain: status (or cancel) reads the record of a
    # killed launch, its backend call outlasts a whole resume, and only then does it save.
    names = [f"run-{i}" for i in range(6)]
    plan, group_dir = make_plan(names), tmp_path / "out" / "g-0123abcd"
    command = trainer(tmp_path, "log('start')\ntime.sleep(2)\n")
    counted: dict[str, Any] = {"submissions": str(tmp_path / "submissions")}
    killed_launch(tmp_path, plan, command, counted, n=2)
    gate = tmp_path / "gate"
    slow = actor(
        {"action": action, "group_dir": str(group_dir), "runs": ["run-0"], "backend": {**counted, "gate": str(gate)}}
    )
    poll(Path(f"{gate}.waiting").exists, f"the {action}'s backend call to begin")

    backend = SlowBackend(**counted)
    resumed = launcher.launch(plan, CONFIG, backend, tmp_path / "out", command=command)
    assert [r.new for r in resumed] == [False, False, True, True, True, True]  # run-1 started, not recorded
    gate.touch()
    _, err = slow.communicate(timeout=60)
    assert slow.returncode == 0, err.decode()

    again = launcher.launch(plan, CONFIG, backend, tmp_path / "out", command=command)
    assert [(r.run, r.job_id, r.new) for r in again] == [(r.run, r.job_id, False) for r in resumed]
    assert submissions(tmp_path / "submissions") == names
    record = launcher.read_record(group_dir)
    assert [(e.state, e.job_id) for e in record.runs] == [("submitted", r.job_id) for r in resumed]
    if action == "cancel":  # what the cancel did is kept too
        assert [e.name for e in record.runs if e.cancelled_at is not None] in (["run-0"], [])
    launcher.cancel(group_dir, LocalBackend())


@pytest.mark.slow  # three looping processes beside two launches
def test_status_and_cancel_loops_through_killed_and_resumed_launches_submit_each_run_once(tmp_path: Path) -> None:
    names = [f"run-{i}" for i in range(8)]
    plan, group_dir = make_plan(names), tmp_path / "out" / "g-0123abcd"
    command = trainer(tmp_path, "log('start')\n")
    counted: dict[str, Any] = {"submissions": str(tmp_path / "submissions")}
    killed_launch(tmp_path, plan, command, counted, n=3)
    stop = tmp_path / "stop"
    slow = {**counted, "delay_s": 0.05}  # per run asked: a group's status takes longer than a resume
    loops = [
        ("status", None, tmp_path / "done-status-1"),
        ("status", None, tmp_path / "done-status-2"),
        ("cancel", ["run-7"], tmp_path / "done-cancel"),
    ]
    procs = [
        actor(
            {
                "action": action,
                "group_dir": str(group_dir),
                "runs": runs,
                "backend": slow,
                "until": str(stop),
                "done": str(done),
            }
        )
        for action, runs, done in loops
    ]

    def cycles() -> list[int]:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"a loop ended early: {proc.communicate()[1].decode()}")
        return [len(done.read_text().splitlines()) if done.exists() else 0 for _, _, done in loops]

    def let_every_loop_finish_a_round() -> None:
        # two more rounds each: the round under way when the resume ended has saved by then
        start = cycles()
        poll(lambda: all(now >= then + 2 for now, then in zip(cycles(), start, strict=True)), "two rounds of each loop")

    let_every_loop_finish_a_round()
    killed_launch(tmp_path, plan, command, counted, n=2)  # a resume, killed too
    let_every_loop_finish_a_round()
    backend = SlowBackend(**counted)
    launcher.launch(plan, CONFIG, backend, tmp_path / "out", command=command)
    let_every_loop_finish_a_round()
    stop.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    final = launcher.launch(plan, CONFIG, backend, tmp_path / "out", command=command)
    assert [r.new for r in final] == [False] * 8
    # run-7 was still to submit when the cancel loop began: it asked for it to stop, so it never started
    assert submissions(tmp_path / "submissions") == names[:7]
    assert [(r.run, r.job_id) for r in final if r.cancelled] == [("run-7", "")]
    poll(lambda: all(s is None or s.state.finished for s in launcher.statuses(group_dir, backend)[1].values()), "runs")
    assert Counter(r for r, e, _ in events(tmp_path)).most_common(1)[0][1] == 1  # no run trained twice


def test_a_trainer_whose_runner_was_killed_is_orphaned_not_failed_and_cancel_stops_it(tmp_path: Path) -> None:
    backend = LocalBackend()
    body = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nlog(f'pid:{os.getpid()}')\ntime.sleep(60)\n"
    (result,) = launcher.launch(make_plan(["r"]), CONFIG, backend, tmp_path / "out", command=trainer(tmp_path, body))
    group_dir = tmp_path / "out" / "g-0123abcd"
    started = poll(lambda: [e for _, e, _ in events(tmp_path) if e.startswith("pid:")], "the trainer to start")
    trainer_pid = int(started[0].removeprefix("pid:"))
    os.kill(int(result.job_id), signal.SIGKILL)  # the runner, not the trainer
    poll(lambda: not Path(f"/proc/{result.job_id}").exists() or _zombie(int(result.job_id)), "the runner to die")

    found = launcher.statuses(group_dir, backend)[1]["r"]
    assert found is not None and found.state == RunState.ORPHANED
    assert f"pids {trainer_pid}" in found.detail
    assert launcher.read_record(group_dir).runs[0].status.state == "orphaned"  # type: ignore[union-attr]

    assert launcher.cancel(group_dir, ShortGrace(), ["r"]) == ["r"]  # SIGTERM ignored: SIGKILL after the grace
    assert _zombie(trainer_pid) or not Path(f"/proc/{trainer_pid}").exists()
    assert launcher.statuses(group_dir, backend)[1]["r"].state == RunState.CANCELLED  # type: ignore[union-attr]
    assert launcher.cancel(group_dir, backend) == []


class ShortGrace(LocalBackend):
    def cancel(self, job_id: str, run_dir: Path, grace_s: float = 0.5) -> None:
        super().cancel(job_id, run_dir, grace_s)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_resume_with_a_corrected_command_uses_it_for_the_runs_left_and_records_the_change(tmp_path: Path) -> None:
    out = tmp_path / "out"
    old = trainer(tmp_path, "log('old')\n")
    args = {
        "plan": make_plan(),
        "config": str(CONFIG),
        "output": str(out),
        "command": old,
        "kill": ["before-submit", 2],
    }
    killed(args)
    new = trainer(tmp_path, "log('new')\n", name="fixed.py")
    request = launcher.prepare(make_plan(), CONFIG, LocalBackend(), out, command=new)
    assert [(c.setting, c.old, c.new) for c in request.changes] == [("trainer_command", old, new)]
    launcher.submit(request, LocalBackend())
    wait_finished(out / "g-0123abcd", LocalBackend())
    assert sorted((r, e) for r, e, _ in events(tmp_path)) == [("run-a", "old"), ("run-b", "new"), ("run-c", "new")]
    record = launcher.read_record(out / "g-0123abcd")
    assert record.trainer_command == new
    assert [(c.setting, c.old, c.new) for c in record.changes] == [("trainer_command", old, new)]
    assert [e.command[-2:] if e.command else None for e in record.runs] == [  # each run's own command
        ["run-a", str(tmp_path / "events.log")],
        ["run-b", str(tmp_path / "events.log")],
        ["run-c", str(tmp_path / "events.log")],
    ]
    assert [Path(e.command[1]).name if e.command else None for e in record.runs] == [
        "trainer.py",
        "fixed.py",
        "fixed.py",
    ]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["{python}", "{nope}"], "bad placeholder 'nope'"),
        (["{python}", "{0}"], "bad placeholder"),
        (["{python", "x"], "bad placeholder"),
        (["olmix-no-such-trainer", "{plan}"], "'olmix-no-such-trainer' is not on PATH"),
        (["./no-such-trainer.sh"], "no executable file at"),
    ],
)
def test_a_bad_trainer_command_is_refused_before_anything_is_written(
    tmp_path: Path, command: list[str], message: str
) -> None:
    with pytest.raises(OlmixError, match=message):
        launcher.prepare(make_plan(), CONFIG, LocalBackend(), tmp_path / "out", command=command)
    with pytest.raises(OlmixError, match=message):
        launcher.launch(make_plan(), CONFIG, LocalBackend(), tmp_path / "out", command=command)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../escape", "path separator"),
        ("/abs", "path separator"),
        ("..", "starts with '.'"),
        (".", "starts with '.'"),
        ("a\0b", "control character"),
        ("x" * 256, "longer than 255 bytes"),
        ("é" * 128, "longer than 255 bytes"),
        ("launch.json", "olmix uses for its own files"),
        ("plan.json", "olmix uses for its own files"),
        ("", "is empty"),
    ],
)
def test_a_group_or_run_name_that_is_not_one_safe_folder_name_writes_nothing(
    tmp_path: Path, name: str, message: str
) -> None:
    out = tmp_path / "runs" / "inner"
    with pytest.raises(runpaths.PathSafetyError, match=message):
        launcher.launch(make_plan(["ok", name]), CONFIG, LocalBackend(), out, command=["true"])
    with pytest.raises(runpaths.PathSafetyError, match=message):
        launcher.launch({**make_plan(), "group": name}, CONFIG, LocalBackend(), out, command=["true"])
    assert list(tmp_path.rglob("*")) == []


def test_a_symlink_out_of_the_runs_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "g-0123abcd").symlink_to(elsewhere)
    with pytest.raises(runpaths.PathSafetyError, match="outside the runs folder"):
        launcher.launch(make_plan(), CONFIG, LocalBackend(), tmp_path / "runs", command=["true"])
    (tmp_path / "runs" / "g-0123abcd").unlink()
    (tmp_path / "runs" / "g-0123abcd").mkdir()
    (tmp_path / "runs" / "g-0123abcd" / "run-b").symlink_to(elsewhere)
    with pytest.raises(runpaths.PathSafetyError, match="outside the runs folder"):
        launcher.launch(make_plan(), CONFIG, LocalBackend(), tmp_path / "runs", command=["true"])
    assert list(elsewhere.iterdir()) == []
    assert not (tmp_path / "runs" / "g-0123abcd" / "launch.json").exists()


def test_a_status_across_a_resume_reports_the_runs_the_resume_submitted(tmp_path: Path) -> None:
    names = [f"run-{i}" for i in range(4)]
    plan, group_dir = make_plan(names), tmp_path / "out" / "g-0123abcd"
    command = trainer(tmp_path, "log('start')\n")
    counted: dict[str, Any] = {"submissions": str(tmp_path / "submissions")}
    killed_launch(tmp_path, plan, command, counted, n=2)  # run-0 recorded as submitted
    gate = tmp_path / "gate"
    seen: list[dict[str, Any]] = []
    looking = threading.Thread(
        target=lambda: seen.append(launcher.statuses(group_dir, SlowBackend(**counted, gate=str(gate)))[1])
    )
    looking.start()
    poll(Path(f"{gate}.waiting").exists, "the status's backend call to begin")
    launcher.launch(plan, CONFIG, SlowBackend(**counted), tmp_path / "out", command=command)
    gate.touch()
    looking.join(timeout=60)
    (found,) = seen
    assert sorted(name for name, st in found.items() if st is not None) == names
    assert [e.state for e in launcher.read_record(group_dir).runs] == ["submitted"] * 4


def test_a_resume_without_a_command_keeps_the_recorded_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    chosen = trainer(tmp_path, "log('chosen')\n")
    args = {
        "plan": make_plan(),
        "config": str(CONFIG),
        "output": str(out),
        "command": chosen,
        "kill": ["before-submit", 2],
    }
    killed(args)
    fallback = trainer(tmp_path, "log('fallback')\n", name="fallback.py")  # the config's (or olmix's default)
    request = launcher.prepare(make_plan(), CONFIG, LocalBackend(), out, command=None, default_command=fallback)
    assert (request.command_kept, request.changes) == (True, [])
    assert [Path(run.command[1]).name for run in request.runs] == ["trainer.py"] * 3
    launcher.submit(request, LocalBackend())
    wait_finished(out / "g-0123abcd", LocalBackend())
    assert sorted((r, e) for r, e, _ in events(tmp_path)) == [(name, "chosen") for name in RUNS]
    assert launcher.read_record(out / "g-0123abcd").changes == []


def test_a_resume_submits_the_runs_left_with_this_launchs_plan(tmp_path: Path) -> None:
    """The files behind a plan may change between a killed launch and its resume: the runs the resume submits
    train on the plan it built (from listings it confirmed), the runs submitted before keep theirs."""
    out = tmp_path / "out"
    first = make_plan()
    for run in first["runs"]:
        run["listed_at"] = "2026-01-01T00:00:00Z"
    command = trainer(tmp_path, "log('ran')\n")
    args = {"plan": first, "config": str(CONFIG), "output": str(out), "command": command, "kill": ["before-submit", 2]}
    killed(args)
    second = make_plan()
    for run in second["runs"]:
        run["listed_at"] = "2026-02-02T00:00:00Z"
    launcher.submit(launcher.prepare(second, CONFIG, LocalBackend(), out, command=command), LocalBackend())
    group = out / "g-0123abcd"
    wait_finished(group, LocalBackend())
    listed = {name: json.loads((group / name / "plan.json").read_text())["runs"][0]["listed_at"] for name in RUNS}
    assert listed == {"run-a": "2026-01-01T00:00:00Z", "run-b": "2026-02-02T00:00:00Z", "run-c": "2026-02-02T00:00:00Z"}


class AnswerLost(LocalBackend):
    """Starts the run, then fails as a scheduler whose answer never came back (a timeout after it took the job)."""

    def submit(self, spec: Any) -> str:
        super().submit(spec)
        from olmix.backends import BackendError

        # the scheduler has the job on its books (job.json) before the answer is lost
        poll(lambda: (spec.run_dir / "job.json").exists(), "the runner's job.json")
        raise BackendError("sbatch did not answer within 120 s")


class Refused(LocalBackend):
    def submit(self, spec: Any) -> str:
        from olmix.backends import BackendError

        raise BackendError("sbatch failed (exit 1): invalid partition")


def test_a_submission_whose_answer_was_lost_is_found_by_its_token_and_adopted(tmp_path: Path) -> None:
    command = trainer(tmp_path, "log('start')\n")
    results = launcher.launch(make_plan(), CONFIG, AnswerLost(), tmp_path / "out", command=command)
    group_dir = tmp_path / "out" / "g-0123abcd"
    record = launcher.read_record(group_dir)
    assert [(e.name, e.state) for e in record.runs] == [(name, "submitted") for name in RUNS]
    assert {r.run: r.job_id for r in results} == {e.name: e.job_id for e in record.runs}
    wait_finished(group_dir, LocalBackend())
    assert sorted(r for r, _, _ in events(tmp_path)) == RUNS  # each run started once, by the one submission
    again = launcher.launch(make_plan(), CONFIG, LocalBackend(), tmp_path / "out", command=command)
    assert not any(r.new for r in again)


def test_a_refused_submission_stays_submitting_and_says_so_truthfully(tmp_path: Path) -> None:
    command = trainer(tmp_path, "log('start')\n")
    with pytest.raises(OlmixError) as caught:
        launcher.launch(make_plan(), CONFIG, Refused(), tmp_path / "out", command=command)
    message = str(caught.value)
    assert "invalid partition" in message and "not found by their tokens" in message
    record = launcher.read_record(tmp_path / "out" / "g-0123abcd")
    assert record.runs[0].state == "submitting" and record.runs[0].token


def test_a_cancel_during_a_launch_stops_the_run_in_flight_and_submits_no_other(tmp_path: Path) -> None:
    names = ["run-0", "run-1", "run-2"]
    plan, group_dir = make_plan(names), tmp_path / "out" / "g-0123abcd"
    command = trainer(tmp_path, "log('start')\ntime.sleep(60)\n")
    gate = tmp_path / "gate"
    counted: dict[str, Any] = {"submissions": str(tmp_path / "submissions")}
    launch = actor(
        {
            "action": "launch",
            "backend": {**counted, "submit_gate": str(gate)},
            "plan": plan,
            "config": str(CONFIG),
            "output": str(tmp_path / "out"),
            "command": command,
        }
    )
    poll(Path(f"{gate}.waiting").exists, "the launch's first submission to be under way")
    done = launcher.cancel_runs(group_dir, LocalBackend())  # run-0 started, its job id not yet known
    assert (done.cancelled, done.not_submitted) == ([], names)
    gate.touch()
    _, err = launch.communicate(timeout=60)
    assert launch.returncode == 0, err.decode()

    assert submissions(tmp_path / "submissions") == ["run-0"]  # the others were never submitted
    record = launcher.read_record(group_dir)
    assert [(e.name, e.state, e.cancel_requested_at is not None) for e in record.runs] == [
        ("run-0", "submitted", True),
        ("run-1", "planned", True),
        ("run-2", "planned", True),
    ]
    assert record.runs[0].cancelled_at is not None  # stopped by the launch once its job id was known

    def finished() -> dict[str, Any]:
        found = launcher.statuses(group_dir, LocalBackend())[1]
        return found if found["run-0"] is not None and found["run-0"].state.finished else {}

    found: dict[str, Any] = poll(finished, "run-0 to stop")
    assert (found["run-0"].state, found["run-1"], found["run-2"]) == (RunState.CANCELLED, None, None)

    again = launcher.launch(plan, CONFIG, SlowBackend(**counted), tmp_path / "out", command=command)
    assert [(r.run, r.new, r.cancelled, bool(r.job_id)) for r in again] == [
        ("run-0", False, True, True),
        ("run-1", False, True, False),
        ("run-2", False, True, False),
    ]
    assert submissions(tmp_path / "submissions") == ["run-0"]  # a resume honours the cancel too


def test_a_run_submitted_by_a_launch_killed_before_it_could_honour_a_cancel_is_stopped_by_the_resume(
    tmp_path: Path,
) -> None:
    plan, group_dir = make_plan(["run-0"]), tmp_path / "out" / "g-0123abcd"
    command = trainer(tmp_path, "log('start')\ntime.sleep(60)\n")
    counted: dict[str, Any] = {"submissions": str(tmp_path / "submissions")}
    killed_launch(tmp_path, plan, command, counted, n=1)  # run-0 started; the record says `submitting`
    assert launcher.cancel_runs(group_dir, LocalBackend()).not_submitted == ["run-0"]
    resumed = launcher.launch(plan, CONFIG, SlowBackend(**counted), tmp_path / "out", command=command)
    assert [(r.new, r.cancelled) for r in resumed] == [(False, True)]
    assert submissions(tmp_path / "submissions") == ["run-0"]
    assert wait_finished(group_dir, LocalBackend())["run-0"].state == RunState.CANCELLED
    assert launcher.read_record(group_dir).runs[0].cancelled_at is not None


# -- retrying failed and cancelled runs -----------------------------------------------------------------------


def retry(tmp_path: Path, backend: LocalBackend, command: list[str] | None = None) -> list[launcher.Submitted]:
    request = launcher.prepare(make_plan(), CONFIG, backend, tmp_path / "out", command=command, retry=True)
    return launcher.submit(request, backend)


def test_a_retry_submits_each_failed_run_once_and_the_record_keeps_every_attempt(tmp_path: Path) -> None:
    backend = LocalBackend(max_parallel=3)
    # run-b fails on its first attempt only: the flag file tells the second one apart
    flag = tmp_path / "failed-once"
    body = f"log('start')\nprint('attempt of', RUN)\nif RUN == 'run-b' and not os.path.exists({str(flag)!r}):\n"
    body += f"    open({str(flag)!r}, 'w').close()\n    sys.exit(5)\n"
    command = trainer(tmp_path, body)
    launcher.launch(make_plan(), CONFIG, backend, tmp_path / "out", command=command)
    group_dir = tmp_path / "out" / "g-0123abcd"
    found = wait_finished(group_dir, backend)
    assert [name for name, st in found.items() if st.state is RunState.FAILED] == ["run-b"]
    first = json.loads((group_dir / "launch.json").read_text())["runs"][1]

    assert launcher.to_retry(group_dir, backend) == ["run-b"]
    results = retry(tmp_path, backend)
    assert [(r.run, r.new) for r in results] == [("run-a", False), ("run-b", True), ("run-c", False)]
    found = wait_finished(group_dir, backend)
    assert {name: st.state for name, st in found.items()} == dict.fromkeys(RUNS, RunState.SUCCEEDED)
    # a second retry of the same attempt submits nothing new
    assert launcher.to_retry(group_dir, backend) == []
    assert [r.new for r in retry(tmp_path, backend)] == [False] * 3
    assert Counter(r for r, e, _ in events(tmp_path)) == {"run-a": 1, "run-b": 2, "run-c": 1}

    entry = json.loads((group_dir / "launch.json").read_text())["runs"][1]
    (attempt,) = entry["attempts"]
    assert (attempt["job_id"], attempt["token"], attempt["submitted_at"]) == (
        first["job_id"],
        first["token"],
        first["submitted_at"],
    )
    assert (attempt["status"]["state"], attempt["status"]["exit_code"]) == ("failed", 5)
    assert attempt["folder"] == "attempts/1"
    assert entry["job_id"] != first["job_id"] and entry["token"] != first["token"]
    # each attempt's log is its own
    assert (group_dir / "run-b" / "attempts" / "1" / "train.log").read_text() == "attempt of run-b\n"
    assert (group_dir / "run-b" / "train.log").read_text() == "attempt of run-b\n"
    assert "attempts" not in json.loads((group_dir / "launch.json").read_text())["runs"][0]


def test_a_retry_resubmits_a_run_cancelled_before_it_was_submitted(tmp_path: Path) -> None:
    backend = LocalBackend()
    command = trainer(tmp_path, "log('start')\n")
    plan = make_plan()
    request = launcher.prepare(plan, CONFIG, backend, tmp_path / "out", command=command)
    group_dir = request.group_dir
    group_dir.mkdir(parents=True)
    launcher._prepare_group(request, backend)  # the record a launch writes before it submits
    launcher.cancel_runs(group_dir, backend, ["run-a"])
    results = launcher.submit(request, backend)
    assert (results[0].run, results[0].cancelled) == ("run-a", True)
    assert launcher.to_retry(group_dir, backend) == ["run-a"]
    again = retry(tmp_path, backend)
    assert [(r.run, r.new) for r in again] == [("run-a", True), ("run-b", False), ("run-c", False)]
    (attempt,) = json.loads((group_dir / "launch.json").read_text())["runs"][0]["attempts"]
    assert attempt["job_id"] is None and attempt["cancel_requested_at"] > 0


def test_a_retry_while_another_launch_of_the_group_runs_submits_nothing(tmp_path: Path) -> None:
    backend = LocalBackend()
    command = trainer(tmp_path, "sys.exit(1)\n")
    launcher.launch(make_plan(), CONFIG, backend, tmp_path / "out", command=command)
    group_dir = tmp_path / "out" / "g-0123abcd"
    wait_finished(group_dir, backend)
    before = (group_dir / "launch.json").read_bytes()
    with launcher.launch_lock(group_dir), pytest.raises(launcher.LaunchError, match="another olmix process"):
        retry(tmp_path, backend)
    assert (group_dir / "launch.json").read_bytes() == before
    assert len(retry(tmp_path, backend)) == 3
    assert launcher.to_retry(group_dir, backend) == []


def test_retrying_a_group_never_launched_is_refused(tmp_path: Path) -> None:
    with pytest.raises(launcher.LaunchError, match="has not been launched"):
        retry(tmp_path, LocalBackend(), ["true"])
    assert not (tmp_path / "out").exists()


# -- the trainer's extra, checked where the trainer runs -------------------------------------------------------


def test_olmix_train_without_the_train_extra_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "olmo_core" else real(name, *a))
    command = list(launcher.DEFAULT_COMMAND)
    with pytest.raises(ExtraMissing, match=r"olmix.train needs olmo_core, .*pip install 'olmix\[train\]'") as caught:
        launcher.prepare(make_plan(), CONFIG, LocalBackend(), tmp_path / "out", command=command)
    assert sys.executable in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_another_python_without_the_train_extra_is_asked_and_refused(tmp_path: Path) -> None:
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    command = [str(venv / "bin" / "python"), "-m", "olmix.train", "--plan", "{plan}", "--out", "{run_dir}"]
    with pytest.raises(ExtraMissing, match=r"needs torch, olmo_core, numpy, which .*bare/bin/python cannot import"):
        launcher.prepare(make_plan(), CONFIG, LocalBackend(), tmp_path / "out", command=command)
    # this environment has the extra: the default command passes
    launcher.prepare(make_plan(), CONFIG, LocalBackend(), tmp_path / "out", command=list(launcher.DEFAULT_COMMAND))
