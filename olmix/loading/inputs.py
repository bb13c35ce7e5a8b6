"""What olmix accepts as input: regular files of a bounded size, folders it can search.

A FIFO or a device named as a config would block a read forever or never end; a huge file would be parsed
for minutes in gigabytes of memory; a folder that cannot be listed would silently hold no configs. Each is
refused up front, with the path and the reason, before any reading starts.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from olmix.errors import OlmixError

MAX_CONFIG_BYTES = 10 * 1024 * 1024
MAX_CONFIG_ENV = "OLMIX_MAX_CONFIG_BYTES"


class InputError(OlmixError):
    """An input olmix will not read: which path, and why."""


_max_config_bytes: int | None = None


def set_max_config_bytes(value: int | None) -> None:
    """The cap `olmix --max-config-bytes` gives (None: the environment's, else the default)."""
    global _max_config_bytes
    _max_config_bytes = value


def max_config_bytes() -> int:
    """The size cap for a config file: as set, else OLMIX_MAX_CONFIG_BYTES, else 10 MiB."""
    if _max_config_bytes is not None:
        return _max_config_bytes
    raw = os.environ.get(MAX_CONFIG_ENV, "").strip()
    if not raw:
        return MAX_CONFIG_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"{MAX_CONFIG_ENV}={raw[:40]!r} is not a positive number of bytes")
    return value


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_limited(path: str | Path, limit: int | None, *, what: str = "file", raise_with: str | None = None) -> bytes:
    """The bytes of regular file `path`, refusing anything else and anything over `limit` bytes (if given;
    `raise_with` says how to raise the limit, by default a config's flag and variable).

    Opened without blocking, so a FIFO swapped in after the check still cannot hang the read; the size
    is checked before reading and again while reading (a file that grows).
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a {what}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: is {_kind(info.st_mode)}, not a {what}")
        if limit is None:
            return _read(f, path)
        how = raise_with or f"`olmix --max-config-bytes N` or {MAX_CONFIG_ENV}=N"
        over = f"over the {limit:,}-byte limit for a {what} (raise it with {how})"
        if info.st_size > limit:
            raise InputError(f"{path}: {info.st_size:,} bytes, {over}")
        data = _read(f, path, limit + 1)
        if len(data) > limit:
            raise InputError(f"{path}: {over}")
        return data


def _read(f: BinaryIO, path: Path, size: int = -1) -> bytes:
    try:
        return f.read(size)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def tree_files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Regular files with one of `suffixes` under `folder`, at any depth, sorted.

    A folder below that cannot be listed is an error (a silent skip would report fewer configs as all valid).
    """

    def fail(exc: OSError) -> None:
        raise InputError(f"{exc.filename}: cannot search this folder: {exc.strerror or exc}")

    found = []
    for top, _dirs, files in os.walk(folder, onerror=fail):
        found += [Path(top) / name for name in files if Path(name).suffix in suffixes]
    return sorted(p for p in found if p.is_file())
