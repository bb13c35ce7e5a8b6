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


def modeline(name: str, folder: Path) -> str:
    """The yaml-language-server modeline of a file written into `folder`: schema `name` of the olmix checkout the
    folder is in, else the one shipped with olmix, as a path relative to the folder (editors resolve it so)."""
    import os

    from olmix.study.files import project_root

    folder = folder.resolve()
    root = project_root(folder)
    schema = root / "schema" / f"{name}.schema.json" if root is not None else path(name)
    return f"# yaml-language-server: $schema={Path(os.path.relpath(schema, folder)).as_posix()}"


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
