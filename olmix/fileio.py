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


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    except FileNotFoundError:
        return "new"


def write_all(files: Sequence[tuple[Path, bytes]], *, force: bool = False) -> list[tuple[Path, str]]:
    """Write every file, or none when one that exists differs and not `force`.

    Returns each path with what happened: "wrote", "unchanged" or "overwrote".
    """
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
    import json

    write_atomic(Path(path), (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8"))
