"""Backends run the runs of a plan: one small interface, one module per engine.

A backend checks that it can start a command, submits a prepared run, finds
a run it may already have submitted (by the run's submission token, so a
launch killed mid-submission never submits twice), reports the state of many
runs in one call (a cluster answers a group's job ids at once) and cancels a
run. Adding a backend is a new module and one line in BACKENDS.

A submission that fails may still have reached the scheduler (a timeout, an
answer lost on the way back): the launcher then looks the run up by its
token before it says the run was not submitted. A backend whose job names
are unique on its service says so with `reuses_tokens = True`: a run whose
earlier submission went unanswered is then submitted again with the same
token, and the service refuses whichever of the two creations comes second.
"""

from __future__ import annotations

import importlib
from typing import Any

from olmix.backends.base import Backend
from olmix.backends.types import BackendError, RunSpec, RunState, Status, run_file

BACKENDS = {
    "local": "olmix.backends.local:LocalBackend",
    "slurm": "olmix.backends.slurm:SlurmBackend",
    "beaker": "olmix.backends.beaker:BeakerBackend",
}


def backend_class(name: str) -> type[Backend]:
    target = BACKENDS.get(name)
    if target is None:
        raise BackendError(f"unknown backend '{name}' (known: {', '.join(sorted(BACKENDS))})")
    module, attr = target.split(":")
    cls: type[Backend] = getattr(importlib.import_module(module), attr)
    return cls


def get(name: str, **options: Any) -> Backend:
    """The backend `name`, built with `options` (as recorded with a launch)."""
    return backend_class(name)(**options)


def for_config(name: str, config: Any, max_parallel: int | None = None) -> tuple[Backend, dict[str, Any]]:
    """The backend `name` with the options `config` makes (through the backend's own hook), and those options."""
    options = backend_class(name).options_from_config(config, max_parallel)
    return get(name, **options), options


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "RunSpec",
    "RunState",
    "Status",
    "backend_class",
    "for_config",
    "get",
    "run_file",
]
