"""A run's metrics.json: the one reader and writer of the record (schema/metrics.schema.json).

The trainer writes it through `write_metrics` and `olmix results` reads it through `read_metrics`, so both
hold to the schema another tool reads it by. JSON has no NaN or infinity (Python's json module writes and
reads them anyway): a loss that is not finite is written as null, and a file holding one is refused.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix.errors import ConfigError, Problem

if TYPE_CHECKING:
    from olmix_generated.metrics import Metrics

METRICS_FILE = "metrics.json"


class MetricsError(ConfigError):
    """A metrics file that is not valid metrics."""


def finite(value: float | None) -> float | None:
    """`value`, or None when it is None, NaN or infinite."""
    return value if value is not None and math.isfinite(value) else None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (a value that is not a finite number is written as null)")


def _validated(raw: bytes, name: str) -> Metrics:
    from olmix_generated.metrics import Metrics
    from pydantic import ValidationError

    from olmix import schemacheck, yamlsource

    try:
        json.loads(raw, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise MetricsError([Problem(name, 0, 0, (), f"not UTF-8 text: {exc.reason}")]) from None
    except ValueError as exc:
        where = (exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else (0, 0)
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise MetricsError([Problem(name, *where, (), f"not JSON: {message}")]) from None
    try:
        return Metrics.model_validate_json(raw)
    except ValidationError as exc:
        try:
            doc = yamlsource.parse(raw, name)  # JSON is YAML: the same positions for the messages
        except ConfigError as parse_error:
            raise MetricsError(parse_error.problems) from None
        problems = schemacheck.check(doc, "metrics")
        raise MetricsError(problems or [doc.problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]) from None


def read_metrics(path: str | Path) -> Metrics:
    """The validated metrics at `path`; MetricsError lists every problem."""
    from olmix import inputs

    try:
        raw = inputs.read_limited(path, None, what="metrics file")
    except inputs.InputError as exc:
        raise MetricsError([Problem(str(path), 0, 0, (), str(exc).removeprefix(f"{path}: "))]) from None
    return _validated(raw, str(path))


def write_metrics(metrics: dict[str, Any], path: str | Path) -> Metrics:
    """Validate `metrics` against the metrics schema and write it atomically; the validated record."""
    from olmix.fileio import write_atomic

    try:
        text = json.dumps(metrics, indent=2, allow_nan=False)
    except ValueError as exc:  # a NaN left in: the trainer's bug, said with the file it was writing
        raise MetricsError([Problem(str(path), 0, 0, (), f"not written: {exc}")]) from None
    record = _validated(text.encode(), str(path))
    write_atomic(path, text.encode() + b"\n")
    return record
