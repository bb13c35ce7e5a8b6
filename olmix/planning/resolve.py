"""Resolve every leaf's path patterns into files and token counts.

Patterns follow OLMo-core's glob semantics: `*` and `?` match within one
folder level, `[...]` a character class, `**` any number of levels. A pattern
is split at its first glob into a literal folder (its *prefix*) and the rest;
each distinct prefix is listed ONCE, with sizes, however many patterns and
leaves share it (a `**` anywhere below it makes that one listing recursive).
No file is ever asked for its size on its own. Listings run concurrently.

Tokens in a file = bytes // item size of the dtype. A pattern matching no file,
a missing folder, a dangling or looping symbolic link, or a size that is not a
multiple of the item size is a problem naming the leaf and the pattern; every
problem of every leaf is reported at once, never a silent zero. A store that
will not list a folder (credentials, permissions, bucket, network) is not a
leaf's problem: its folders make one UnreachableError (olmix.planning.stores).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from olmix.catalogue import ITEMSIZE
from olmix.errors import ExtraMissing, IssuesError, OlmixError
from olmix.leaves import Leaf
from olmix.planning.stores import NO_BUCKET, StorageError, StoreFailure, UnreachableError, failure

EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}
PATH_MAP_ENV = "OLMIX_PATH_MAP"
GLOB_CHARS = re.compile(r"[*?\[]")

Progress = Callable[[int, int], None]
"""Called with (listings done, listings in all) as listings complete."""

PathMap = Sequence[tuple[str, str]]


class PathMapError(OlmixError):
    """A malformed --path-map entry."""


@dataclass(frozen=True)
class Issue:
    """A pattern of a leaf that cannot be resolved."""

    leaf: str
    index: int  # position of the pattern in the leaf's paths
    pattern: str
    message: str

    def __str__(self) -> str:
        return f"leaf '{self.leaf}': pattern '{self.pattern}': {self.message}"


class ResolveError(IssuesError[Issue]):
    pass


@dataclass(frozen=True)  # frozen still lets cached_property fill __dict__
class ResolvedLeaf:
    name: str
    patterns: tuple[str, ...]  # after the path map
    files: Mapping[str, int]  # path -> tokens, in the order listed

    @cached_property
    def tokens(self) -> int:
        return sum(self.files.values())


# -- path map ----------------------------------------------------------------------------------------------


def parse_path_map(entries: Iterable[str]) -> list[tuple[str, str]]:
    """`PREFIX=REPLACEMENT` entries as (prefix, replacement) pairs; the first `=` separates them."""
    out = []
    for entry in entries:
        prefix, sep, replacement = entry.strip().partition("=")
        if not sep or not prefix:
            raise PathMapError(
                f"path map entry {entry!r} is not PREFIX=REPLACEMENT (e.g. s3://ai2-llm/=/data/ai2-llm/)"
            )
        out.append((prefix, replacement))
    return out


def path_map_from_env(environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Entries of $OLMIX_PATH_MAP: `PREFIX=REPLACEMENT` pairs separated by ';'."""
    value = (os.environ if environ is None else environ).get(PATH_MAP_ENV, "")
    return parse_path_map(e for e in value.split(";") if e.strip())


def apply_path_map(path: str, path_map: PathMap) -> str:
    """`path` with the first matching prefix replaced."""
    for prefix, replacement in path_map:
        if path.startswith(prefix):
            return replacement + path[len(prefix) :]
    return path


# -- patterns ----------------------------------------------------------------------------------------------


def split_url(path: str) -> tuple[str, str]:
    """(protocol, path without protocol); local paths and file:// have protocol "file"."""
    protocol, sep, rest = path.partition("://")
    if not sep:
        return "file", os.path.abspath(path)
    if protocol == "file":
        return "file", rest
    return protocol, rest


def split_pattern(path: str) -> tuple[str, str]:
    """(literal folder ending in '/', the rest) of a pattern without protocol."""
    match = GLOB_CHARS.search(path)
    head = path if match is None else path[: match.start()]
    cut = head.rfind("/") + 1
    return path[:cut], path[cut:]


@cache
def _glob_regex(rest: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(rest):
        if rest.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif rest.startswith("**", i):
            out.append(".*")
            i += 2
        elif rest[i] == "*":
            out.append("[^/]*")
            i += 1
        elif rest[i] == "?":
            out.append("[^/]")
            i += 1
        elif rest[i] == "[" and (end := rest.find("]", i + 2)) != -1:
            body = rest[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        else:
            out.append(re.escape(rest[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _recursive(rest: str) -> bool:
    return "/" in rest or "**" in rest


# -- listing -----------------------------------------------------------------------------------------------


def filesystem(protocol: str) -> Any:
    """A fresh fsspec filesystem for `protocol` (fresh: no listing cached from an earlier call)."""
    import fsspec  # type: ignore[import-untyped]

    try:
        return fsspec.filesystem(protocol, skip_instance_cache=True)
    except ImportError as exc:
        extra = EXTRAS.get(protocol)
        if extra:
            raise ExtraMissing(f"reading {protocol}:// paths needs the {extra} extra ({exc})", extra) from exc
        raise StorageError(f"reading {protocol}:// paths needs a filesystem for them ({exc})") from exc
    except ValueError as exc:
        raise StorageError(f"no filesystem for {protocol}:// paths ({exc})") from exc


# relative path -> bytes (or a BROKEN_LINK marker); a missing folder; or why the store cannot be listed
Listing = dict[str, int] | FileNotFoundError | NotADirectoryError | StoreFailure
DANGLING, LOOPING = -1, -2  # "sizes" of symbolic links that lead nowhere or in a circle
BROKEN_LINK = {DANGLING: "a symbolic link to nothing (dangling)", LOOPING: "a symbolic link that loops"}


def _broken(path: str) -> int | None:
    """DANGLING or LOOPING for a symbolic link stat() cannot follow; None for anything else."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return DANGLING
    except OSError as exc:
        return LOOPING if exc.errno == errno.ELOOP else None
    return None


def _list_local(root: str, recursive: bool) -> Listing:
    """A local folder's files and sizes, by os.scandir: no fsspec (and its import) for local data."""
    out: dict[str, int] = {}
    base = root.rstrip("/") + "/" if root != "/" else "/"
    pending = [root]
    seen = {os.path.realpath(root)}  # folders reached through symlinks are listed once: no cycles
    try:
        while pending:
            folder = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_symlink() and (broken := _broken(entry.path)) is not None:
                        out[entry.path[len(base) :]] = broken  # an error only if a pattern matches it
                    elif entry.is_dir():
                        real = os.path.realpath(entry.path)
                        if recursive and real not in seen:
                            seen.add(real)
                            pending.append(entry.path)
                    elif entry.is_file():
                        out[entry.path[len(base) :]] = entry.stat().st_size
    except (FileNotFoundError, NotADirectoryError) as exc:
        return exc
    except OSError as exc:
        return failure("file", base, exc)
    return out


def _list(fs: Any, protocol: str, prefix: str, recursive: bool) -> Listing:
    root = prefix.rstrip("/") or "/"
    if protocol == "file":
        return _list_local(root, recursive)
    try:
        if recursive:
            entries = fs.find(root, detail=True).values()
        else:
            entries = [e for e in fs.ls(root, detail=True) if e.get("type") != "directory"]
    except FileNotFoundError as exc:
        found = failure(protocol, f"{protocol}://{root.rstrip('/')}/", exc)
        return found if found.kind == NO_BUCKET else exc  # a missing bucket is the store's problem, not a leaf's
    except NotADirectoryError as exc:
        return exc
    except Exception as exc:  # credentials, network, permissions: not the pattern's fault
        return failure(protocol, f"{protocol}://{root.rstrip('/')}/", exc)
    out = {}
    base = root.rstrip("/") + "/" if root != "/" else "/"
    for entry in entries:
        name = entry["name"]
        if protocol == "file":
            name = name.removeprefix("file://")
        elif name.startswith(f"{protocol}://"):
            name = name[len(protocol) + 3 :]
        if name.startswith(base) and entry.get("type", "file") != "directory":
            out[name[len(base) :]] = int(entry["size"])
    return out


def _join(protocol: str, prefix: str, rel: str) -> str:
    return prefix + rel if protocol == "file" else f"{protocol}://{prefix}{rel}"


Listings = dict[tuple[str, str], tuple[bool, Listing]]
"""(protocol, prefix) -> (listed recursively?, listing): folders already listed, to list each once."""


def resolve(
    leaves: Sequence[Leaf],
    dtype: str,
    path_map: PathMap = (),
    *,
    progress: Progress | None = None,
    workers: int = 32,
    listed: Listings | None = None,
) -> list[ResolvedLeaf]:
    """Files and token counts behind every leaf, in leaf order; ResolveError lists every problem.

    `listed` carries listings between calls (the configs of one launch): a folder in it is not listed
    again, and the folders this call lists are added to it. UnreachableError names every folder the
    store would not list, in config order.
    """
    itemsize = ITEMSIZE[dtype]
    mapped = [[apply_path_map(p, path_map) for p in leaf.paths] for leaf in leaves]
    # (protocol, prefix) -> recursive?, in config order
    wanted: dict[tuple[str, str], bool] = {}
    for patterns in mapped:
        for pattern in patterns:
            protocol, path = split_url(pattern)
            prefix, rest = split_pattern(path)
            key = (protocol, prefix)
            wanted[key] = wanted.get(key, False) or _recursive(rest)
    listed = {} if listed is None else listed
    todo = {k: rec for k, rec in wanted.items() if k not in listed or (rec and not listed[k][0])}

    systems = {protocol: filesystem(protocol) for protocol in sorted({p for p, _ in todo}) if protocol != "file"}
    total = len(todo)
    if todo:
        from concurrent.futures import ThreadPoolExecutor, as_completed  # only a listing needs threads

        with ThreadPoolExecutor(max_workers=max(1, min(workers, total))) as pool:
            futures = {pool.submit(_list, systems.get(k[0]), k[0], k[1], rec): (k, rec) for k, rec in todo.items()}
            for done, future in enumerate(as_completed(futures), 1):
                key, rec = futures[future]
                listed[key] = (rec, future.result())
                if progress is not None:
                    progress(done, total)
    listings = {k: listed[k][1] for k in wanted}

    failures = [v for v in listings.values() if isinstance(v, StoreFailure)]  # in config order
    if failures:
        raise UnreachableError(failures)

    issues: list[Issue] = []
    resolved = []
    for leaf, patterns in zip(leaves, mapped, strict=True):
        files: dict[str, int] = {}
        for index, pattern in enumerate(patterns):
            protocol, path = split_url(pattern)
            prefix, rest = split_pattern(path)
            listing = listings[(protocol, prefix)]
            where = _join(protocol, prefix, "")
            if not isinstance(listing, dict):  # a missing folder (store failures were raised above)
                issues.append(Issue(leaf.name, index, pattern, f"no such folder {where}"))
                continue
            regex = _glob_regex(rest)
            matched = sorted(rel for rel in listing if regex.match(rel))
            if not matched:
                issues.append(Issue(leaf.name, index, pattern, f"matches no file ({len(listing)} files in {where})"))
                continue
            for rel in matched:
                size = listing[rel]
                full = _join(protocol, prefix, rel)
                if size < 0:
                    issues.append(Issue(leaf.name, index, pattern, f"{full} is {BROKEN_LINK[size]}"))
                elif size % itemsize:
                    issues.append(
                        Issue(
                            leaf.name,
                            index,
                            pattern,
                            f"{full} has {size} bytes, not a multiple of {itemsize} ({dtype})",
                        )
                    )
                files.setdefault(full, size // itemsize)
        resolved.append(ResolvedLeaf(leaf.name, tuple(patterns), files))
    if issues:
        raise ResolveError(issues)
    return resolved
