"""Validate config files, choosing each file's schema the way an editor does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from olmix.errors import ConfigError, Problem

_MODELINE = re.compile(rb"^#\s*yaml-language-server:\s*\$schema=(\S+)")


@dataclass
class Result:
    file: str
    schema: str
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "schema": self.schema,
            "valid": not self.problems,
            "problems": [p.as_dict() for p in self.problems],
        }


def schema_of(head: bytes) -> str:
    """The schema named by a file's modeline (its first line), else "mixture"."""
    match = _MODELINE.match(head.split(b"\n", 1)[0])
    if not match:
        return "mixture"
    return Path(match.group(1).decode("utf-8", "replace")).name.removesuffix(".schema.json")


def _head(path: Path) -> bytes:
    """The first bytes of a regular file (only they can hold the modeline); nothing of anything else."""
    if not path.is_file():
        return b""  # a FIFO or device: opening it could block; loading it reports what it is
    try:
        with path.open("rb") as f:
            return f.read(512)
    except OSError:
        return b""


def validate_file(path: Path) -> Result:
    from olmix.loading import config

    result = Result(str(path), schema_of(_head(path)))
    try:
        config.load_document(path, result.schema)
    except ConfigError as exc:
        result.problems = list(exc.problems)
    return result
