"""Which files each leaf holds: the store listed now, or a listing cached before, and its age.

olmix.planning.resolve lists and globs the store; olmix.planning.cache keeps what it found.
A plan records when its files were listed (`listed_at`), and a preview says
how old a cached listing is, since the store may have changed since.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

from olmix.leaves import Leaf
from olmix.planning import cache as resolve_cache
from olmix.planning.resolve import Listings, PathMap, Progress, ResolvedLeaf, resolve


def resolve_leaves(
    lvs: Sequence[Leaf],
    dtype: str,
    path_map: PathMap,
    *,
    use_cache: bool = True,
    cache_directory: Path | None = None,
    progress: Progress | None = None,
    listed: Listings | None = None,
    now: float | None = None,
) -> tuple[list[ResolvedLeaf], float]:
    """resolve() behind the on-disk cache: the leaves, and when their files were listed (epoch seconds).

    With `use_cache` a cached listing stands in for the store; without, every folder is listed now
    (once, with `listed` shared by the configs of one launch) and the entry is replaced. `now` is
    when this listing began.
    """
    if use_cache:
        hit = resolve_cache.load(lvs, dtype, path_map, cache_directory)
        if hit is not None:
            return hit
    listed_at = time.time() if now is None else now
    resolved = resolve(lvs, dtype, path_map, progress=progress, listed=listed)
    with contextlib.suppress(OSError):  # an unwritable cache costs a re-listing next time, nothing else
        resolve_cache.store(lvs, dtype, path_map, resolved, cache_directory, listed_at=listed_at)
    return resolved, listed_at


def utc_stamp(seconds: float) -> str:
    """`2026-11-29T02:06:08Z`: a plan's listed_at."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def listing_note(listed_at: str | None, now: float | None = None) -> str | None:
    """How old a run's listing is, for a person: `files listed 3 h 5 min ago, at ... (--no-cache lists ...)`."""
    if listed_at is None:
        return None
    import calendar

    try:
        then = calendar.timegm(time.strptime(listed_at, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:  # the schema's pattern admits a 13th month; a plan edited by hand may have one
        return f"files listed at {listed_at}"
    age = max(0, int((time.time() if now is None else now) - then))
    if age < 60:
        return f"files listed {age} s ago, at {listed_at}"
    days, rest = divmod(age, 86_400)
    hours, rest = divmod(rest, 3_600)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{rest // 60} min"] * (not days)
    return f"files listed {' '.join(parts)} ago, at {listed_at} (--no-cache lists them again; a launch always does)"
