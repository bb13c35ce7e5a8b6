"""On-disk cache of resolved leaves, in the user's cache directory.

An entry is keyed by the SHA-256 of everything that determines the result:
every leaf's name and its patterns after the path map, the dtype and the path
map itself, and the entry format. The key's inputs are stored inside the entry
too and compared on read, so a corrupt, truncated or colliding entry is a
miss, never a wrong answer. Entries are written atomically. What the cache
cannot see is a change to the data itself: `--no-cache` re-lists the store.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from olmix.fileio import write_atomic
from olmix.leaves import Leaf
from olmix.resolve import PathMap, ResolvedLeaf, apply_path_map

FORMAT = 3  # per leaf: [[paths], [tokens]]


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """$XDG_CACHE_HOME/olmix, else ~/.cache/olmix."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "olmix"


def key_inputs(leaves: Sequence[Leaf], dtype: str, path_map: PathMap) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "dtype": dtype,
        "path_map": [list(pair) for pair in path_map],
        "leaves": [[leaf.name, [apply_path_map(p, path_map) for p in leaf.paths]] for leaf in leaves],
    }


def _key(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, separators=(",", ":"), sort_keys=True).encode()).hexdigest()


def entry_path(inputs: dict[str, Any], directory: Path | None = None) -> Path:
    return (directory or cache_dir()) / "resolve" / f"{_key(inputs)}.json"


def load(
    leaves: Sequence[Leaf], dtype: str, path_map: PathMap, directory: Path | None = None
) -> list[ResolvedLeaf] | None:
    """The cached resolution, or None when there is no trustworthy entry."""
    inputs = key_inputs(leaves, dtype, path_map)
    try:
        data = json.loads(entry_path(inputs, directory).read_bytes())
        if data["inputs"] != inputs:
            return None
        out = []
        for (name, patterns), (paths, tokens) in zip(inputs["leaves"], data["files"], strict=True):
            files = dict(zip(paths, tokens, strict=True))
            if len(files) != len(paths):
                return None  # a path twice: not an entry olmix wrote
            leaf = ResolvedLeaf(name, tuple(patterns), files)
            leaf.__dict__["tokens"] = sum(tokens)  # fills the cached property at C speed (a million files)
            out.append(leaf)
        return out
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(
    leaves: Sequence[Leaf],
    dtype: str,
    path_map: PathMap,
    resolved: Sequence[ResolvedLeaf],
    directory: Path | None = None,
) -> Path:
    """Write the entry for this resolution; its path."""
    inputs = key_inputs(leaves, dtype, path_map)
    files = [[list(leaf.files), list(leaf.files.values())] for leaf in resolved]
    path = entry_path(inputs, directory)
    write_atomic(path, json.dumps({"inputs": inputs, "files": files}, separators=(",", ":")).encode())
    return path
