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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from olmix.errors import ConfigError, Problem

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound="BaseModel")


MiB = 1024 * 1024
# The most bytes olmix reads of a record, by kind. A plan names every file of every leaf (a million files is
# hundreds of MiB); the launch record, a run's metrics and a runner's state files are a small fraction of that.
MAX_RECORD_BYTES = {
    "plan": 1024 * MiB,
    "launch record": 64 * MiB,
    "metrics file": 64 * MiB,
    "CSV": 256 * MiB,
    "run state file": 1 * MiB,
    "fit record": 256 * MiB,
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


@dataclass(frozen=True)
class RecordKind(Generic[M]):
    """One kind of record: its schema, its generated model, its size cap and its error; the one reader and
    writer every record of the kind goes through.

    `rules` checks what the schema states in words and cannot express (a launch record's tokens); `dump`
    makes a record's JSON data (default: the model's, without fields it never set).
    """

    schema: str  # schema/<schema>.schema.json
    model: str  # "module:Class" of the generated model, imported when first needed
    what: str  # the kind as messages and size caps name it
    error: type[ConfigError] = ConfigError
    rules: Callable[[Any], list[tuple[tuple[str | int, ...], str]]] | None = None
    dump: Callable[[Any], Any] | None = None
    text: Callable[[Any], str] | None = None  # the record's JSON text at once (a plan's millions of files)
    strict: bool = True  # parse with Python's json first (NaN refused, a non-object named); a plan skips it
    syntax: str = ""  # what a file that does not parse is said not to be (default: a <what>)

    def model_class(self) -> type[M]:
        import importlib

        module, attr = self.model.split(":")
        cls: type[M] = getattr(importlib.import_module(module), attr)
        return cls

    def parse(self, raw: bytes, name: str) -> M:
        """The validated record in `raw` (the bytes of file `name`); `error` lists every problem, located."""
        from pydantic import ValidationError

        if self.strict:
            data = strict_json(raw, name, what=self.syntax or f"a {self.what}", error=self.error)
            if not isinstance(data, dict):
                kind = "a list" if isinstance(data, list) else "a single value"
                raise self.error([Problem(name, 1, 1, (), f"a {self.what} is a JSON object, not {kind}")])
        try:
            record = self.model_class().model_validate_json(raw)
        except ValidationError as exc:
            raise self.error(schema_problems(raw, name, self.schema, exc)) from None
        if self.rules is not None and (broken := self.rules(record)):
            raise self.error(_positioned(raw, name, broken))
        return record

    def read(self, path: str | Path) -> M:
        """The validated record at `path`, read with the kind's size cap."""
        return self.parse(read_bounded(path, self.what, self.error), str(path))

    def to_bytes(self, record: M | dict[str, Any], name: str = "") -> bytes:
        """The record's JSON, NaN refused (`name`: the file it is for, in the message)."""
        from olmix.render import to_json

        if self.text is not None and not isinstance(record, dict):
            return (self.text(record) + "\n").encode()
        if isinstance(record, dict):
            data = record
        elif self.dump is not None:
            data = self.dump(record)
        else:
            data = record.model_dump(mode="json", exclude_unset=True)
        try:
            raw = (to_json(data) + "\n").encode()
        except ValueError as exc:  # a NaN left in: a bug of the writer, said with the kind it was writing
            raise self.error([Problem(name or self.what, 0, 0, (), f"not written: {exc}")]) from None
        return raw

    def write(self, path: str | Path, record: M | dict[str, Any]) -> M:
        """Validate `record` against the kind's schema and write it atomically; the validated record."""
        from olmix.fileio import write_atomic

        raw = self.to_bytes(record, str(path))
        validated = self.parse(raw, str(path))
        write_atomic(path, raw)
        return validated


def _positioned(raw: bytes, name: str, problems: list[tuple[tuple[str | int, ...], str]]) -> list[Problem]:
    from olmix.loading import yamlsource

    try:
        doc = yamlsource.parse(raw, name)  # JSON is YAML: the same positions for the messages
    except ConfigError as parse_error:
        return list(parse_error.problems)
    return [doc.problem(path, message) for path, message in problems]
