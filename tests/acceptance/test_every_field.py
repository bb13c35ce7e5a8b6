"""Every property of schema/mixture.schema.json does something, or is refused, or is named in a backend's note.

For each top-level property, SAMPLES gives a value (and, where the field only acts beside another, the
context both configs share). The config with it is compared to the config without it through every stage
that reads a config: the plan, the trainer command and environment of the runs, each backend's options
(what it submits) and notes, a refusal, and the target `olmix fit` reads. A property that changes none
of these fails the test, and so does a property with no sample: a field added to the schema must say here
how it shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from olmix.errors import OlmixError
from tests.conftest import REPO

BASE: dict[str, Any] = {"name": "walk", "proxy_model_id": "olmo3_1m", "chinchilla_multiple": 0.0001}
SWARM = {"variants": 3}  # sampling fields act only when there is something to sample

# property -> (value, context shared by both configs)
SAMPLES: dict[str, tuple[Any, dict[str, Any]]] = {
    "name": ("other", {}),
    "description": ("what it tests", {}),
    "budget": ("ai2/oe", {}),
    "workspace": ("ai2/ws", {}),
    "cluster": ("ai2/jupiter", {}),
    "priority": ("high", {"cluster": "ai2/jupiter"}),
    "proxy_model_id": ("olmo3_14m", {}),
    "tokenizer": ("other_tokenizer", {}),
    "chinchilla_multiple": (0.0002, {}),
    "nodes": (2, {}),
    "gpus": (4, {}),
    "slurm": ({"partition": "gpu"}, {}),
    "beaker": ({"image": "beaker://me/img"}, {}),
    "variants": (2, {}),
    "replicates": (2, {}),
    "seed": (7, {}),
    "global_batch_size": (64, {}),
    "device_batch_size": (2, {}),
    "dtype": ("uint16", {}),
    "train_type": ("anneal", {}),
    "checkpoint_path": ("/no/such/checkpoint", {}),
    "allow_repetition": (False, {}),
    "preemptible": (False, {}),
    "shared_filesystem": (True, {}),
    "weka": (True, {}),
    "wandb_debug": (True, {}),
    "existing_mix_file": ("mix.json", SWARM),
    "eval_interval": (5, {"eval_tasks": ["arc_easy"]}),
    "eval_tasks": (["arc_easy"], {}),
    "no_eval": (True, {"eval_tasks": ["arc_easy"]}),
    "minimum_weight": (0.2, SWARM),
    "minimum_source_weight": (0.3, SWARM),
    "minimum_topic_weight": (0.3, SWARM),
    "mix_temperature": (0.1, SWARM),
    "source_mix_temperature": (0.1, SWARM),
    "topic_mix_temperature": (0.1, SWARM),
    "min_strength": (0.01, SWARM),
    "max_strength": (0.02, SWARM),
    "min_source_strength": (0.01, SWARM),
    "max_source_strength": (0.02, SWARM),
    "min_topic_strength": (0.01, SWARM),
    "max_topic_strength": (0.02, SWARM),
    "nonzero_weight": (["b"], {**SWARM, "minimum_source_weight": 0.45, "min_strength": 0.05, "max_strength": 0.05}),
    "fixed_source_weights": ({"a": 0.9}, SWARM),
    "manual_prior": ({"a": 100, "b": 1}, SWARM),
    "manual_topic_prior": ({"x": 100, "y": 1}, SWARM),
    # draws are projected onto the constraints, so only near-duplicates are drawn again: a strength this high
    # draws every variant at the prior, and the multiplier bounds how many draws are made before giving up
    "sample_multiplier": (1, {**SWARM, "min_strength": 1e9, "max_strength": 1e9}),
    "target_tokens": (10_000, {}),
    "target_chinchilla_multiple": (3, {"target_model_id": "olmo3_14m"}),
    "target_model_id": ("olmo3_14m", {}),
    "repetition_factor": (2, {}),
    "instance_filter": ({"repetition_max_count": 8}, {}),
    "trainer_command": (["trainer", "{plan}"], {}),
    "env": ({"X": "1"}, {}),
    "secrets": (["HOME_SECRET"], {}),
    "varied": ({"quality_threshold": 0.5}, {}),
    "sources": (None, {}),  # the mixture itself: every other sample plans it
}


def sources(root: Path) -> list[dict[str, Any]]:
    return [
        {"name": "a", "paths": [f"{root}/a/*.npy"], "max_repetition_factor": 2.0},
        {
            "name": "b",
            "topics": [{"name": "x", "paths": [f"{root}/b/x/*.npy"]}, {"name": "y", "paths": [f"{root}/b/y/*.npy"]}],
        },
    ]


def outcome(path: Path) -> dict[str, Any]:
    """What each stage makes of the config at `path`: stage -> result (an error's message where it refused)."""
    from olmix.backends import backend_class, get
    from olmix.launch import launcher
    from olmix.loading.config import load_config
    from olmix.planning.plan import build
    from olmix.swarm.loop import load_target

    out: dict[str, Any] = {}
    try:
        built = build(path, use_cache=False)
        plan = built.plan
        runs = json.loads(plan.model_dump_json())["runs"]
        for run in runs:
            run.pop("config", None)
            run.pop("listed_at", None)
        out["plan"] = runs
        settings = launcher.run_settings(plan, built.configs, None)
        out["runs"] = (settings.command, settings.env, settings.secrets)
    except OlmixError as exc:
        out["refused"] = str(exc).replace(str(path), "CONFIG")
    try:
        config = load_config(path)
    except OlmixError:
        return out
    options = {name: backend_class(name).options_from_config(config, None) for name in ("local", "slurm", "beaker")}
    for name, opts in options.items():
        out[f"{name} options"] = repr(opts)
        try:
            out[f"{name} notes"] = get(name, **opts).check(config)
        except OlmixError as exc:
            out[f"{name} refused"] = str(exc)
    try:
        target = load_target(path, None)
        out["fit target"] = (target.target_tokens, target.repetition_factor)
    except OlmixError as exc:
        out["fit refused"] = str(exc)
    return out


def top_level_properties() -> list[str]:
    schema = json.loads((REPO / "schema" / "mixture.schema.json").read_text())
    return list(schema["properties"])


def test_every_property_has_a_sample() -> None:
    assert [p for p in top_level_properties() if p not in SAMPLES] == []


@pytest.mark.parametrize("prop", [p for p in top_level_properties() if SAMPLES.get(p, (None,))[0] is not None])
def test_every_property_changes_what_runs_or_is_refused_or_noted(
    tmp_path: Path, prop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.tokenfiles import write_tokens

    monkeypatch.setenv("HOME_SECRET", "a-long-enough-secret")
    for leaf, tokens in (("a", 40_000), ("b/x", 40_000), ("b/y", 10_000)):
        write_tokens(tmp_path / "data" / leaf / "part-0.npy", tokens, seed=len(leaf))
    value, context = SAMPLES[prop]
    base = {**BASE, **context, "sources": sources(tmp_path / "data")}
    without = tmp_path / "without.yaml"
    with_ = tmp_path / "with.yaml"
    without.write_text(yaml.safe_dump(base, sort_keys=False))
    with_.write_text(yaml.safe_dump({**base, prop: value}, sort_keys=False))
    before, after = outcome(without), outcome(with_)
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    assert changed, f"{prop}: {value!r} changes no plan, command, backend option or note, and is not refused"
