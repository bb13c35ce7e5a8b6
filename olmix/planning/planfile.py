"""The launch plan on disk: its JSON form, written and read through its schema.

A plan is the record every later step reads (the launcher, the trainer,
results, the fit): schema/launch-plan.schema.json states it, the generated
LaunchPlan model holds it, and it is validated when written and when read.
Building one is olmix.planning.plan's job.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from olmix.errors import PlanError

if TYPE_CHECKING:
    from olmix_generated.launch_plan import LaunchPlan

    from olmix.records import RecordKind

PLAN_VERSION = 1

_P = ParamSpec("_P")
_R = TypeVar("_R")


def without_gc_pauses(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `function` with Python's cycle collector paused.

    A plan of a million files is millions of new objects, and the collector
    would scan them again and again while they are made (a quarter of the
    time); reference counting still frees everything, and cycles are
    collected as usual once the function returns.
    """

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not gc.isenabled():
            return function(*args, **kwargs)
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.enable()

    return wrapper


def plan_data(plan: LaunchPlan) -> dict[str, Any]:
    """The plan as JSON data. A field the plan never set stays absent: the schema tells absent from null."""
    return plan.model_dump(mode="json", exclude_unset=True)


def plan_json(plan: LaunchPlan) -> str:
    return plan.model_dump_json(indent=2, exclude_unset=True)


def _kind() -> RecordKind[LaunchPlan]:
    from olmix.records import RecordKind

    return RecordKind(
        "launch-plan", "olmix_generated.launch_plan:LaunchPlan", "plan", PlanError, text=plan_json, strict=False
    )


@without_gc_pauses
def write_plan(plan: LaunchPlan, path: str | Path) -> None:
    """Validate `plan` against the plan schema and write it atomically."""
    _kind().write(path, plan)


@without_gc_pauses
def read_plan(path: str | Path) -> LaunchPlan:
    """The validated plan at `path` (read with the plan's size cap); PlanError lists every problem."""
    return _kind().read(path)
