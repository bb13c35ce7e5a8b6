from __future__ import annotations

import gc
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from olmix.errors import ConfigError
from olmix.planning import cache
from olmix.planning.budget import (
    largest_budget,
    largest_multiple,
    requested_tokens,
    shortfalls,
    sufficient_cap,
)
from olmix.planning.plan import ShortError, build, build_plan
from olmix.planning.planfile import plan_data, read_plan, write_plan


@pytest.mark.parametrize(
    ("model", "multiple", "tokens"),
    [("olmo3_14m", 0.5, 140_000_000), ("olmo3_1b", 1.0, 20_000_000_000), ("olmo2_30m", 5.0, 3_000_000_000)],
)
def test_requested_tokens(model: str, multiple: float, tokens: int) -> None:
    assert requested_tokens(model, multiple) == tokens


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(Exception, match=r"unknown model id 'olmo9_1m'.*olmo3_14m"):
        requested_tokens("olmo9_1m", 1.0)


@pytest.mark.parametrize(
    ("have", "need", "suffices"), [(100, 150, 1.5), (100, 151, 1.51), (3, 10, 3.34), (100, 50, 1.0), (0, 5, None)]
)
def test_sufficient_cap(have: int, need: int, suffices: float | None) -> None:
    assert sufficient_cap(have, need) == suffices


def test_shortfalls_lists_every_short_leaf() -> None:
    rows = [("ok", 100, 100, 1.0), ("rep", 100, 150, 1.5), ("short", 100, 151, 1.5), ("empty", 0, 1, 2.0)]
    got = shortfalls(rows)
    assert [(s.leaf, s.suffices) for s in got] == [("short", 1.51), ("empty", None)]
    assert "has 100 tokens, needs 151; cap 1.5 allows 150; a cap of 1.51 would suffice" in str(got[0])


def _config(body: str) -> str:
    return "name: exp\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.05\n" + body  # 1,000,000 tokens


Write = Callable[[str, str | bytes], Path]


@pytest.fixture
def data(write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write("d/a/1.npy", b"\0" * 4 * 600_000)
    write("d/a/2.npy", b"\0" * 4 * 200_000)
    write("d/b/1.npy", b"\0" * 4 * 300_000)
    return tmp_path / "d"


def test_plan_of_a_feasible_config(write: Write, data: Path) -> None:
    config = write(
        "c.yaml",
        _config(f"sources:\n  - name: a\n    paths: ['{data}/a/*.npy']\n"
                f"  - name: b\n    paths: ['{data}/b/*.npy']\n    max_repetition_factor: 2\n"),
    )  # fmt: skip
    plan = build_plan(config)
    run = plan.runs[0]
    assert (run.model, run.parameters, run.requested_tokens, run.dtype) == ("olmo3_1m", 1_000_000, 1_000_000, "uint32")
    got = [(x.name, x.ratio, x.tokens_available, x.tokens_needed, x.max_repetition_factor) for x in run.leaves]
    assert got == [("a", 0.5, 800_000, 500_000, 1.0), ("b", 0.5, 300_000, 500_000, 2.0)]
    assert list(run.leaves[0].files.values()) == [600_000, 200_000]
    assert plan.group.startswith("exp-") and len(plan.group) == len("exp-") + 8
    assert plan.config.sha256.startswith(plan.group[4:])


def test_every_problem_is_reported_at_once(write: Write, data: Path) -> None:
    config = write(
        "c.yaml",
        "name: exp\nchinchilla_multiple: 0.05\nvariants: 3\nsources:\n"
        f"  - name: a\n    paths: ['{data}/a/*.npy', '{data}/a/*.bin']\n"
        f"  - name: b\n    paths: ['{data}/nowhere/*.npy']\n",
    )
    with pytest.raises(ConfigError) as info:
        build_plan(config)
    messages = [str(p) for p in info.value.problems]
    assert len(messages) == 3, messages
    text = "\n".join(messages)
    assert "variants" not in text  # a swarm plans once the rest does
    assert "proxy_model_id is required" in text
    assert f"$.sources[0].paths[1]: leaf 'a': pattern '{data}/a/*.bin': matches no file" in text
    assert f"leaf 'b': pattern '{data}/nowhere/*.npy': no such folder" in text


def _planning() -> bool:
    """Whether the builder's own body is running, somewhere up the stack."""
    code = getattr(build, "__wrapped__", build).__code__
    frame = sys._getframe(1)
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back  # type: ignore[assignment]
    return frame is not None


def test_the_cycle_collector_is_paused_only_while_planning(write: Write, data: Path) -> None:
    body = "sources:\n  - name: a\n    paths: ['{}']\n    max_repetition_factor: 2\n"
    good = write("good.yaml", _config(body.format(f"{data}/a/*.npy")))
    bad = write("bad.yaml", _config(body.format(f"{data}/none/*.npy")))
    collections: list[bool] = []  # for each collection: did it run while planning?
    threshold = gc.get_threshold()

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(_planning())

    gc.callbacks.append(record)
    gc.set_threshold(1)  # a collection at (nearly) every allocation, unless paused
    try:
        build_plan(good)  # the first plan also builds the plan model: plenty of allocation
        with pytest.raises(ConfigError):
            build_plan(bad)
        enabled = gc.isenabled()  # back on after success and after failure
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.pop()
    # collections ran (the threshold saw to that), but none while a plan was being built
    assert enabled and collections and not any(collections), collections
    gc.disable()
    try:  # a caller that paused the collector itself finds it still paused
        build_plan(good)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_short_leaves_are_all_reported(write: Write, data: Path) -> None:
    config = write(
        "c.yaml",
        _config(f"allow_repetition: false\nsources:\n  - name: a\n    paths: ['{data}/b/*.npy']\n"
                f"  - name: b\n    paths: ['{data}/b/*.npy']\n    max_repetition_factor: 2\n"),
    )  # fmt: skip
    with pytest.raises(ConfigError) as info:
        build_plan(config)
    text = str(info.value)
    # allow_repetition: false holds every leaf to a cap of 1.0
    assert "leaf 'a' is short: has 300,000 tokens, needs 500,000; cap 1.0 allows 300,000; a cap of 1.67" in text
    assert "leaf 'b' is short" in text


@pytest.mark.parametrize(
    ("rows", "budget"),
    [
        ([(300, 0.5, 1.0), (800, 0.5, 1.0)], 600),  # the smaller leaf at half the budget
        ([(300, 0.5, 2.0), (800, 0.5, 1.0)], 1200),  # its cap doubles what it supplies
        ([(100, 0.3, 1.0)], 333),  # 334 × 0.3 = 100.2 needs 101 tokens
        ([(10, 0.3, 1.5)], 50),  # cap 1.5 allows 15 tokens: 50 × 0.3 = 15, 51 × 0.3 needs 16
        ([(0, 0.5, 4.0), (9, 0.5, 1.0)], 0),  # a leaf with a share and no tokens: nothing fits
    ],
)
def test_largest_budget_is_the_most_every_leaf_covers(rows: list[tuple[int, float, float]], budget: int) -> None:
    assert largest_budget(rows) == budget
    assert budget == 0 or shortfalls([("x", h, math.ceil(budget * r - 1e-6), c) for h, r, c in rows]) == []


@pytest.mark.parametrize(
    ("budget", "model", "multiple"),
    [
        (600_000, "olmo3_1m", 0.03),  # 600,000 / (20 × 1M)
        (600_000, "olmo3_14m", 0.0021),  # 600,000 / 280M = 0.00214..., two significant digits, rounded down
        (280_000, "olmo3_14m", 0.001),  # exactly
        (279_999, "olmo3_14m", 0.00099),
        (0, "olmo3_1m", None),
    ],
)
def test_largest_multiple_fits_the_budget(budget: int, model: str, multiple: float | None) -> None:
    assert largest_multiple(budget, model) == multiple


def test_short_leaves_make_one_summary_of_what_fits(write: Write, data: Path) -> None:
    config = write(
        "c.yaml",
        _config(f"allow_repetition: false\nsources:\n  - name: a\n    paths: ['{data}/a/*.npy']\n"
                f"  - name: b\n    paths: ['{data}/b/*.npy']\n"),
    )  # fmt: skip
    with pytest.raises(ShortError) as info:
        build([config], overrides=["proxy_model_id=olmo3_14m", "chinchilla_multiple=0.01"])  # 2.8M tokens
    summary = info.value.summary
    (shortage,) = summary.shortages
    # each leaf needs 1.4M; a has 800,000 and b 300,000 at cap 1: b allows at most 600,000 tokens in all
    assert [s.leaf for s in shortage.short] == ["a", "b"]
    assert (shortage.requested, shortage.available, shortage.largest_budget) == (2_800_000, 1_100_000, 600_000)
    assert summary.repetition == 4.67  # b: 1.4M / 300,000
    assert (summary.fits, summary.smallest, summary.fits_smallest) == (0.0021, "olmo3_1m", 0.03)
    assert len(info.value.leaf_problems) == 2 and "leaf 'b' is short" in str(info.value)


def test_the_summary_holds_every_run_of_the_group(write: Write, data: Path) -> None:
    head = "proxy_model_id: olmo3_1m\nchinchilla_multiple: 0.02\nallow_repetition: false\n"  # 400,000 tokens
    short = f"name: short\n{head}sources:\n  - name: b\n    paths: ['{data}/b/*.npy']\n"
    fine = f"name: fine\n{head}sources:\n  - name: a\n    paths: ['{data}/a/*.npy']\n"
    write("g/short.yaml", short)
    write("g/fine.yaml", fine)
    with pytest.raises(ShortError) as info:
        build([data.parent / "g"])
    summary = info.value.summary
    assert summary.runs == 2 and [s.run for s in summary.shortages] == ["short"]
    # the run that fits bounds the answer too: a supplies 800,000, b 300,000
    assert summary.fits == 0.015


def test_zero_weight_leaf_is_left_out(write: Write, data: Path) -> None:
    config = write(
        "c.yaml",
        _config(f"sources:\n  - name: a\n    weight: 1\n    paths: ['{data}/a/*.npy']\n    max_repetition_factor: 2\n"
                f"  - name: b\n    weight: 0\n    paths: ['{data}/b/*.npy']\n"),
    )  # fmt: skip
    assert [x.name for x in build_plan(config).runs[0].leaves] == ["a"]


def test_plan_round_trips_and_is_validated_on_read(write: Write, data: Path, tmp_path: Path) -> None:
    config = write(
        "c.yaml", _config(f"sources:\n  - name: a\n    paths: ['{data}/a/*.npy']\n    max_repetition_factor: 2\n")
    )
    plan = build_plan(config, path_map=[("s3://x/", "/y/")])
    out = tmp_path / "out" / "plan.json"
    write_plan(plan, out)
    assert read_plan(out) == plan
    assert json.loads(out.read_text())["path_map"] == [["s3://x/", "/y/"]]
    assert [p.name for p in out.parent.iterdir()] == ["plan.json"]  # no temporary file left behind

    broken = json.loads(out.read_text())
    broken["runs"][0]["leaves"][0]["ratio"] = 1.5
    del broken["group"]
    out.write_text(json.dumps(broken, indent=2))
    with pytest.raises(ConfigError) as info:
        read_plan(out)
    paths = sorted(p.path for p in info.value.problems)
    assert paths == [(), ("runs", 0, "leaves", 0, "ratio")]
    assert all(p.line > 0 for p in info.value.problems)


def test_each_run_records_what_its_study_varied(write: Write, data: Path, tmp_path: Path) -> None:
    sources = f"sources:\n  - name: a\n    paths: ['{data}/a/*.npy']\n    max_repetition_factor: 2\n"
    studied = write("studied.yaml", _config("varied: {quality_threshold: 0.3, profile: heavy}\n" + sources))
    by_hand = write("by_hand.yaml", _config(sources).replace("name: exp", "name: hand"))
    plan = build_plan([studied, by_hand])
    out = tmp_path / "plan.json"
    write_plan(plan, out)
    runs = json.loads(out.read_text())["runs"]
    assert runs[0]["varied"] == {"quality_threshold": 0.3, "profile": "heavy"}
    assert "varied" not in runs[1]  # absent, not null: the schema accepts no null here
    assert read_plan(out).runs[0].varied == plan.runs[0].varied
    assert plan_data(plan)["runs"][1].keys() == runs[1].keys()


def test_cache_is_used_and_keyed_by_every_leaf(write: Write, data: Path, tmp_path: Path) -> None:
    one = write(
        "one.yaml", _config(f"sources:\n  - name: a\n    paths: ['{data}/a/*.npy']\n    max_repetition_factor: 2\n")
    )
    two = write(
        "two.yaml", _config(f"sources:\n  - name: a\n    paths: ['{data}/a/1.npy']\n    max_repetition_factor: 2\n")
    )
    first = build_plan(one)
    second = build_plan(two)  # same leaf name, other pattern: never the first one's entry
    assert first.runs[0].leaves[0].tokens_available == 800_000
    assert second.runs[0].leaves[0].tokens_available == 600_000
    entries = sorted((tmp_path / "cache" / "olmix" / "resolve").iterdir())
    assert len(entries) == 2

    (data / "a" / "2.npy").unlink()  # the cache answers without listing; --no-cache sees the change
    assert build_plan(one).runs[0].leaves[0].tokens_available == 800_000
    assert build_plan(one, use_cache=False).runs[0].leaves[0].tokens_available == 600_000


def test_a_corrupt_cache_entry_is_a_miss(write: Write, data: Path, tmp_path: Path) -> None:
    config = write(
        "c.yaml", _config(f"sources:\n  - name: a\n    paths: ['{data}/a/*.npy']\n    max_repetition_factor: 2\n")
    )
    build_plan(config)
    (entry,) = (tmp_path / "cache" / "olmix" / "resolve").iterdir()
    entry.write_text('{"inputs": {"format": 1}, "files": []}')
    assert build_plan(config).runs[0].leaves[0].tokens_available == 800_000
    # the right inputs, but one file named twice with made-up counts: a miss, never 2 tokens from 1 file
    cached = json.loads(entry.read_text())
    paths, _ = cached["files"][0]
    cached["files"][0] = [[paths[0], paths[0]], [1, 1]]
    entry.write_text(json.dumps(cached))
    leaf = build_plan(config).runs[0].leaves[0]
    assert (leaf.tokens_available, len(leaf.files)) == (800_000, 2)
    assert cache.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/olmix")


@pytest.mark.parametrize(("dtype", "largest"), [("uint16", "65,535"), ("uint8", "255")])
def test_a_dtype_too_narrow_for_the_tokenizer_is_refused_at_its_line(
    write: Write, data: Path, dtype: str, largest: str
) -> None:
    # dolma2's ids go up to 100,277 (its end-of-document token, which ends every document, is 100,257)
    config = write("c.yaml", _config(f"dtype: {dtype}\nsources:\n  - name: a\n    paths: ['{data}/a/*.npy']\n"))
    with pytest.raises(ConfigError) as info:
        build_plan(config)
    assert [str(p) for p in info.value.problems] == [
        f"{config}:4:8: $.dtype: dtype {dtype} holds token ids up to {largest}"
        ", but the dolma2 tokenizer's go up to 100,277: its token files are uint32 or uint64"
    ]
