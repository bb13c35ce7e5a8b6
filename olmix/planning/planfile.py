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
from olmix.fileio import write_atomic

if TYPE_CHECKING:
    from olmix_generated.launch_plan import LaunchPlan

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


def _validated(text: str | bytes, name: str) -> LaunchPlan:
    from olmix_generated.launch_plan import LaunchPlan
    from pydantic import ValidationError

    from olmix import records

    try:
        return LaunchPlan.model_validate_json(text)
    except ValidationError as exc:
        raw = text.encode() if isinstance(text, str) else text
        raise PlanError(records.schema_problems(raw, name, "launch-plan", exc)) from None


@without_gc_pauses
def write_plan(plan: LaunchPlan, path: str | Path) -> None:
    """Validate `plan` against the plan schema and write it atomically."""
    text = plan_json(plan)
    _validated(text, str(path))
    write_atomic(path, text.encode() + b"\n")


@without_gc_pauses
def read_plan(path: str | Path) -> LaunchPlan:
    """The validated plan at `path`; PlanError lists every problem."""
    from olmix import records

    return _validated(records.read_bounded(path, "plan", PlanError), str(path))
