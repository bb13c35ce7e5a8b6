"""A run's metrics.json: the one reader and writer of the record (schema/metrics.schema.json).

The trainer writes it through `write_metrics` and `olmix results` reads it through `read_metrics`, so both
hold to the schema another tool reads it by. JSON has no NaN or infinity (Python's json module writes and
reads them anyway): a loss that is not finite is written as null, and a file holding one is refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix.errors import ConfigError, Problem
from olmix.render import to_json

if TYPE_CHECKING:
    from olmix_generated.metrics import Metrics

METRICS_FILE = "metrics.json"


class MetricsError(ConfigError):
    """A metrics file that is not valid metrics."""


def finite(value: float | None) -> float | None:
    """`value`, or None when it is None, NaN or infinite."""
    return value if value is not None and math.isfinite(value) else None


def _validated(raw: bytes, name: str) -> Metrics:
    from olmix_generated.metrics import Metrics
    from pydantic import ValidationError

    from olmix import records

    records.strict_json(raw, name, what="JSON", error=MetricsError)
    try:
        return Metrics.model_validate_json(raw)
    except ValidationError as exc:
        raise MetricsError(records.schema_problems(raw, name, "metrics", exc)) from None


def read_metrics(path: str | Path) -> Metrics:
    """The validated metrics at `path`; MetricsError lists every problem."""
    from olmix import records

    return _validated(records.read_bounded(path, "metrics file", MetricsError), str(path))


def write_metrics(metrics: dict[str, Any], path: str | Path) -> Metrics:
    """Validate `metrics` against the metrics schema and write it atomically; the validated record."""
    from olmix.fileio import write_atomic

    try:
        text = to_json(metrics)
    except ValueError as exc:  # a NaN left in: the trainer's bug, said with the file it was writing
        raise MetricsError([Problem(str(path), 0, 0, (), f"not written: {exc}")]) from None
    record = _validated(text.encode(), str(path))
    write_atomic(path, text.encode() + b"\n")
    return record
