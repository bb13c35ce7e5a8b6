"""The launch as one core operation: a config is read once per command, the store listed once, and a dry run
describes what the launch submits through the backend's own hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from olmix.backends import backend_class
from olmix.backends.base import Backend
from olmix.launch import operation
from olmix.loading import yamlsource
from olmix.planning import resolve
from olmix.planning.plan import build
from tests.support.tokenfiles import write_tokens


def _swarm(tmp_path: Path, variants: int = 8) -> Path:
    for name in ("a", "b", "c"):
        write_tokens(tmp_path / "data" / name / "part.npy", 4000, seed=ord(name))
    data = {
        "name": "swarm",
        "proxy_model_id": "olmo3_1m",
        "chinchilla_multiple": 0.0001,
        "dtype": "uint32",
        "variants": variants,
        "sources": [{"name": n, "paths": [str(tmp_path / "data" / n / "*.npy")]} for n in ("a", "b", "c")],
    }
    path = tmp_path / "swarm.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_swarm_launch_reads_its_config_once_and_lists_each_folder_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {"parse": 0, "list": 0}
    real_parse, real_list = yamlsource.parse, resolve._list_local

    def parse(*args: Any, **kwargs: Any) -> Any:
        counts["parse"] += 1
        return real_parse(*args, **kwargs)

    def list_local(*args: Any, **kwargs: Any) -> Any:
        counts["list"] += 1
        return real_list(*args, **kwargs)

    monkeypatch.setattr(yamlsource, "parse", parse)
    monkeypatch.setattr(resolve, "_list_local", list_local)
    built = build(_swarm(tmp_path), use_cache=False)
    launch = operation.prepare(built, backend="local", runs_dir=tmp_path / "runs", offline=True)
    assert len(launch.plan.runs) == 8 and len(built.configs) == 8
    assert counts == {"parse": 1, "list": 3}  # one file read; a, b and c listed once each
    assert [c.name for c in built.configs] == [r.name for r in built.plan.runs]
    assert all(c.variants == 1 for c in built.configs)


def test_the_sampled_weights_are_the_configs_the_runs_carry(tmp_path: Path) -> None:
    built = build(_swarm(tmp_path, variants=3), use_cache=False)
    for run, config in zip(built.plan.runs, built.configs, strict=True):
        weights = {s.name: s.weight for s in config.sources}
        assert {leaf.name: leaf.ratio for leaf in run.leaves} == pytest.approx({k: v for k, v in weights.items() if v})


@pytest.mark.parametrize("name", ["local", "slurm", "beaker"])
def test_every_backend_is_a_backend_with_every_hook_declared(name: str) -> None:
    cls = backend_class(name)
    assert issubclass(cls, Backend)
    hooks = [n for n, v in vars(Backend).items() if callable(v) or isinstance(v, classmethod | bool)]
    assert {"options_from_config", "preflight", "submit_many", "find_many", "cancel_many", "describe_many", "url"} <= (
        set(hooks)
    )


def test_backend_options_come_from_the_backends_own_hook(tmp_path: Path) -> None:
    config = _swarm(tmp_path, variants=1)
    built = build(config, overrides=["slurm={partition: gpu, sbatch_args: [--mem=1G]}"], use_cache=False)
    launch = operation.prepare(built, backend="slurm", runs_dir=tmp_path / "runs", max_parallel=3, offline=True)
    assert launch.request.backend_options == {
        "nodes": 1,
        "max_parallel": 3,
        "partition": "gpu",
        "sbatch_args": ["--mem=1G"],
    }
    assert launch.descriptions and "--partition=gpu" in launch.descriptions[0].text


def test_max_parallel_on_a_backend_that_schedules_itself_is_a_note(tmp_path: Path) -> None:
    built = build(_swarm(tmp_path, variants=1), use_cache=False)
    launch = operation.prepare(built, backend="beaker", runs_dir=tmp_path / "runs", max_parallel=2, offline=True)
    assert any("--max-parallel" in note and "beaker schedules the runs itself" in note for note in launch.notes)


def test_a_dry_runs_launch_is_never_submitted(tmp_path: Path) -> None:
    from olmix.launch.launcher import LaunchError

    built = build(_swarm(tmp_path, variants=1), use_cache=False)
    launch = operation.prepare(built, backend="local", runs_dir=tmp_path / "runs", offline=True)
    with pytest.raises(LaunchError, match="not submitted"):
        operation.submit(launch)
    assert not (tmp_path / "runs").exists()


def test_a_launch_knows_its_tokens_and_flops_from_the_catalogues_parameters(tmp_path: Path) -> None:
    built = build(_swarm(tmp_path, variants=3), use_cache=False)
    launch = operation.prepare(built, backend="local", runs_dir=tmp_path / "runs", offline=True)
    tokens = [r.requested_tokens for r in built.plan.runs]
    assert [r.tokens for r in launch.cost.runs] == tokens
    assert launch.cost.tokens == sum(tokens)
    assert launch.cost.flops == sum(6 * 1_000_000 * t for t in tokens)  # olmo3_1m: one million parameters
