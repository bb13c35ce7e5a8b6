"""Where a launch writes: `<runs-dir>/<group>/<run>/`, and never anywhere else.

A group id and a run name come from a config or a flag, and each becomes one
path component. The schema constrains run names; this module checks again
where the names meet the filesystem, so a record edited by hand, a flag, or
a symlink planted in the runs folder cannot make a launch write outside it.
"""

from __future__ import annotations

from pathlib import Path

from olmix.errors import OlmixError

# Files a group's folder holds beside its runs' folders: a run may not take their names.
RESERVED = frozenset({"launch.json", "plan.json", ".slots", ".lock", ".record.lock"})
MAX_BYTES = 255


class PathSafetyError(OlmixError):
    """A name or path would put a launch's files outside its runs folder."""


def check_component(name: str, what: str) -> str:
    """`name` itself when it is one safe path component; PathSafetyError says why not."""
    shown = ascii(name)
    if not name:
        raise PathSafetyError(f"{what} is empty")
    if "/" in name or "\\" in name:
        raise PathSafetyError(f"{what} {shown} contains a path separator; it must be one folder name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise PathSafetyError(f"{what} {shown} contains a control character (NUL, newline, ...)")
    if name.startswith("."):
        raise PathSafetyError(f"{what} {shown} starts with '.' ('.', '..' and hidden names are not allowed)")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_BYTES:
        raise PathSafetyError(f"{what} {shown[:40]}... is longer than {MAX_BYTES} bytes")
    if name in RESERVED:
        raise PathSafetyError(f"{what} {shown} is a name olmix uses for its own files in a group's folder")
    return name


def inside(root: Path, path: Path) -> Path:
    """`path`, resolved, when it lies inside `root` (symlinks followed); PathSafetyError otherwise."""
    real_root = root.resolve()
    real = path.resolve()
    if real != real_root and not real.is_relative_to(real_root):
        raise PathSafetyError(
            f"{path} resolves to {real}, outside the runs folder {real_root} (a symlink?); nothing was written there"
        )
    return real


def group_dir(runs_dir: Path, group: str) -> Path:
    """The folder of `group` under `runs_dir`, checked: one component, and inside once resolved."""
    check_component(group, "group")
    return inside(runs_dir, runs_dir / group)


def run_dir(group_path: Path, run: str) -> Path:
    check_component(run, "run name")
    return inside(group_path, group_path / run)
