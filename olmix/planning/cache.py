"""On-disk cache of resolved leaves, in the user's cache directory.

An entry is keyed by the SHA-256 of everything that determines the result:
every leaf's name and its patterns after the path map, the dtype and the path
map itself, and the entry format. The key's inputs are stored inside the entry
too and compared on read, so a corrupt, truncated or colliding entry is a
miss, never a wrong answer. Entries are written atomically. What the cache
cannot see is a change to the data itself, so an entry records when the store
was listed (a dry run shows its age), a launch lists the store again, and
`--no-cache` lists it again and replaces the entry.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from olmix.fileio import write_atomic
from olmix.leaves import Leaf
from olmix.planning.resolve import PathMap, ResolvedLeaf, apply_path_map

FORMAT = 4  # per leaf: [[paths], [tokens]]; and when the store was listed


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
) -> tuple[list[ResolvedLeaf], float] | None:
    """The cached resolution and when it was listed (seconds since the epoch), or None when there is no
    trustworthy entry."""
    inputs = key_inputs(leaves, dtype, path_map)
    try:
        data = json.loads(entry_path(inputs, directory).read_bytes())
        listed_at = data["listed_at"]
        if data["inputs"] != inputs or type(listed_at) not in (int, float) or not math.isfinite(listed_at):
            return None
        out = []
        for (name, patterns), (paths, tokens) in zip(inputs["leaves"], data["files"], strict=True):
            files = dict(zip(paths, tokens, strict=True))
            if len(files) != len(paths):
                return None  # a path twice: not an entry olmix wrote
            leaf = ResolvedLeaf(name, tuple(patterns), files)
            leaf.__dict__["tokens"] = sum(tokens)  # fills the cached property at C speed (a million files)
            out.append(leaf)
        return out, float(listed_at)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(
    leaves: Sequence[Leaf],
    dtype: str,
    path_map: PathMap,
    resolved: Sequence[ResolvedLeaf],
    directory: Path | None = None,
    *,
    listed_at: float | None = None,
) -> Path:
    """Write (or replace) the entry for this resolution, listed at `listed_at` (now if None); its path."""
    inputs = key_inputs(leaves, dtype, path_map)
    files = [[list(leaf.files), list(leaf.files.values())] for leaf in resolved]
    path = entry_path(inputs, directory)
    entry = {"inputs": inputs, "listed_at": time.time() if listed_at is None else listed_at, "files": files}
    write_atomic(path, json.dumps(entry, separators=(",", ":")).encode())
    return path
