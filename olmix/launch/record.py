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
from typing import TYPE_CHECKING, Any

from olmix.errors import ConfigError, OlmixError
from olmix.records import RecordKind

if TYPE_CHECKING:
    from olmix_generated.launch_record import LaunchRecord

RECORD = "launch.json"
RECORD_LOCK = ".record.lock"
LOCK_WAIT_S = 60.0


class RecordError(ConfigError):
    """A launch record that is not a valid record; names the file and each problem."""


class RecordLockedError(OlmixError):
    """Another process has held the group's record lock for too long."""


def parse_record(raw: bytes, name: str) -> LaunchRecord:
    """The validated record in `raw` (the bytes of file `name`); RecordError lists every problem."""
    return KIND.parse(raw, name)


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


def _data(record: LaunchRecord) -> dict[str, Any]:
    data: dict[str, Any] = record.model_dump(mode="json")
    for run in data["runs"]:  # optional keys the schema does not let be null
        for entry in (run, *run.get("attempts", [])):
            for key in ("command", "url", "cancelled_at", "cancel_requested_at"):
                if entry.get(key) is None:
                    entry.pop(key, None)
            if entry.get("status") and entry["status"].get("signal") is None:
                entry["status"].pop("signal", None)
        if not run.get("attempts"):
            run.pop("attempts", None)  # a run submitted once reads as in records from before retries
    return data


KIND: RecordKind[LaunchRecord] = RecordKind(
    "launch-record", "olmix_generated.launch_record:LaunchRecord", "launch record", RecordError, _rules, _data
)


def record_json(record: LaunchRecord) -> bytes:
    return KIND.to_bytes(record)


def read_record(group_dir: Path) -> LaunchRecord:
    """The group's validated record: one clear message naming the file when it is missing or bad."""
    path = group_dir / RECORD
    if not path.exists() and not path.is_symlink():
        raise OlmixError(f"no launch record at {path}: is the group name right? (see `olmix launch list`)")
    return KIND.read(path)


def read_record_file(path: Path) -> bytes:
    """The bytes of the launch record at `path`, read with the record's size cap; RecordError says why not."""
    from olmix import records

    return records.read_bounded(path, KIND.what, RecordError)


def write_record(group_dir: Path, record: LaunchRecord) -> None:
    """Write a record; only under `record_lock` (a new group's first record included). What a reader would
    refuse is never written."""
    KIND.write(group_dir / RECORD, record)


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


# the order states are told in: finished first, then what is still under way
STATE_ORDER = ("succeeded", "failed", "cancelled", "orphaned", "running", "pending", "submitted", "not submitted")


def run_states(record: LaunchRecord) -> dict[str, int]:
    """How many runs are in each state, as the record last saw them (no backend is asked): a run's last known
    status, else `submitted` or `not submitted`; in STATE_ORDER, states no run is in left out."""
    counts = dict.fromkeys(STATE_ORDER, 0)
    for run in record.runs:
        if run.status is not None:
            counts[run.status.state] += 1
        else:
            counts["submitted" if run.state == "submitted" else "not submitted"] += 1
    return {state: n for state, n in counts.items() if n}


def states_line(counts: dict[str, int]) -> str:
    """`3 succeeded, 1 failed, 1 running`."""
    return ", ".join(f"{n} {state}" for state, n in counts.items())
