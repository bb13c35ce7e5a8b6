"""The launch record (`<runs-dir>/<group>/launch.json`): read it validated, change it under the lock.

Several processes touch one record: a launch (or a resume after a killed
one), `launch status` saving what it saw, `launch cancel` noting what it
stopped. A process that saved a copy it read earlier would undo what another
saved in between (a resumed launch's submissions, so the next resume
submits those runs again). So the record has exactly one way to be changed:
`updating(group_dir)` takes the group's record lock, reads the record
afresh, lets the caller change that copy, and writes it atomically before
letting go. The lock is held for a read and a write, never across a
backend call, so nothing waits long for it.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from olmix.errors import ConfigError, OlmixError, Problem
from olmix.fileio import write_atomic
from olmix.render import to_json

if TYPE_CHECKING:
    from olmix_generated.launch_record import LaunchRecord

RECORD = "launch.json"
RECORD_LOCK = ".record.lock"
LOCK_WAIT_S = 60.0


class RecordError(ConfigError):
    """A launch record that is not a valid record; names the file and each problem."""


class RecordLockedError(OlmixError):
    """Another process has held the group's record lock for too long."""


def _positioned(raw: bytes, name: str, problems: list[tuple[tuple[str | int, ...], str]]) -> RecordError:
    from olmix.loading import yamlsource

    try:
        doc = yamlsource.parse(raw, name)  # JSON is YAML: the same positions for the messages
    except ConfigError as parse_error:
        return RecordError(parse_error.problems)
    return RecordError([doc.problem(path, message) for path, message in problems])


def parse_record(raw: bytes, name: str) -> LaunchRecord:
    """The validated record in `raw` (the bytes of file `name`); RecordError lists every problem."""
    from olmix_generated.launch_record import LaunchRecord
    from pydantic import ValidationError

    from olmix import records

    data = records.strict_json(raw, name, what="a launch record", error=RecordError)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise RecordError([Problem(name, 1, 1, (), f"a launch record is a JSON object, not {kind}")])
    try:
        record = LaunchRecord.model_validate_json(raw)
    except ValidationError as exc:
        raise RecordError(records.schema_problems(raw, name, "launch-record", exc)) from None
    if rules := _rules(record):
        raise _positioned(raw, name, rules)
    return record


def _rules(record: LaunchRecord) -> list[tuple[tuple[str | int, ...], str]]:
    """What the schema's description states and the schema cannot: tokens, job ids, unique names."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    seen: set[str] = set()
    for i, run in enumerate(record.runs):
        if run.name in seen:
            out.append((("runs", i, "name"), f"run name {run.name!r} appears twice"))
        seen.add(run.name)
        if run.state == "submitting" and run.token is None:
            out.append((("runs", i, "token"), "a run being submitted has a token"))
        if run.state == "submitted" and run.job_id is None:
            out.append((("runs", i, "job_id"), "a submitted run has a job id"))
    return out


def record_json(record: LaunchRecord) -> bytes:
    data = record.model_dump(mode="json")
    for run in data["runs"]:  # optional keys the schema does not let be null
        for entry in (run, *run.get("attempts", [])):
            for key in ("command", "url", "cancelled_at", "cancel_requested_at"):
                if entry.get(key) is None:
                    entry.pop(key, None)
            if entry.get("status") and entry["status"].get("signal") is None:
                entry["status"].pop("signal", None)
        if not run.get("attempts"):
            run.pop("attempts", None)  # a run submitted once reads as in records from before retries
    return (to_json(data) + "\n").encode()


def read_record(group_dir: Path) -> LaunchRecord:
    """The group's validated record: one clear message naming the file when it is missing or bad."""
    path = group_dir / RECORD
    if not path.exists() and not path.is_symlink():
        raise OlmixError(f"no launch record at {path}: is the group name right? (see `olmix launch list`)")
    return parse_record(read_record_file(path), str(path))


def read_record_file(path: Path) -> bytes:
    """The bytes of the launch record at `path`, read with the record's size cap; RecordError says why not."""
    from olmix import records

    return records.read_bounded(path, "launch record", RecordError)


def write_record(group_dir: Path, record: LaunchRecord) -> None:
    """Write a record; only under `record_lock` (a new group's first record included)."""
    parse_record(data := record_json(record), str(group_dir / RECORD))  # never write what a reader refuses
    write_atomic(group_dir / RECORD, data)


@contextmanager
def record_lock(group_dir: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """The group's record lock; held only to read and write the record, so waiting for it is short."""
    with open(group_dir / RECORD_LOCK, "a") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RecordLockedError(
                        f"{group_dir / RECORD_LOCK}: another process has held the record lock for {wait_s:g} s"
                    ) from None
                time.sleep(0.01)
        yield


@contextmanager
def updating(group_dir: Path) -> Iterator[LaunchRecord]:
    """Change the group's record: a fresh read under the lock, written back (if changed) when the block ends."""
    with record_lock(group_dir):
        record = read_record(group_dir)
        before = record.model_dump()
        yield record
        if record.model_dump() != before:  # a status that saw nothing new leaves the file (and its mtime) alone
            record.updated_at = time.time()
            write_record(group_dir, record)
