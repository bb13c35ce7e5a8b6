"""Writing files so that a reader never sees half of one, and a hand edit is never lost silently."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from olmix.errors import OlmixError


class OverwriteError(OlmixError):
    """Existing files differ from what would be written, and overwriting was not asked for."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        listed = "\n".join(f"  {p}" for p in self.paths)
        super().__init__(
            f"{len(self.paths)} existing file(s) differ from what would be written, so nothing was written "
            f"(edits there would be lost; use --force to overwrite):\n{listed}"
        )


class OutputError(OlmixError, OSError):
    """An output that cannot be written: which path, and why.

    Also an OSError, so code that already expected one from a write (a cache that may fail) still does.
    """


def _why(folder: Path, exc: OSError) -> str:
    # "File exists" or "Not a directory" from mkdir leave the reader to find the culprit: name the file
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            return f"{part} is a file, not a folder"
    return exc.strerror or str(exc)


def make_dir(path: str | os.PathLike[str]) -> Path:
    """Create folder `path` and its parents if missing; OutputError says which path and why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {path}: {_why(path, exc)}") from None
    return path


def check_dir_writable(path: str | Path) -> None:
    """Raise OutputError unless `path` is (or can be created as) a folder olmix can write into.

    A check before long work, so that work is not done for an output that would fail at the end. It cannot
    promise the later write (the folder may change), only catch what is already wrong.
    """
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise OutputError(f"cannot write into {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {path}: {existing} is not writable")


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and os.replace.

    Any failure is an OutputError naming `path`, and leaves neither `path` changed nor a temporary file.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    make_dir(path.parent)
    try:
        _write_replace(path, data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_replace(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            mode = path.stat().st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def status(path: Path, data: bytes) -> str:
    """ "new", "same" or "differs": how the file at `path` compares with `data`."""
    try:
        return "same" if path.read_bytes() == data else "differs"
    except (FileNotFoundError, NotADirectoryError):
        return "new"
    except OSError as exc:
        why = "it is a folder" if path.is_dir() else _why(path.parent, exc)
        raise OutputError(f"cannot write {path}: {why}") from None


def write_all(files: Sequence[tuple[Path, bytes]], *, force: bool = False) -> list[tuple[Path, str]]:
    """Write every file, or none when one that exists differs and not `force`.

    Returns each path with what happened: "wrote", "unchanged" or "overwrote".
    """
    for folder in dict.fromkeys(path.parent for path, _ in files):
        check_dir_writable(folder)
    before = [(path, data, status(path, data)) for path, data in files]
    differ = [path for path, _, state in before if state == "differs"]
    if differ and not force:
        raise OverwriteError(differ)
    done = []
    for path, data, state in before:
        if state != "same":
            write_atomic(path, data)
        done.append((path, {"new": "wrote", "same": "unchanged", "differs": "overwrote"}[state]))
    return done


def write_json_atomic(path: str | Path, data: object) -> None:
    """Write `data` as indented JSON, atomically."""
    from olmix.render import to_json

    try:
        text = to_json(data)
    except ValueError as exc:  # NaN or infinity: JSON has neither, and a reader would choke on it
        raise OutputError(f"cannot write {path}: {exc}") from None
    write_atomic(Path(path), (text + "\n").encode("utf-8"))
