"""Problems in a user's input, each knowing where it is."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Generic, TypeVar

JsonPath = tuple[str | int, ...]


def format_path(path: JsonPath) -> str:
    """`$.sources[1].topics[0]`: JSONPath, as check-jsonschema and ajv users know it."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    column: int
    path: JsonPath
    message: str

    def __str__(self) -> str:
        if self.line == 0:  # no position: a whole file (missing, unreadable) or a --set override
            return (
                f"{self.file}: {format_path(self.path)}: {self.message}"
                if self.path
                else f"{self.file}: {self.message}"
            )
        return f"{self.file}:{self.line}:{self.column}: {format_path(self.path)}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": format_path(self.path),
            "message": self.message,
        }


# The order problems are reported in (Problem's own); as a sort key, several times faster than comparing
# Problems, which matters for a file of 100,000 mistakes.
FILE_ORDER = attrgetter("file", "line", "column", "path", "message")


class OlmixError(Exception):
    """Base of every error olmix raises for a user's input or environment."""


IssueT = TypeVar("IssueT")


class IssuesError(OlmixError, Generic[IssueT]):
    """Several issues found at once, each printed on its own line; `.issues` keeps them."""

    def __init__(self, issues: Iterable[IssueT]) -> None:
        self.issues: list[IssueT] = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class ConfigError(OlmixError):
    """Every problem found in one or more input files."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: Sequence[Problem] = sorted(problems, key=FILE_ORDER)
        super().__init__("\n".join(str(p) for p in self.problems))


class ExtraMissing(OlmixError):
    """An optional extra (training, plotting) is not installed; the message says how to install it."""

    def __init__(self, needs: str, extra: str) -> None:
        super().__init__(f"{needs}; install it with: pip install 'olmix[{extra}]'")


class PlanError(ConfigError):
    """A plan file that is not a valid plan, or a run in it that a trainer cannot use."""
