"""The swarm sampler: constraints as properties, determinism, and the upstream sampler's pitfalls."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from olmix_generated.mixture import ExperimentConfig

from olmix.cli import main
from olmix.leaves import Leaf, leaves
from olmix.loading import yamlsource
from olmix.swarm.sampler import Settings, SwarmError, moved_counts, sample, strengths
from tests.support.tokenfiles import write_tokens

BUDGET = 1000


def config(**extra: Any) -> ExperimentConfig:
    data = {
        "name": "swarm",
        "proxy_model_id": "olmo3_1m",
        "sources": [
            {"name": "web", "topics": [{"name": "t", "paths": ["a"]}, {"name": "t-2", "paths": ["b"]}]},
            {"name": "code", "quality": [{"name": "high", "paths": ["c"]}, {"name": "low", "paths": ["d"]}]},
            {"name": "books", "paths": ["e"]},
        ],
    }
    data.update(extra)
    return ExperimentConfig.model_validate(data)


TOKENS = {"web:t": 10_000, "web:t-2": 10_000, "code:high": 10_000, "code:low": 10_000, "books": 10_000}


def run(cfg: ExperimentConfig, tokens: dict[str, int] = TOKENS, budget: int = BUDGET, **over: Any) -> list[Any]:
    s = Settings.of(cfg, over.pop("variants", 8), over.pop("seed", None))
    return sample(leaves(cfg), tokens, budget, s, **over)


def test_every_variant_sums_to_one_and_shares_sum_to_one_per_group() -> None:
    for v in run(config()):
        assert math.isclose(sum(v.ratios.values()), 1.0, abs_tol=1e-9)
        assert math.isclose(v.shares["web:t"] + v.shares["web:t-2"], 1.0, abs_tol=1e-12)
        assert math.isclose(v.shares["web"] + v.shares["code"] + v.shares["books"], 1.0, abs_tol=1e-12)


def test_same_seed_same_swarm_other_seed_other_swarm() -> None:
    a, b, c = run(config()), run(config()), run(config(), seed=43)
    assert [v.shares for v in a] == [v.shares for v in b]
    assert [v.shares for v in a] != [v.shares for v in c]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    min_source=st.sampled_from([0.0, 0.05, 0.2]),
    min_topic=st.sampled_from([0.0, 0.1, 0.3]),
    min_leaf=st.sampled_from([0.0, 0.01, 0.04]),
)
def test_minimums_hold_on_the_written_weights(seed: int, min_source: float, min_topic: float, min_leaf: float) -> None:
    cfg = config(
        minimum_source_weight=min_source, minimum_topic_weight=min_topic, minimum_weight=min_leaf, sample_multiplier=200
    )
    for v in run(cfg, seed=seed, variants=4):
        for source in ("web", "code", "books"):
            assert v.shares[source] == 0 or v.shares[source] >= min_source
        for leaf, ratio in v.ratios.items():
            source = leaf.split(":")[0]
            assert ratio == 0 or ratio >= min_leaf
            if ":" in leaf and v.shares[source] > 0:
                assert v.shares[leaf] == 0 or v.shares[leaf] >= min_topic  # relative to the source


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32), tokens=st.integers(300, 2000))
def test_repetition_caps_hold(seed: int, tokens: int) -> None:
    have = {**TOKENS, "books": tokens}
    for v in run(config(sample_multiplier=500), have, seed=seed, variants=4):
        assert v.ratios["books"] * BUDGET <= tokens


def test_a_leaf_with_zero_tokens_is_never_sampled_above_zero() -> None:
    for v in run(config(), {**TOKENS, "books": 0}):
        assert v.ratios["books"] == 0


def test_frozen_sibling_weights_keep_their_split() -> None:
    cfg = config()
    data = cfg.model_dump(mode="json", exclude_unset=True)
    data["sources"][0]["weight"], data["sources"][1]["weight"], data["sources"][2]["weight"] = 2, 1, 1
    frozen = ExperimentConfig.model_validate(data)
    swarm = run(frozen)
    assert all(v.shares["web"] == 0.5 and v.shares["code"] == 0.25 for v in swarm)
    assert len({v.shares["web:t"] for v in swarm}) > 1  # the rest is resampled


def test_fixed_source_weights_hold_and_the_rest_fills_the_remainder() -> None:
    for v in run(config(fixed_source_weights={"books": 0.4})):
        assert v.shares["books"] == 0.4
        assert math.isclose(v.shares["web"] + v.shares["code"], 0.6, abs_tol=1e-6)


def test_nonzero_weight_survives() -> None:
    cfg = config(nonzero_weight=["code:low"], minimum_source_weight=0.3, minimum_topic_weight=0.3)
    for v in run(cfg, variants=4):
        assert v.ratios["code:low"] > 0


def test_impossible_request_names_the_binding_constraint() -> None:
    tiny = {**TOKENS, "web:t": 1, "web:t-2": 1, "code:high": 1, "code:low": 1}
    # books holds 10,000 of the 50,000 tokens a run needs, the other four leaves 1 each: (10,000 + 4) / 50,000
    with pytest.raises(SwarmError, match=r"infeasible: the leaves' repetition caps sum to 0\.2001 < 1"):
        run(config(), tiny, budget=50_000)


def test_near_duplicates_are_rejected() -> None:
    with pytest.raises(SwarmError, match="near-duplicate"):
        run(config(min_strength=1e9, max_strength=1e9), variants=3)  # every draw sits on the prior


def test_topic_prior_follows_config_order_not_name_order() -> None:
    # "t" < "t-2" as plain strings, but "t-2" sorts before "t:" names; priors must follow the config
    tokens = {**TOKENS, "web:t": 90_000, "web:t-2": 10_000}
    for v in run(config(min_strength=1e5, max_strength=1e5, sample_multiplier=50), tokens, variants=2):
        assert v.shares["web:t"] == pytest.approx(0.9, abs=0.01)


def test_min_strength_equal_to_max_strength_is_one_strength() -> None:
    assert strengths(2.0, 2.0) == [2.0]
    assert {v.strength for v in run(config(min_strength=2.0, max_strength=2.0))} == {2.0}


def test_a_source_with_the_same_total_in_every_variant_is_fine() -> None:
    cfg = config(fixed_source_weights={"web": 0.5, "code": 0.3, "books": 0.2})
    assert {v.shares["web"] for v in run(cfg)} == {0.5}


def test_a_zeroed_source_zeroes_its_topics_exactly() -> None:
    cfg = config(minimum_source_weight=0.3, min_strength=0.05, max_strength=0.05, sample_multiplier=100)
    swarm = run(cfg)
    zeroed = [v for v in swarm if v.shares["web"] == 0]
    assert zeroed, "no variant zeroed web; the test needs one"
    assert all(v.ratios["web:t"] == 0 and v.ratios["web:t-2"] == 0 for v in zeroed)


def test_manual_prior_and_temperature_move_the_mean() -> None:
    flat = run(config(min_strength=1e5, max_strength=1e5, manual_prior={"web": 8, "code": 1, "books": 1}), variants=2)
    assert flat[0].shares["web"] == pytest.approx(0.8, abs=0.01)
    cooled = config(
        min_strength=1e5, max_strength=1e5, manual_prior={"web": 8, "code": 1, "books": 1}, mix_temperature=0.0001
    )
    assert run(cooled, variants=2)[0].shares["web"] == pytest.approx(1 / 3, abs=0.01)


def test_manual_topic_prior_sets_topic_shares() -> None:
    cfg = config(min_strength=1e5, max_strength=1e5, manual_topic_prior={"t": 1, "t-2": 3})
    assert run(cfg, variants=2)[0].shares["web:t-2"] == pytest.approx(0.75, abs=0.01)


def test_fixed_weights_that_overfill_are_refused() -> None:
    with pytest.raises(SwarmError, match=r"fixed_source_weights sum to 1\.2"):
        run(config(fixed_source_weights={"web": 0.7, "books": 0.5}))


# -- the command -----------------------------------------------------------------------------------------


def corpus_config(tmp_path: Path, **extra: Any) -> Path:
    for name in ("a", "b", "c"):
        write_tokens(tmp_path / "data" / name / "part.npy", 4000, seed=ord(name))
    data = {
        "name": "tiny-swarm",
        "proxy_model_id": "olmo3_1m",
        "chinchilla_multiple": 0.0001,  # 2,000 tokens per run
        "dtype": "uint32",
        "variants": 4,
        "sources": [
            {"name": "a", "paths": [str(tmp_path / "data" / "a" / "*.npy")]},
            {"name": "b", "paths": [str(tmp_path / "data" / "b" / "*.npy")]},
            {"name": "c", "paths": [str(tmp_path / "data" / "c" / "*.npy")]},
        ],
        **extra,
    }
    path = tmp_path / "swarm.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_generate_swarm_writes_valid_configs_once(tmp_path: Path) -> None:
    cfg = corpus_config(tmp_path)
    out = tmp_path / "out"
    first = CliRunner().invoke(main, ["generate", "swarm", str(cfg), "--out", str(out)])
    assert first.exit_code == 0, first.output
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"tiny-swarm-v00{i}.yaml" for i in range(4)]
    texts = [f.read_bytes() for f in files]
    check = CliRunner().invoke(main, ["validate", *map(str, files)])
    assert check.exit_code == 0, check.output
    for text in texts:
        data = yamlsource.parse(text, "v.yaml").data  # YAML 1.2 numbers, as olmix reads them
        assert data["variants"] == 1
        assert all("weight" in s for s in data["sources"])
        assert math.isclose(sum(s["weight"] for s in data["sources"]), 1.0, abs_tol=1e-9)
    assert CliRunner().invoke(main, ["generate", "swarm", str(cfg), "--out", str(out), "--check"]).exit_code == 0
    other = CliRunner().invoke(main, ["generate", "swarm", str(cfg), "--out", str(out), "--seed", "1"])
    assert other.exit_code == 1 and "--force" in other.output
    assert [f.read_bytes() for f in files] == texts


def test_generate_swarm_refuses_an_impossible_swarm_with_one_message(tmp_path: Path) -> None:
    cfg = corpus_config(tmp_path, chinchilla_multiple=0.001)  # 20,000 tokens per run, 12,000 on disk
    result = CliRunner().invoke(main, ["generate", "swarm", str(cfg), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "repetition caps sum to 0.6 < 1" in result.output  # 3 × 4,000 tokens of a 20,000-token run
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_leaf_type_is_the_planners() -> None:
    assert all(isinstance(leaf, Leaf) for leaf in leaves(config()))


# -- variants: N at launch --------------------------------------------------------------------------------


def test_variants_expand_into_runs_of_one_plan_matching_the_generated_files(tmp_path: Path) -> None:
    from olmix.planning.plan import build_plan

    cfg = corpus_config(tmp_path)
    plan = build_plan(cfg, use_cache=False)
    assert [r.name for r in plan.runs] == [f"tiny-swarm-v00{i}" for i in range(4)]
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["generate", "swarm", str(cfg), "--out", str(out)]).exit_code == 0
    for run, file in zip(plan.runs, sorted(out.iterdir()), strict=True):
        weights = {s["name"]: s["weight"] for s in yamlsource.parse(file.read_bytes(), "v").data["sources"]}
        assert {leaf.name: leaf.ratio for leaf in run.leaves} == pytest.approx(
            {k: v for k, v in weights.items() if v > 0}
        )


def test_an_impossible_swarm_at_launch_is_a_config_problem_at_variants(tmp_path: Path) -> None:
    from olmix.errors import ConfigError
    from olmix.planning.plan import build_plan

    cfg = corpus_config(tmp_path, chinchilla_multiple=0.001)
    with pytest.raises(ConfigError, match=r"\$\.variants: infeasible: the leaves' repetition caps sum to 0\.6 < 1"):
        build_plan(cfg, use_cache=False)


def test_existing_mix_file_is_refused_not_ignored(tmp_path: Path) -> None:
    from olmix.errors import ConfigError
    from olmix.planning.plan import build_plan

    cfg = corpus_config(tmp_path, existing_mix_file="mix.json")
    with pytest.raises(ConfigError, match=r"\$\.existing_mix_file: existing_mix_file is not supported"):
        build_plan(cfg, use_cache=False)
    result = CliRunner().invoke(main, ["generate", "swarm", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "existing_mix_file is not supported" in result.output


# -- constraints by construction ----------------------------------------------------------------------------


@st.composite
def trees(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, int]]:
    """A random mixture (sources of paths, topics, quality buckets, topics of buckets), tokens and caps per leaf."""
    tokens: dict[str, int] = {}

    def leaf(name: str, full: str) -> dict[str, Any]:
        tokens[full] = draw(st.integers(0, 1_000_000))
        item: dict[str, Any] = {"name": name, "paths": [full]}
        if draw(st.booleans()):
            item["max_repetition_factor"] = draw(st.sampled_from([1.0, 1.5, 4.0]))
        return item

    sources = []
    for s in range(draw(st.integers(1, 4))):
        shape = draw(st.sampled_from(["paths", "topics", "quality"]))
        name = f"s{s}"
        if shape == "paths":
            sources.append(leaf(name, name))
        elif shape == "quality":
            sources.append(
                {"name": name, "quality": [leaf(f"q{q}", f"{name}:q{q}") for q in range(draw(st.integers(1, 3)))]}
            )
        else:
            topics = []
            for t in range(draw(st.integers(1, 3))):
                if draw(st.booleans()):
                    topics.append(leaf(f"t{t}", f"{name}:t{t}"))
                else:
                    buckets = [leaf(f"q{q}", f"{name}:t{t}:q{q}") for q in range(draw(st.integers(1, 3)))]
                    topics.append({"name": f"t{t}", "quality": buckets})
            sources.append({"name": name, "topics": topics})
    return {"name": "prop", "proxy_model_id": "olmo3_1m", "sources": sources}, tokens


@settings(max_examples=150, deadline=None)
@given(
    tree=trees(),
    room=st.floats(1.02, 4.0),
    min_source=st.sampled_from([0.0, 0.01, 0.05]),
    min_topic=st.sampled_from([0.0, 0.02, 0.1]),
    min_leaf=st.sampled_from([0.0, 0.001, 0.005]),
    seed=st.integers(0, 2**16),
)
def test_every_feasible_request_keeps_its_variants_within_every_constraint(
    tree: tuple[dict[str, Any], dict[str, int]],
    room: float,
    min_source: float,
    min_topic: float,
    min_leaf: float,
    seed: int,
) -> None:
    from olmix.planning.budget import tokens_needed

    data, tokens = tree
    cfg = ExperimentConfig.model_validate(
        {**data, "minimum_source_weight": min_source, "minimum_topic_weight": min_topic, "minimum_weight": min_leaf}
    )
    lvs = leaves(cfg)
    # the budget makes the caps bind: the leaves together hold only `room` runs' worth at their caps
    capacity = sum(tokens[leaf.name] * leaf.max_repetition_factor for leaf in lvs)
    if capacity < 100:
        return
    budget = max(1, int(capacity / room))
    try:
        swarm = sample(lvs, tokens, budget, Settings.of(cfg, 12, seed))
    except SwarmError as exc:  # a feasible set too small for 12 distinct mixtures, or none at all, proved
        assert "the binding constraint is near-duplicate" in str(exc) or "infeasible: the sources can hold" in str(exc)
        return
    assert len(swarm) == 12
    for v in swarm:
        assert sum(v.ratios.values()) == pytest.approx(1.0, abs=1e-9)
        for leaf in lvs:
            ratio = v.ratios[leaf.name]
            assert tokens_needed(budget, ratio) <= tokens[leaf.name] * leaf.max_repetition_factor
            assert ratio == 0 or ratio >= min_leaf - 1e-12
        for name, share in v.shares.items():
            assert round(share * 1_000_000) == pytest.approx(share * 1_000_000, abs=1e-6)  # as written
            if ":" not in name:
                assert share == 0 or share >= min_source
            elif v.shares[name.split(":")[0]] > 0:
                within = math.prod(v.shares[":".join(name.split(":")[:k])] for k in range(2, name.count(":") + 2))
                assert within == 0 or within >= min_topic - 1e-9


def upstream_like(leaves_per_source: int = 8, sources: int = 5) -> tuple[ExperimentConfig, dict[str, int]]:
    """Upstream's default shape: 40 topics in 5 sources, caps that bind, a minimum weight of 0.002."""
    data = {
        "name": "up",
        "proxy_model_id": "olmo3_1m",
        "minimum_source_weight": 0.002,
        "minimum_topic_weight": 0.002,
        "sources": [
            {"name": f"s{s}", "topics": [{"name": f"t{t}", "paths": ["x"]} for t in range(leaves_per_source)]}
            for s in range(sources)
        ],
    }
    tokens = {
        f"s{s}:t{t}": 1_000 * (1 + (s * 7 + t * 3) % 11) for s in range(sources) for t in range(leaves_per_source)
    }
    return ExperimentConfig.model_validate(data), tokens


def test_binding_caps_keep_every_variant_and_the_strengths_asked() -> None:
    cfg, tokens = upstream_like()
    budget = sum(tokens.values()) // 3  # most leaves would break their cap at a spread-out draw
    swarm = sample(leaves(cfg), tokens, budget, Settings.of(cfg, 45, 42))
    assert len(swarm) == 45
    grid = strengths(cfg.min_strength, cfg.max_strength)
    assert [v.strength for v in swarm] == [grid[i % len(grid)] for i in range(45)]  # 3 full cycles, in order
    assert all(v.ratios[k] * budget <= tokens[k] for v in swarm for k in tokens)
    assert moved_counts(swarm)["repetition cap"] > 0


def test_the_configs_repetition_factor_reaches_the_sampler() -> None:
    data = config().model_dump(mode="json", exclude_unset=True)
    for source in data["sources"]:
        source["max_repetition_factor"] = 4.0
    capped = ExperimentConfig.model_validate({**data, "repetition_factor": 1.0})
    free = ExperimentConfig.model_validate(data)
    budget = 30_000  # each leaf holds 10,000: a third of a run at repetition 1, all of it at 4
    assert max(v.ratios["books"] for v in run(free, budget=budget, variants=30)) > 1 / 3
    assert max(v.ratios["books"] for v in run(capped, budget=budget, variants=30)) <= 1 / 3


def test_a_huge_temperature_is_refused_with_the_largest_that_works() -> None:
    tokens = {**TOKENS, "books": 30_000}  # the sources hold 20,000, 20,000 and 30,000: ln(2/3) = -0.405
    with pytest.raises(SwarmError, match=r"mix temperature 1e\+308 .* at most 1726 keeps every child drawn"):
        run(config(mix_temperature=1e308), tokens, budget=10_000)
    assert len(run(config(mix_temperature=10.0), tokens, budget=10_000)) == 8


def test_variants_are_bounded() -> None:
    with pytest.raises(SwarmError, match=r"variants must be between 1 and 10,000, not 1,000,000"):
        run(config(), variants=1_000_000)


def test_generate_swarm_with_a_huge_temperature_or_too_many_variants(tmp_path: Path) -> None:
    cfg = corpus_config(tmp_path, mix_temperature=1e308)
    result = CliRunner().invoke(main, ["generate", "swarm", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output  # equal priors: any temperature leaves them equal
    many = CliRunner().invoke(
        main, ["generate", "swarm", str(cfg), "--out", str(tmp_path / "p"), "--variants", "1000000"]
    )
    assert many.exit_code == 2 and "1000000 is not in the range 2<=x<=10000" in many.output


def test_generate_swarm_says_which_constraints_moved_its_draws(tmp_path: Path) -> None:
    cfg = corpus_config(tmp_path, chinchilla_multiple=0.0004, variants=6)  # 8,000 tokens a run, 4,000 a leaf
    result = CliRunner().invoke(main, ["generate", "swarm", str(cfg), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert re.search(r"note: repetition cap moved [1-6] of 6 draws", result.output)
    # each file's header: the schema modeline, what it is, then what moved it
    headers = [f.read_text().splitlines()[2] for f in sorted((tmp_path / "o").iterdir())]
    assert "# Moved onto its constraints by: repetition cap." in headers


def test_generated_swarm_configs_carry_the_schema_modeline(tmp_path: Path) -> None:
    from olmix import schemas

    cfg = corpus_config(tmp_path)
    out = tmp_path / "deeper" / "out"
    assert CliRunner().invoke(main, ["generate", "swarm", str(cfg), "--out", str(out)]).exit_code == 0
    for path in sorted(out.iterdir()):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), first
        # relative to the file, as editors resolve it: outside a checkout, the schema olmix ships
        assert (path.parent / first.split("$schema=", 1)[1]).resolve() == schemas.path("mixture").resolve()
