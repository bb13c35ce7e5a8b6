"""A run's progress.json: where the trainer is (training, evaluating, scoring), and how far along.

The trainer writes it atomically into the run's folder as it goes (schema/progress.schema.json), at most
once a second while it trains and at every change of phase; `olmix launch status` reads it through
`read_progress` for each running run. It also says, in the trainer's log, how far scoring and downstream
evaluations have come and how long they have left, as OLMo-core says it for training steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from olmix_generated.progress import Progress

PROGRESS_FILE = "progress.json"
WRITE_INTERVAL_S = 1.0  # training steps of a tiny proxy take milliseconds: one write a second is enough to watch
log = logging.getLogger("olmix.train")


def read_progress(folder: str | Path) -> Progress | None:
    """The run's progress, or None when it has written none (yet) or what is there is not valid progress."""
    from olmix_generated.progress import Progress
    from pydantic import ValidationError

    from olmix import records
    from olmix.errors import ConfigError

    path = Path(folder) / PROGRESS_FILE
    if not path.is_file():
        return None
    try:
        return Progress.model_validate_json(records.read_bounded(path, "run state file"))
    except (ConfigError, ValidationError, OSError):  # half a run's state is no reason to fail a status
        return None


def duration(seconds: float) -> str:
    """`m:ss` or `h:mm:ss`."""
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Reporter:
    """Writes the run's progress.json (when given a folder) and logs each unit of evaluating and scoring with
    its elapsed time and ETA."""

    def __init__(self, folder: str | Path | None, clock: Callable[[], float] = time.time) -> None:
        self.path = None if folder is None else Path(folder) / PROGRESS_FILE
        self.clock = clock
        self.last: tuple[str, float] = ("", 0.0)  # phase and time of the last write
        self.training_step = 0

    def write(self, phase: str, step: int, total: int, *, force: bool = False) -> None:
        """Record where the run is; while training, at most once every WRITE_INTERVAL_S unless `force`."""
        if phase == "training":
            self.training_step = step
        now = self.clock()
        if self.path is None or (
            not force and phase == self.last[0] and step < total and now - self.last[1] < WRITE_INTERVAL_S
        ):
            return
        from olmix.fileio import write_atomic
        from olmix.render import to_json

        doc = {
            "progress_version": 1,
            "phase": phase,
            "step": step,
            "total": total,
            "training_step": self.training_step,
            "updated_at": now,
        }
        write_atomic(self.path, to_json(doc).encode() + b"\n")
        self.last = (phase, now)

    def steps(self, phase: str, what: str, weights: list[float]) -> Steps:
        """A phase of len(weights) units (tasks, sets), each as long as its weight predicts."""
        return Steps(self, phase, what, weights)


class Steps:
    """One phase's units in order: `next(name)` before each, `done()` after the last."""

    def __init__(self, reporter: Reporter, phase: str, what: str, weights: list[float]) -> None:
        self.reporter, self.phase, self.what = reporter, phase, what
        self.weights = weights
        self.index = 0
        self.started = reporter.clock()
        reporter.write(phase, 0, len(weights), force=True)

    def next(self, name: str) -> None:
        """About to start unit `self.index + 1`, `name`: log it with the time so far and the time left."""
        total = len(self.weights)
        elapsed = self.reporter.clock() - self.started
        done = sum(self.weights[: self.index])
        left = sum(self.weights[self.index :])
        eta = duration(elapsed / done * left) if done > 0 else "?"
        log.info(
            "[%s=%s,step=%d/%d] %s, elapsed %s, ETA %s",
            self.phase,
            self.what,
            self.index + 1,
            total,
            name,
            duration(elapsed),
            eta,
        )
        self.index += 1
        self.reporter.write(self.phase, self.index, total, force=True)  # the unit under way counts

    def done(self) -> float:
        """Log the phase's end; its seconds."""
        seconds = self.reporter.clock() - self.started
        total = len(self.weights)
        log.info("[%s=%s,step=%d/%d] done in %s", self.phase, self.what, total, total, duration(seconds))
        self.reporter.write(self.phase, total, total, force=True)
        return seconds
