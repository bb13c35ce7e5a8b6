"""What the records olmix writes for other steps share: JSON without NaN, checked against a schema, located problems.

The plan, the launch record and a run's metrics each have a JSON Schema in
schema/ and generated models, and each reader validates what it reads. The
models say quickly whether a record is valid; when it is not, the record is
read again as YAML (JSON is YAML) with positions, so every problem is
reported as FILE:LINE:COLUMN at its JSON path, as for a config.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from olmix.errors import ConfigError, Problem

if TYPE_CHECKING:
    from pydantic import ValidationError


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
