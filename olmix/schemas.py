"""The JSON Schemas olmix ships (copies of schema/, kept in sync by `make check-generated`)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import olmix_generated

SCHEMA_DIR = Path(olmix_generated.__file__).parent / "schemas"


def path(name: str) -> Path:
    """Path of schema `name` (for example "mixture")."""
    return SCHEMA_DIR / f"{name}.schema.json"


@cache
def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(path(name).read_text(encoding="utf-8"))
    return schema


@cache
def validator(name: str) -> Any:
    from jsonschema import validators

    schema = load(name)
    cls = validators.validator_for(schema)
    return cls(schema)
