"""Backends run the runs of a plan: one small interface, one module per engine.

A backend checks that it can start a command, submits a prepared run, finds
a run it may already have submitted (by the run's submission token, so a
launch killed mid-submission never submits twice), reports the state of many
runs in one call (a cluster answers a group's job ids at once) and cancels a
run. Adding a backend is a new module and one line in BACKENDS.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from olmix.errors import OlmixError

BACKENDS = {
    "local": "olmix.backends.local:LocalBackend",
    "slurm": "olmix.backends.slurm:SlurmBackend",
    "beaker": "olmix.backends.beaker:BeakerBackend",
}


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


class Backend(Protocol):
    name: str

    def check(self, config: Any) -> list[str]:
        """Notes about settings this backend ignores; raise BackendError when it cannot run them."""

    def check_command(self, command: list[str]) -> None:
        """Raise BackendError when this backend could not start `command` (say, its program is missing)."""

    def submit(self, spec: RunSpec) -> str:
        """Start the run; return its job id.

        A backend may also offer `submit_many(specs) -> job ids`: the runs in one call, all or none, run i
        with the token `<T>.<i>`, each found again by `find` with its own token (Slurm: one job array).
        """

    def find(self, spec: RunSpec) -> str | None:
        """The job id of a run already started with spec.token, if any."""

    def status(self, job_id: str, run_dir: Path) -> Status: ...

    def statuses(self, jobs: list[tuple[str, Path]]) -> list[Status]:
        """The status of each (job id, run folder), in order: one query for a group's runs."""

    def cancel(self, job_id: str, run_dir: Path) -> None: ...


class Describes(Protocol):
    """Optional: what a backend submits for one run, as text a dry run shows (a batch script, a spec)."""

    def describe(self, spec: RunSpec) -> str: ...


def describe(backend: Backend, spec: RunSpec) -> str | None:
    """The backend's description of what it would submit for `spec`; None when it has none."""
    hook = getattr(backend, "describe", None)
    return str(hook(spec)) if hook is not None else None


def describe_all(backend: Backend, specs: Sequence[RunSpec]) -> tuple[list[str | None], str | None]:
    """Each run's description and, for a backend that submits runs together (`describe_many`: a job array),
    what submits them; None where there is nothing to show."""
    many = getattr(backend, "describe_many", None)
    if many is not None:
        texts, trailer = many(specs)
        return list(texts), trailer
    return [describe(backend, spec) for spec in specs], None


def run_file(path: Path) -> dict[str, Any] | None:
    """A state file a run's runner writes in its folder (job.json, started.json, exit.json); None when it is
    absent or not (yet) readable: runners write them atomically, so a partial file is never seen."""
    import json

    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return None


def get(name: str, **options: Any) -> Backend:
    target = BACKENDS.get(name)
    if target is None:
        raise BackendError(f"unknown backend '{name}' (known: {', '.join(sorted(BACKENDS))})")
    module, attr = target.split(":")
    backend: Backend = getattr(importlib.import_module(module), attr)(**options)
    return backend
