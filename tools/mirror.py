"""Small synthetic local mirrors of a config's data, for tests and benchmarks.

`make_mirror(config, root)` creates, for every path pattern of every leaf, a
few files that the pattern matches, under `root/<bucket>/...`, and returns the
path map (`s3://bucket/` → `root/bucket/`) that points the config at them.
Files are sparse: their size (all that planning reads) costs no disk space.
"""

from __future__ import annotations

import re
from pathlib import Path

from olmix.catalogue import ITEMSIZE
from olmix.leaves import leaves
from olmix.loading.config import load_config
from olmix.planning.resolve import _glob_regex, split_pattern


def concrete(rest: str, i: int) -> str:
    """A relative file name that the glob `rest` matches (the i-th of several)."""
    out = rest.replace("**/", "").replace("**", f"deep-{i:04d}")
    out = re.sub(r"\[!?([^\]])[^\]]*\]", lambda m: m.group(1) if not m.group(0).startswith("[!") else "_", out)
    out = out.replace("?", "x")
    parts = out.split("*")
    return parts[0] + "".join(f"part-{i:04d}{p}" if j == 0 else f"x{p}" for j, p in enumerate(parts[1:]))


def make_mirror(
    config: str | Path,
    root: str | Path,
    *,
    files_per_pattern: int = 3,
    tokens_per_file: int = 40_000_000,
) -> list[tuple[str, str]]:
    """Create sparse files for every pattern of `config` under `root`; the path map to them.

    File sizes vary a little by leaf and file so that proportional shares are
    not all equal; every leaf holds at least files_per_pattern × tokens_per_file.
    """
    root = Path(root).resolve()
    cfg = load_config(config)
    itemsize = ITEMSIZE[cfg.dtype]
    path_map: dict[str, str] = {}
    for n, leaf in enumerate(leaves(cfg)):
        for pattern in leaf.paths:
            scheme, sep, rest_of_url = pattern.partition("://")
            if not sep:
                raise ValueError(f"{pattern}: a mirror is made for URLs (s3://, gs://), not local paths")
            bucket = rest_of_url.split("/", 1)[0]
            path_map.setdefault(f"{scheme}://{bucket}/", f"{root / bucket}/")
            prefix, rest = split_pattern(rest_of_url)
            for i in range(files_per_pattern):
                name = concrete(rest, i)
                if not _glob_regex(rest).match(name):
                    raise ValueError(f"{pattern}: cannot make a file name it matches")
                target = root / prefix / name
                target.parent.mkdir(parents=True, exist_ok=True)
                tokens = tokens_per_file + 1_000_003 * (n % 7) + 1009 * i
                with open(target, "wb") as f:
                    f.truncate(tokens * itemsize)
    return list(path_map.items())
