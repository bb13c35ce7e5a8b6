"""What the records olmix writes for other steps share: JSON without NaN, checked against a schema, located problems.

The plan, the launch record and a run's metrics each have a JSON Schema in
schema/ and generated models, and each reader validates what it reads. Each
is read through `read_bounded`, never whole: a record over its kind's size
cap (a file gone wrong, a sparse file of gigabytes) is one located problem,
not a MemoryError, and a listing names it and goes on with the others. The
models say quickly whether a record is valid; when it is not, the record is
read again as YAML (JSON is YAML) with positions, so every problem is
reported as FILE:LINE:COLUMN at its JSON path, as for a config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix.errors import ConfigError, Problem

if TYPE_CHECKING:
    from pydantic import ValidationError


MiB = 1024 * 1024
# The most bytes olmix reads of a record, by kind. A plan names every file of every leaf (a million files is
# hundreds of MiB); the launch record, a run's metrics and a runner's state files are a small fraction of that.
MAX_RECORD_BYTES = {
    "plan": 1024 * MiB,
    "launch record": 64 * MiB,
    "metrics file": 64 * MiB,
    "CSV": 256 * MiB,
    "run state file": 1 * MiB,
}
MAX_RECORD_ENV = "OLMIX_MAX_RECORD_BYTES"


def max_record_bytes(what: str) -> int:
    """The size cap of a record of kind `what`: OLMIX_MAX_RECORD_BYTES when set (any kind), else the kind's."""
    raw = os.environ.get(MAX_RECORD_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return MAX_RECORD_BYTES[what]


def read_bounded(path: str | Path, what: str, error: type[ConfigError] = ConfigError) -> bytes:
    """The bytes of the record at `path` (a regular file, at most its kind's cap), read with that bound;
    `error` names the file and why it was not read."""
    from olmix.loading import inputs

    try:
        return inputs.read_limited(path, max_record_bytes(what), what=what, raise_with=f"{MAX_RECORD_ENV}=N")
    except inputs.InputError as exc:
        raise error([Problem(str(path), 0, 0, (), str(exc).removeprefix(f"{path}: "))]) from None


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number (a value that is not finite is written as null)")


def strict_json(raw: bytes, name: str, *, what: str, error: type[ConfigError] = ConfigError) -> Any:
    """`raw` (the bytes of file `name`) parsed as JSON, NaN and Infinity refused: Python's json module reads them,
    no other JSON reader does."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise error([Problem(name, 0, 0, (), f"not UTF-8 text: {exc.reason}")]) from None
    except ValueError as exc:  # JSONDecodeError knows where
        line, column = getattr(exc, "lineno", 0), getattr(exc, "colno", 0)
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise error([Problem(name, line, column, (), f"not {what}: {message}")]) from None


def schema_problems(raw: bytes, name: str, schema: str, exc: ValidationError) -> list[Problem]:
    """Where the record in `raw`, which a generated model refused with `exc`, breaks schema `schema`."""
    from olmix.loading import schemacheck, yamlsource

    try:
        doc = yamlsource.parse(raw, name)  # JSON is YAML: the same positions for the messages
    except ConfigError as parse_error:
        return list(parse_error.problems)
    return schemacheck.check(doc, schema) or [doc.problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]


def skipped_line(exc: ConfigError) -> str:
    """The note for a record left out of a listing: its file and first problem."""
    first, more = exc.problems[0], len(exc.problems) - 1
    return f"skipped {first}" + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
