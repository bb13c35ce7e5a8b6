from __future__ import annotations

import os
from pathlib import Path

import pytest

from olmix.fileio import OverwriteError, status, write_all, write_atomic


def test_write_atomic_replaces_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "f.yaml"
    write_atomic(path, b"one\n")
    assert path.read_bytes() == b"one\n"
    os.chmod(path, 0o640)
    write_atomic(path, b"two\n")
    assert path.read_bytes() == b"two\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["f.yaml"]


# (existing content or None, new content, force, outcome or the error)
CASES = [
    (None, b"a", False, "wrote"),
    (b"a", b"a", False, "unchanged"),
    (b"a", b"b", True, "overwrote"),
    (b"a", b"b", False, OverwriteError),
]


@pytest.mark.parametrize(("old", "new", "force", "outcome"), CASES)
def test_write_all(tmp_path: Path, old: bytes | None, new: bytes, force: bool, outcome: object) -> None:
    path = tmp_path / "f"
    if old is not None:
        path.write_bytes(old)
    if outcome is OverwriteError:
        with pytest.raises(OverwriteError):
            write_all([(path, new)], force=force)
        assert path.read_bytes() == old
        return
    assert write_all([(path, new)], force=force) == [(path, outcome)]
    assert path.read_bytes() == new
    assert status(path, new) == "same"
