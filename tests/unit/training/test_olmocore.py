from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from olmix.errors import PlanError
from olmix.planning.planfile import read_plan
from olmix.training import olmocore
from tests.conftest import needs_train
from tests.support.tokenfiles import as_run, run_plan, write_tokens

if TYPE_CHECKING:
    from olmix_generated.launch_plan import Run

Leaf = tuple[str, float, list[int]]  # name, ratio, tokens per file
MIXTURES: list[tuple[str, list[Leaf], int, float]] = [
    # (description, leaves (name, ratio, tokens per file), requested tokens, repetition cap)
    (
        "equal shares, one file each",
        [("a", 0.25, [200_000]), ("b", 0.25, [200_000]), ("c:x", 0.25, [200_000]), ("c:y", 0.25, [200_000])],
        400_000,
        1.0,
    ),
    (
        "uneven shares over several files",
        [
            ("all_dressed:science:vigintile_0020", 0.5, [120_000, 90_000, 60_000]),
            ("all_dressed:science:vigintile_0019", 0.3, [100_000, 80_000]),
            ("arxiv", 0.15, [70_000, 50_000]),
            ("wikipedia", 0.05, [40_000]),
        ],
        300_000,
        1.0,
    ),
    (
        "a leaf repeated within its cap",
        [("small", 0.4, [60_000, 40_000]), ("large", 0.6, [400_000])],
        250_000,
        2.0,
    ),
]


def assert_selected_as_planned(run: Run) -> None:
    """OLMo-core selects every leaf of the run, each within 1% of the tokens the plan needs from it."""
    selections = olmocore.build_mixture(run, sequence_length=128, global_batch_size=128 * 8)
    planned = {leaf.name: leaf.tokens_needed for leaf in run.leaves}
    assert sorted(s.leaf for s in selections) == sorted(planned)
    for selection in selections:
        need = planned[selection.leaf]
        assert abs(selection.tokens - need) <= 0.01 * need, (selection.leaf, selection.tokens, need)


@pytest.mark.slow
@needs_train
@pytest.mark.parametrize(("description", "leaves", "requested", "cap"), MIXTURES, ids=[m[0] for m in MIXTURES])
def test_olmo_core_selects_every_leaf_within_one_percent_of_the_plan(
    tmp_path: Path, description: str, leaves: list[Leaf], requested: int, cap: float
) -> None:
    run = as_run(run_plan(tmp_path, leaves, requested_tokens=requested, cap=cap))
    assert_selected_as_planned(run)


@pytest.mark.slow
@needs_train
def test_the_mixture_config_carries_the_plan_field_for_field(tmp_path: Path) -> None:
    leaves = [("web:vigintile_0020", 0.7, [10_000, 5_000]), ("arxiv", 0.3, [8_000])]
    run = as_run(run_plan(tmp_path, leaves, requested_tokens=6_000, cap=1.5))
    config = olmocore.source_mixture_config(run, global_batch_size=1024)
    assert config.requested_tokens == 6_000
    assert config.global_batch_size == 1024
    assert config.seed == 42
    got = [(s.source_name, s.target_ratio, s.paths, s.max_repetition_ratio) for s in config.source_list.sources]
    want = [(leaf.name, leaf.ratio, list(leaf.files), 1.5) for leaf in run.leaves]
    assert got == want


@pytest.mark.slow
@needs_train
def test_a_leaf_short_of_tokens_is_an_infeasible_mixture(tmp_path: Path) -> None:
    plan = run_plan(tmp_path, [("short", 0.5, [10_000]), ("long", 0.5, [500_000])], requested_tokens=100_000)
    run = as_run(plan)
    with pytest.raises(olmocore.InfeasibleMixture, match="short"):
        olmocore.build_mixture(run, sequence_length=128, global_batch_size=1024)


@pytest.mark.slow
@needs_train
def test_model_sizes_grow_with_the_id() -> None:
    small = olmocore.model_config("olmo3_1m", vocab_size=100_352).num_non_embedding_params
    large = olmocore.model_config("olmo3_14m", vocab_size=100_352).num_non_embedding_params
    assert small < large


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        (b"", "empty file"),
        (b"\x01\x02\x03\x04\x05", "not a whole number of 4-byte tokens"),
        ("no-eos", "does not end with the end-of-document token 100257"),
    ],
)
def test_bad_token_files_are_data_errors(tmp_path: Path, content: bytes | str | None, message: str) -> None:
    plan = run_plan(tmp_path, [("leaf", 1.0, [1000])], requested_tokens=500)
    path = tmp_path / "bad.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "no-eos":
        write_tokens(path, 1000, end_with_eos=False)
    plan["runs"][0]["leaves"][0]["files"][str(path)] = 0
    with pytest.raises(olmocore.DataError, match=message):
        olmocore.check_token_files(as_run(plan), eos_token_id=100257, vocab_size=100278)


def _with_id(path: Path, position: int, token: int) -> None:
    data = bytearray(path.read_bytes())
    data[4 * position : 4 * position + 4] = token.to_bytes(4, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("where", "token", "whose"),
    [
        ("train", 100278, "leaf web:x: "),  # the first id past dolma2's vocabulary
        ("train", 2**32 - 1, "leaf web:x: "),
        ("heldout", 100300, "leaf web:x (held out): "),
        ("eval", 100278, "--eval wiki: "),
    ],
)
def test_a_token_id_past_the_vocabulary_names_the_leaf_the_file_and_the_token(
    tmp_path: Path, where: str, token: int, whose: str
) -> None:
    pytest.importorskip("numpy")
    plan = run_plan(tmp_path, [("web:x", 1.0, [1000])], requested_tokens=500, heldout_tokens=300)
    train_file = Path(next(iter(plan["runs"][0]["leaves"][0]["files"])))
    bad = {
        "train": train_file,
        "heldout": train_file.parent / "heldout" / "part-00000.npy",
        "eval": write_tokens(tmp_path / "eval" / "wiki.npy", 200),
    }[where]
    _with_id(bad, 123, token)
    run = as_run(plan)
    with pytest.raises(olmocore.DataError) as caught:
        olmocore.check_token_files(
            run, eos_token_id=100257, vocab_size=100278, eval_sets={"wiki": [str(tmp_path / "eval" / "wiki.npy")]}
        )
    assert str(caught.value) == (
        f"bad token files:\n  {whose}{bad}: token 123 is id {token:,}, outside the dolma2 tokenizer's "
        "100,278 ids (0 to 100,277): made with another tokenizer, or not uint32?"
    )


def test_ids_inside_the_vocabulary_pass_and_are_read_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("numpy")
    monkeypatch.setattr(olmocore, "RANGE_CHUNK", 64)  # so the bad id sits in a later chunk
    plan = run_plan(tmp_path, [("leaf", 1.0, [1000])], requested_tokens=500)
    path = Path(next(iter(plan["runs"][0]["leaves"][0]["files"])))
    _with_id(path, 0, 100277)  # the largest id there is
    olmocore.check_token_files(as_run(plan), eos_token_id=100257, vocab_size=100278)
    _with_id(path, 700, 100278)
    with pytest.raises(olmocore.DataError, match=r"token 700 is id 100,278"):
        olmocore.check_token_files(as_run(plan), eos_token_id=100257, vocab_size=100278)


def test_ratios_that_do_not_sum_to_one_are_a_plan_error_at_the_leaves(tmp_path: Path) -> None:
    plan = run_plan(tmp_path, [("leaf", 1.0, [1000])], requested_tokens=500)
    plan["runs"][0]["leaves"][0]["ratio"] = 0.5
    with pytest.raises(PlanError) as caught:
        olmocore.run_leaves(as_run(plan))
    assert str(caught.value) == "run 'run': $.leaves: the ratios sum to 0.5, not 1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda run: run.update(leaves=[]), "$.runs[0].leaves: must not be empty"),
        (lambda run: run["leaves"][0].update(files={}), "$.runs[0].leaves[0].files: "),
    ],
)
def test_plans_without_leaves_or_files_never_reach_a_trainer(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    plan = run_plan(tmp_path, [("leaf", 1.0, [1000])], requested_tokens=500)
    change(plan["runs"][0])
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan, indent=2))
    with pytest.raises(PlanError) as caught:
        read_plan(path)
    assert message in str(caught.value)


PLANNED_CONFIG = """\
name: planned
proxy_model_id: olmo3_1m
chinchilla_multiple: 0.02
sources:
  - name: web
    topics:
      - name: science
        quality:
          - {name: vigintile_0020, paths: ['{root}/web/science/v20/*.npy']}
          - {name: vigintile_0019, paths: ['{root}/web/science/v19/*.npy']}
      - name: code
        paths: ['{root}/web/code/*.npy']
    max_repetition_factor: 1.0
  - name: arxiv
    max_repetition_factor: 2.0
    paths: ['{root}/arxiv/**/*.npy']
"""


@pytest.mark.slow
@needs_train
def test_a_plan_from_the_planner_is_what_olmo_core_selects(tmp_path: Path) -> None:
    """Config → olmix's planner (resolve, weights, budget) → OLMo-core: every leaf within 1% of the plan."""
    from olmix.planning.plan import build_plan

    root = tmp_path / "data"
    sizes = {
        "web/science/v20": [90_000, 70_000],
        "web/science/v19": [60_000],
        "web/code": [120_000],
        "arxiv/2023": [60_000],
        "arxiv/2024/q1": [50_000],
    }
    for i, (folder, tokens) in enumerate(sizes.items()):
        for j, n in enumerate(tokens):
            write_tokens(root / folder / f"part-{j:05d}.npy", n, seed=10 * i + j)
    config = tmp_path / "planned.yaml"
    config.write_text(PLANNED_CONFIG.replace("{root}", str(root)))
    run = build_plan(config, use_cache=False).runs[0]
    assert run.requested_tokens == 400_000  # 20 × 1M × 0.02
    assert {leaf.name for leaf in run.leaves} == {
        "web:science:vigintile_0020",
        "web:science:vigintile_0019",
        "web:code",
        "arxiv",
    }
    assert_selected_as_planned(run)
