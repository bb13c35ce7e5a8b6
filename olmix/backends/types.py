"""The values backends and the launcher pass each other: a run to start, its state, and the backends' error."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from olmix.errors import OlmixError


class BackendError(OlmixError):
    """A backend cannot be used or refused an operation."""


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    ORPHANED = "orphaned"  # what watched the run died; its trainer still runs
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)


@dataclass(frozen=True)
class RunSpec:
    """Everything a backend needs to start one run."""

    group: str
    run: str
    run_dir: Path
    plan_file: Path
    command: list[str]
    token: str  # unique per submission attempt; lets a backend find a run it already started
    env: dict[str, str] = field(default_factory=dict)  # recorded values
    secrets: list[str] = field(default_factory=list)  # names only; values come from os.environ


@dataclass(frozen=True)
class Status:
    state: RunState
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    detail: str = ""
    signal: int | None = None  # the signal that ended the trainer, where the backend knows it

    @property
    def duration(self) -> float | None:
        """Seconds from the (latest) start to the end, or to now while running; None where unknown.

        A run that has not started, or whose times do not fit together (an end before the start, a start
        still to come), has no duration: never a negative one.
        """
        if self.started_at is None or (self.state is RunState.PENDING and self.finished_at is None):
            return None
        import time

        seconds = (time.time() if self.finished_at is None else self.finished_at) - self.started_at
        return seconds if seconds >= 0 else None


def run_file(path: Path) -> dict[str, Any] | None:
    """A state file a run's runner writes in its folder (job.json, started.json, exit.json); None when it is
    absent or not (yet) readable: runners write them atomically, so a partial file is never seen."""
    import json

    from olmix import records

    try:
        data = json.loads(records.read_bounded(path, "run state file"))
    except (OlmixError, ValueError):
        return None
    return data if isinstance(data, dict) else None
