"""`replicates: N`: every mixture trained N times with its own seed, in one group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from olmix.errors import ConfigError
from olmix.planning.plan import build
from tests.support.tokenfiles import write_tokens


def _config(tmp_path: Path, **fields: Any) -> Path:
    for name in ("a", "b", "c"):
        write_tokens(tmp_path / "data" / name / "part.npy", 4000, seed=ord(name))
    data = {
        "name": "rep",
        "proxy_model_id": "olmo3_1m",
        "chinchilla_multiple": 0.0001,
        "dtype": "uint32",
        "seed": 7,
        **fields,
        "sources": [{"name": n, "paths": [str(tmp_path / "data" / n / "*.npy")]} for n in ("a", "b", "c")],
    }
    path = tmp_path / "rep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_replicates_run_the_mixture_n_times_with_seeds_from_the_config_seed(tmp_path: Path) -> None:
    built = build(_config(tmp_path, replicates=3), use_cache=False)
    runs = built.plan.runs
    assert [r.name for r in runs] == ["rep-r0", "rep-r1", "rep-r2"]
    assert [r.seed for r in runs] == [7, 8, 9]
    assert [(r.replicate.mixture, r.replicate.index, r.replicate.of) for r in runs if r.replicate] == [
        ("rep", 0, 3),
        ("rep", 1, 3),
        ("rep", 2, 3),
    ]
    assert all(r.leaves == runs[0].leaves for r in runs)  # the same mixture each time
    assert [(c.name, c.seed) for c in built.configs] == [(r.name, r.seed) for r in runs]


def test_one_replicate_is_the_run_as_before(tmp_path: Path) -> None:
    (run,) = build(_config(tmp_path), use_cache=False).plan.runs
    assert (run.name, run.seed, run.replicate) == ("rep", 7, None)


def test_set_replicates_goes_through_the_override_path(tmp_path: Path) -> None:
    built = build(_config(tmp_path), use_cache=False, overrides=["replicates=2"])
    assert [r.name for r in built.plan.runs] == ["rep-r0", "rep-r1"]


def test_a_swarm_replicates_each_variant(tmp_path: Path) -> None:
    runs = build(_config(tmp_path, variants=2, replicates=2), use_cache=False).plan.runs
    assert [r.name for r in runs] == ["rep-v000-r0", "rep-v000-r1", "rep-v001-r0", "rep-v001-r1"]
    assert runs[0].leaves == runs[1].leaves and runs[2].leaves == runs[3].leaves
    assert runs[0].leaves != runs[2].leaves
    assert {r.replicate.mixture for r in runs if r.replicate} == {"rep-v000", "rep-v001"}


def test_a_replicate_name_too_long_is_refused_at_replicates(tmp_path: Path) -> None:
    path = _config(tmp_path, replicates=10)
    text = path.read_text().replace("name: rep", "name: " + "x" * 126)
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        build(path, use_cache=False)
    (problem,) = caught.value.problems
    assert problem.path == ("replicates",) and "longer than 128" in problem.message
