from __future__ import annotations

from pathlib import Path

import pytest

from olmix.leaves import Leaf
from olmix.planning.resolve import (
    ResolveError,
    _glob_regex,
    apply_path_map,
    parse_path_map,
    path_map_from_env,
    resolve,
    split_pattern,
)

GLOBS = [
    # (pattern relative to its folder, name, matches?)
    ("*.npy", "part-0.npy", True),
    ("*.npy", "sub/part-0.npy", False),  # '*' stays within one folder level
    ("**/*.npy", "part-0.npy", True),  # '**/' matches zero levels
    ("**/*.npy", "a/b/part-0.npy", True),
    ("**", "a/b/c", True),
    ("*/x.npy", "a/x.npy", True),
    ("*/x.npy", "a/b/x.npy", False),
    ("part-?.npy", "part-1.npy", True),
    ("part-?.npy", "part-12.npy", False),
    ("part-[01].npy", "part-1.npy", True),
    ("part-[!01].npy", "part-1.npy", False),
    ("part-[!01].npy", "part-2.npy", True),
    ("x.npy", "x.npy", True),
    ("x.npy", "x.npyy", False),
    ("a.b", "axb", False),  # '.' is literal
]


@pytest.mark.parametrize(("pattern", "name", "matches"), GLOBS)
def test_glob_semantics(pattern: str, name: str, matches: bool) -> None:
    assert bool(_glob_regex(pattern).match(name)) is matches


@pytest.mark.parametrize(
    ("path", "prefix", "rest"),
    [
        ("bkt/a/b/*.npy", "bkt/a/b/", "*.npy"),
        ("bkt/a/*/c/*.npy", "bkt/a/", "*/c/*.npy"),
        ("bkt/a/part-*.npy", "bkt/a/", "part-*.npy"),
        ("bkt/a/file.npy", "bkt/a/", "file.npy"),
        ("/data/**/x.npy", "/data/", "**/x.npy"),
    ],
)
def test_split_pattern(path: str, prefix: str, rest: str) -> None:
    assert split_pattern(path) == (prefix, rest)


@pytest.mark.parametrize(
    ("entries", "path", "mapped"),
    [
        (["s3://ai2-llm/=/data/ai2-llm/"], "s3://ai2-llm/x/*.npy", "/data/ai2-llm/x/*.npy"),
        (["s3://other/=/o/"], "s3://ai2-llm/x.npy", "s3://ai2-llm/x.npy"),
        (["s3://a/=/first/", "s3://a/=/second/"], "s3://a/x", "/first/x"),  # the first match wins
        (["s3://a/b/=/deep/", "s3://a/=/shallow/"], "s3://a/b/x", "/deep/x"),
        (["gs://b/=s3://c/"], "gs://b/k=v/x", "s3://c/k=v/x"),  # '=' after the first belongs to the path
    ],
)
def test_path_map(entries: list[str], path: str, mapped: str) -> None:
    assert apply_path_map(path, parse_path_map(entries)) == mapped


@pytest.mark.parametrize("entry", ["no-separator", "=/data/"])
def test_path_map_rejects_malformed_entries(entry: str) -> None:
    with pytest.raises(Exception, match="PREFIX=REPLACEMENT"):
        parse_path_map([entry])


def test_path_map_from_env() -> None:
    env = {"OLMIX_PATH_MAP": "s3://a/=/x/ ; gs://b/=/y/;"}
    assert path_map_from_env(env) == [("s3://a/", "/x/"), ("gs://b/", "/y/")]
    assert path_map_from_env({}) == []


def _tree(root: Path, files: dict[str, int]) -> None:
    for rel, size in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)


def _leaf(name: str, *paths: str) -> Leaf:
    return Leaf(name, paths, 1.0, ())


def test_resolves_local_tree_with_token_counts(tmp_path: Path) -> None:
    _tree(tmp_path, {"a/1.npy": 40, "a/2.npy": 8, "a/skip.txt": 4, "a/sub/3.npy": 12, "b/x/y/4.npy": 16})
    got = resolve(
        [
            _leaf("flat", f"{tmp_path}/a/*.npy"),
            _leaf("deep", f"file://{tmp_path}/a/**/*.npy"),
            _leaf("mid", f"{tmp_path}/b/*/y/*.npy"),
            _leaf("one", f"{tmp_path}/a/2.npy"),
        ],
        "uint32",
    )
    assert [(r.name, tuple(r.files.items())) for r in got] == [
        ("flat", ((f"{tmp_path}/a/1.npy", 10), (f"{tmp_path}/a/2.npy", 2))),
        ("deep", ((f"{tmp_path}/a/1.npy", 10), (f"{tmp_path}/a/2.npy", 2), (f"{tmp_path}/a/sub/3.npy", 3))),
        ("mid", ((f"{tmp_path}/b/x/y/4.npy", 4),)),
        ("one", ((f"{tmp_path}/a/2.npy", 2),)),
    ]
    assert got[2].tokens == 4


@pytest.mark.parametrize(("dtype", "tokens"), [("uint8", 48), ("uint16", 24), ("uint32", 12), ("uint64", 6)])
def test_tokens_are_bytes_over_itemsize(tmp_path: Path, dtype: str, tokens: int) -> None:
    _tree(tmp_path, {"d/x.npy": 48})
    assert resolve([_leaf("x", f"{tmp_path}/d/*.npy")], dtype)[0].tokens == tokens


def test_path_map_points_at_local_mirror(tmp_path: Path) -> None:
    _tree(tmp_path, {"ai2-llm/p/x.npy": 8})
    got = resolve([_leaf("x", "s3://ai2-llm/p/*.npy")], "uint32", [("s3://ai2-llm/", f"{tmp_path}/ai2-llm/")])
    assert got[0].files == {f"{tmp_path}/ai2-llm/p/x.npy": 2}


def test_every_problem_of_every_leaf_is_reported(tmp_path: Path) -> None:
    _tree(tmp_path, {"a/1.npy": 40, "a/odd.npy": 6, "b/1.bin": 4})
    leaves = [
        _leaf("ok", f"{tmp_path}/a/1.npy"),
        _leaf("nomatch", f"{tmp_path}/b/*.npy"),
        _leaf("missing", f"{tmp_path}/nowhere/*.npy"),
        _leaf("odd", f"{tmp_path}/a/odd.npy"),
        _leaf("second", f"{tmp_path}/a/1.npy", f"{tmp_path}/a/*.zst"),
    ]
    with pytest.raises(ResolveError) as info:
        resolve(leaves, "uint32")
    issues = {(i.leaf, i.index): i for i in info.value.issues}
    assert sorted(issues) == [("missing", 0), ("nomatch", 0), ("odd", 0), ("second", 1)]
    assert "matches no file" in issues["nomatch", 0].message
    assert "no such folder" in issues["missing", 0].message
    assert "6 bytes, not a multiple of 4" in issues["odd", 0].message
    text = str(info.value)
    assert f"leaf 'nomatch': pattern '{tmp_path}/b/*.npy'" in text


def test_progress_reports_each_listing(tmp_path: Path) -> None:
    _tree(tmp_path, {"a/1.npy": 4, "b/1.npy": 4, "c/1.npy": 4})
    seen: list[tuple[int, int]] = []
    leaves = [_leaf(n, f"{tmp_path}/{n}/*.npy", f"{tmp_path}/{n}/1.npy") for n in "abc"]
    resolve(leaves, "uint32", progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]  # three folders: one listing each, shared by two patterns


def test_missing_extra_names_it() -> None:
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(Exception, match=r"pip install 'olmix\[gcs\]'"):
        resolve([_leaf("x", "gs://b/*.npy")], "uint32")


def test_a_symlink_cycle_is_listed_once(tmp_path: Path) -> None:
    from olmix.planning.resolve import _list_local

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.npy").write_bytes(b"\0" * 8)
    (tmp_path / "a" / "b" / "loop").symlink_to(tmp_path / "a")
    assert _list_local(str(tmp_path / "a"), recursive=True) == {"b/x.npy": 8}
