"""Why a run failed, as `launch status` shows it: exit code or signal, the scheduler's reason, the log's end."""

from __future__ import annotations

import json
import os
from pathlib import Path

from olmix.backends import RunState, Status
from olmix.backends.local import LocalBackend
from olmix.backends.slurm import Job, map_state
from olmix.launch.failures import failure, log_tail, reason


def test_an_exit_code_a_signal_and_the_schedulers_reason_are_named() -> None:
    assert reason(Status(RunState.FAILED, 3)) == "exit code 3"
    assert reason(Status(RunState.FAILED, -9, signal=9)) == "killed by signal 9 (SIGKILL)"
    assert reason(Status(RunState.FAILED, 137)) == "exit code 137 (128 + 9: likely SIGKILL)"
    assert reason(Status(RunState.FAILED, None, detail="slurm NODE_FAIL")) == "no exit code; slurm NODE_FAIL"


def test_a_local_trainer_ended_by_a_signal_reports_the_signal(tmp_path: Path) -> None:
    record = {"exit_code": -9, "started_at": 1.0, "finished_at": 2.0, "cancelled": False}
    (tmp_path / "exit.json").write_text(json.dumps(record))
    st = LocalBackend().status(str(os.getpid()), tmp_path)
    assert (st.state, st.signal) == (RunState.FAILED, 9)
    assert reason(st) == "killed by signal 9 (SIGKILL)"


def test_a_slurm_job_ended_by_a_signal_reports_it_with_slurms_state_and_reason() -> None:
    job = Job("41", "41", "FAILED", "OutOfMemory", 0, 1.0, 2.0, signal=9)
    assert reason(map_state(job, live=False)) == "killed by signal 9 (SIGKILL); slurm FAILED: OutOfMemory"


def test_the_log_tail_is_the_last_lines_read_from_the_end(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("".join(f"step {i}\n" for i in range(200_000)))  # larger than what is read
    assert log_tail(log, 3) == ["step 199997", "step 199998", "step 199999"]
    assert log_tail(tmp_path / "absent.log") == []


def test_only_runs_that_did_not_succeed_have_a_failure(tmp_path: Path) -> None:
    (tmp_path / "train.log").write_text("boom\n")
    assert failure(Status(RunState.SUCCEEDED, 0), tmp_path) is None
    assert failure(Status(RunState.RUNNING), tmp_path) is None
    assert failure(None, tmp_path) is None
    found = failure(Status(RunState.CANCELLED, -15, signal=15), tmp_path)
    assert found is not None and found.log_tail == ["boom"]
