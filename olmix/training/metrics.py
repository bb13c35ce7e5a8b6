"""A run's metrics.json: the one reader and writer of the record (schema/metrics.schema.json).

The trainer writes it through `write_metrics` and `olmix results` reads it through `read_metrics`, so both
hold to the schema another tool reads it by. JSON has no NaN or infinity (Python's json module writes and
reads them anyway): a loss that is not finite is written as null, and a file holding one is refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix.errors import ConfigError

if TYPE_CHECKING:
    from olmix_generated.metrics import Metrics

    from olmix.records import RecordKind

METRICS_FILE = "metrics.json"


class MetricsError(ConfigError):
    """A metrics file that is not valid metrics."""


def finite(value: float | None) -> float | None:
    """`value`, or None when it is None, NaN or infinite."""
    return value if value is not None and math.isfinite(value) else None


def _kind() -> RecordKind[Metrics]:
    from olmix.records import RecordKind

    return RecordKind("metrics", "olmix_generated.metrics:Metrics", "metrics file", MetricsError, syntax="JSON")


def read_metrics(path: str | Path) -> Metrics:
    """The validated metrics at `path`; MetricsError lists every problem."""
    return _kind().read(path)


def write_metrics(metrics: dict[str, Any], path: str | Path) -> Metrics:
    """Validate `metrics` against the metrics schema and write it atomically; the validated record."""
    return _kind().write(path, metrics)
