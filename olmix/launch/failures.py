"""Why a run failed: its exit code or signal, what the scheduler said, and the last lines of its log.

`launch status` shows this for every run that failed or was cancelled, so a
user sees the cause without opening files. The log is the run's train.log
where it is on this machine (the local backend, a Slurm cluster's shared
folder); a run whose log is elsewhere (Beaker) shows its page instead.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from olmix.backends import RunState, Status

LOG = "train.log"
TAIL_LINES = 10
TAIL_BYTES = 64 * 1024  # enough for the last lines of any log; a huge log is never read whole


@dataclass(frozen=True)
class Failure:
    """Why a run ended without succeeding: one line, and the last lines of its log (empty where none is here)."""

    reason: str
    log_tail: list[str]


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def reason(status: Status) -> str:
    """`exit code 3`, `killed by signal 9 (SIGKILL)`, with what the backend said (a scheduler's reason)."""
    parts = []
    if status.signal is not None:
        parts.append(f"killed by signal {status.signal} ({signal_name(status.signal)})")
    elif status.exit_code is not None and status.exit_code > 128 and status.exit_code - 128 in signal.valid_signals():
        # a shell reports a trainer ended by signal N as 128 + N
        number = status.exit_code - 128
        parts.append(f"exit code {status.exit_code} (128 + {number}: likely {signal_name(number)})")
    elif status.exit_code is not None:
        parts.append(f"exit code {status.exit_code}")
    elif status.state is RunState.FAILED:
        parts.append("no exit code")
    if status.detail:
        parts.append(status.detail)
    return "; ".join(parts)


def log_tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last `lines` lines of the log at `path` (empty when there is none), read from its end only."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            data = handle.read()
    except OSError:
        return []
    text = data.decode(errors="replace")
    tail = text.splitlines()
    if size > TAIL_BYTES and tail:
        tail = tail[1:]  # the first line read may be cut
    return tail[-lines:]


def failure(status: Status | None, run_dir: Path) -> Failure | None:
    """Why the run at `run_dir` did not succeed; None while it runs, when it succeeded or was never submitted."""
    if status is None or status.state not in (RunState.FAILED, RunState.CANCELLED):
        return None
    return Failure(reason(status), log_tail(run_dir / LOG))
