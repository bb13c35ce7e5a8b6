"""Listings that go stale: files deleted, truncated or added between two commands, on real files.

A dry run may answer from the cached listing and says how old it is; a launch
lists the store again before it submits; `--no-cache` replaces the entry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from olmix.errors import ConfigError
from olmix.leaves import leaves
from olmix.loading.config import load_config
from olmix.planning import cache
from olmix.planning.listing import listing_note, utc_stamp
from olmix.planning.plan import build_plan

OLMIX = str(Path(sys.executable).with_name("olmix"))
TOKEN = 4  # bytes per uint32 token


def olmix(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache")}
    env.pop("OLMIX_PATH_MAP", None)
    return subprocess.run(
        [OLMIX, *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Config c.yaml over d/*.npy: a.npy 3,000 tokens, b.npy 2,000, c.npy 1,000."""
    data = tmp_path / "d"
    data.mkdir()
    for name, tokens in (("a", 3_000), ("b", 2_000), ("c", 1_000)):
        (data / f"{name}.npy").write_bytes(b"\0" * TOKEN * tokens)
    (tmp_path / "c.yaml").write_text(
        "name: stale\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.0001\n"  # 2,000 tokens
        f"sources:\n  - name: web\n    paths: ['{data}/*.npy']\n"
    )
    return tmp_path


def change_the_data(data: Path) -> None:
    """Delete a.npy, truncate b.npy to 500 tokens, add e.npy of 700."""
    (data / "a.npy").unlink()
    with (data / "b.npy").open("r+b") as f:
        f.truncate(TOKEN * 500)
    (data / "e.npy").write_bytes(b"\0" * TOKEN * 700)


def files_of(plan: dict[str, object]) -> dict[str, int]:
    runs: Any = plan["runs"]
    (run,) = runs
    (leaf,) = run["leaves"]
    return {Path(path).name: tokens for path, tokens in leaf["files"].items()}


BEFORE = {"a.npy": 3_000, "b.npy": 2_000, "c.npy": 1_000}
AFTER = {"b.npy": 500, "c.npy": 1_000, "e.npy": 700}


@pytest.mark.slow
def test_a_launch_lists_again_what_a_dry_run_took_from_the_cache(corpus: Path) -> None:
    args = ["launch", "run", "--config", str(corpus / "c.yaml"), "--runs-dir", str(corpus / "runs"), "--json"]
    first = olmix(*args, "--dry-run", tmp=corpus)
    assert first.returncode == 0, first.stderr
    assert files_of(json.loads(first.stdout)) == BEFORE

    change_the_data(corpus / "d")
    preview = olmix(*args, "--dry-run", tmp=corpus)
    assert preview.returncode == 0, preview.stderr
    cached = json.loads(preview.stdout)
    assert files_of(cached) == BEFORE  # a preview may answer from the cache ...
    assert cached["runs"][0]["listed_at"] == json.loads(first.stdout)["runs"][0]["listed_at"]  # ... and says when

    launched = olmix(*args, "--yes", "--trainer-command", f"{sys.executable} -c pass", tmp=corpus)
    assert launched.returncode == 0, launched.stderr
    group = json.loads(launched.stdout)["group"]
    submitted = json.loads((corpus / "runs" / group / "plan.json").read_text())
    assert files_of(submitted) == AFTER  # never a deleted file, a stale size or a missed new file

    again = olmix(*args, "--dry-run", tmp=corpus)  # the launch's listing replaced the entry
    assert files_of(json.loads(again.stdout)) == AFTER


@pytest.mark.slow
def test_no_cache_lists_again_and_replaces_the_entry(corpus: Path) -> None:
    args = ["launch", "preview", "--config", str(corpus / "c.yaml"), "--json"]
    assert files_of(json.loads(olmix(*args, tmp=corpus).stdout)) == BEFORE
    change_the_data(corpus / "d")
    assert files_of(json.loads(olmix(*args, "--no-cache", tmp=corpus).stdout)) == AFTER
    assert files_of(json.loads(olmix(*args, tmp=corpus).stdout)) == AFTER  # the cache now holds the new listing


@pytest.mark.slow
def test_a_preview_from_an_old_listing_says_how_old(corpus: Path) -> None:
    config = corpus / "c.yaml"
    lvs = leaves(load_config(config))
    directory = corpus / "cache" / "olmix"
    assert cache.load(lvs, "uint32", (), directory) is None
    assert olmix("launch", "preview", "--config", str(config), tmp=corpus).returncode == 0
    hit = cache.load(lvs, "uint32", (), directory)
    assert hit is not None
    hours_ago = time.time() - 2 * 3_600 - 5 * 60 - 10
    cache.store(lvs, "uint32", (), hit[0], directory, listed_at=hours_ago)  # as if listed 2 h 5 min ago

    shown = olmix("launch", "preview", "--config", str(config), tmp=corpus)
    assert shown.returncode == 0, shown.stderr
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hours_ago))
    assert f"files listed 2 h 5 min ago, at {stamp}" + AGAIN in shown.stdout.splitlines()


AGAIN = " (--no-cache lists them again; a launch always does)"


@pytest.mark.parametrize(
    ("age", "note"),
    [
        (0, "files listed 0 s ago, at {t}"),
        (59, "files listed 59 s ago, at {t}"),
        (60, "files listed 1 min ago, at {t}" + AGAIN),
        (3 * 3_600, "files listed 3 h 0 min ago, at {t}" + AGAIN),
        (86_400 + 7_200 + 60, "files listed 1 d 2 h ago, at {t}" + AGAIN),
    ],
)
def test_listing_note(age: int, note: str) -> None:
    then = 1_790_000_000  # 2026-09-21T14:13:20Z
    assert utc_stamp(then) == "2026-09-21T14:13:20Z"
    assert listing_note("2026-09-21T14:13:20Z", now=then + age) == note.format(t="2026-09-21T14:13:20Z")
    assert listing_note(None) is None
    assert listing_note("2026-13-45T99:99:99Z") == "files listed at 2026-13-45T99:99:99Z"


def test_a_launch_of_several_configs_lists_each_folder_once(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(corpus / "cache"))
    data = corpus / "d"
    (corpus / "more").mkdir()
    (corpus / "more" / "x.npy").write_bytes(b"\0" * TOKEN * 1_000)
    folder = corpus / "configs"
    folder.mkdir()
    for name in ("one", "two"):
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.0001\nsources:\n"
            f"  - name: web\n    paths: ['{data}/*.npy']\n  - name: more\n    paths: ['{corpus}/more/*.npy']\n"
        )
    scanned: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path: str) -> object:
        scanned.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    plan = build_plan(folder, use_cache=False)
    assert [run.name for run in plan.runs] == ["one", "two"]
    assert sorted(scanned) == sorted([str(data), str(corpus / "more")])


def test_dangling_and_looping_symlinks_name_the_leaf_and_the_pattern(corpus: Path) -> None:
    data = corpus / "d"
    (data / "gone.npy").symlink_to(corpus / "nowhere.npy")
    (data / "loop.npy").symlink_to(data / "loop.npy")
    (data / "skipped.bin").symlink_to(corpus / "nowhere.bin")  # matched by no pattern: not a problem
    with pytest.raises(ConfigError) as info:
        build_plan(corpus / "c.yaml", use_cache=False, cache_directory=corpus / "cache")
    pattern = f"{data}/*.npy"
    assert [p.message for p in info.value.problems] == [
        f"leaf 'web': pattern '{pattern}': {data}/gone.npy is a symbolic link to nothing (dangling)",
        f"leaf 'web': pattern '{pattern}': {data}/loop.npy is a symbolic link that loops",
    ]
    assert [p.path for p in info.value.problems] == [("sources", 0, "paths", 0)] * 2
