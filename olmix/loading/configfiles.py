"""Which config files a command was given: files as named, folders as the YAML files in them.

`olmix validate` checks a whole tree (a folder and everything below it);
`olmix launch run` plans the configs directly in a folder, one run each, so
that the experiments of a study sit beside each other and nothing below them
is launched by accident. One function serves both, in a stable order.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from olmix.loading.inputs import tree_files

SUFFIXES = (".yaml", ".yml")


def config_files(paths: Iterable[str | Path], *, recursive: bool = False) -> list[Path]:
    """Files named, and the *.yaml / *.yml in folders named (and below them when `recursive`), sorted per folder."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and recursive:
            out += tree_files(path, SUFFIXES)
        elif path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        else:
            out.append(path)
    return out
