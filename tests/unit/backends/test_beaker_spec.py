"""The Beaker backend offline: specs built from a config and checked, the dry run, notes and refusals.

Nothing here talks to a Beaker service (tests/unit/backends/test_beaker.py does, to a stand-in on loopback).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from olmix.backends import BackendError, RunSpec
from olmix.backends import beakerspec as bs
from olmix.backends.beaker import BeakerBackend
from olmix.backends.local import LocalBackend
from olmix.backends.slurm import SlurmBackend
from olmix.cli import main
from olmix.loading.config import load_config

REPO = Path(__file__).resolve().parents[3]

BEAKER = """\
cluster: ai2/jupiter
workspace: ai2/dolma2
budget: ai2/oe-data
priority: high
gpus: 4
env: {OMP_NUM_THREADS: "2"}
secrets: [WANDB_API_KEY, HF_TOKEN]
beaker:
  image: beaker://ai2/olmix-cuda
  clusters: [ai2/augusta]
  min_runtime_s: 600
  auto_resume: true
  weka: [{bucket: oe-data-default}, {bucket: oe-training, mount_path: /weka/t}]
  result_path: /out
  secret_names: {WANDB_API_KEY: my_wandb}
"""


def _config(tmp_path: Path, extra: str = BEAKER, name: str = "c") -> Path:
    data = tmp_path / "d"
    data.mkdir(exist_ok=True)
    (data / "a.npy").write_bytes(b"\0" * 4 * 2_000_000)
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        f"name: {name}\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.05\n{extra}"
        f"sources:\n  - name: a\n    paths: ['{data}/*.npy']\n"
    )
    return config


def _backend(config: Path, *overrides: str) -> BeakerBackend:
    return BeakerBackend(**bs.settings_from_config(load_config(config, list(overrides))))


def _spec(run_dir: Path, command: list[str] | None = None, **kw: Any) -> RunSpec:
    plan = run_dir / "plan.json"
    return RunSpec(
        group="g-1",
        run="r",
        run_dir=run_dir,
        plan_file=plan,
        command=command or [sys.executable, "-m", "olmix.train", "--plan", str(plan), "--out", str(run_dir)],
        token="0123456789abcdef0123456789abcdef",
        env=kw.get("env", {"OMP_NUM_THREADS": "2"}),
        secrets=kw.get("secrets", ["WANDB_API_KEY", "HF_TOKEN"]),
    )


def test_the_spec_says_what_the_config_asks(tmp_path: Path) -> None:
    backend = _backend(_config(tmp_path))
    spec = backend.spec(_spec(tmp_path / "runs" / "g-1" / "r")).to_json()
    (task,) = spec["tasks"]
    assert spec["budget"] == "ai2/oe-data"
    assert spec["description"] == "olmix group g-1 run r"
    assert task["image"] == {"beaker": "ai2/olmix-cuda"}
    assert task["constraints"] == {"cluster": ["ai2/jupiter", "ai2/augusta"]}
    assert task["context"] == {"priority": "high", "minRuntime": 600 * 10**9, "autoResume": True}
    assert task["resources"] == {"gpuCount": 4}
    assert task["result"] == {"path": "/out"}
    assert task["command"] == ["python", "-m", "olmix.train", "--plan", "/olmix/plan/plan.json", "--out", "/out"]
    # secrets by name only: the Beaker secret named for WANDB_API_KEY, and HF_TOKEN's own name
    assert task["envVars"] == [
        {"name": "OMP_NUM_THREADS", "value": "2"},
        {"name": "WANDB_API_KEY", "secret": "my_wandb"},
        {"name": "HF_TOKEN", "secret": "HF_TOKEN"},
    ]
    assert task["datasets"] == [
        {
            "source": {"beaker": "olmix-0123456789abcdef0123456789abcdef-plan"},
            "mountPath": "/olmix/plan",
            "mode": "readonly",
        },
        {"source": {"weka": "oe-data-default"}, "mountPath": "/weka/oe-data-default", "mode": "readwrite"},
        {"source": {"weka": "oe-training"}, "mountPath": "/weka/t", "mode": "readwrite"},
    ]
    assert (task["hostNetworking"], task["leaderSelection"], "replicas" in task) == (False, False, False)


def test_a_secret_value_never_reaches_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_value_that_must_not_leak")
    text = _backend(_config(tmp_path)).describe(_spec(tmp_path / "r"))
    assert "hf_value_that_must_not_leak" not in text and "secret: HF_TOKEN" in text


def test_several_nodes_are_replicas_meeting_at_the_leader_through_torchrun(tmp_path: Path) -> None:
    backend = _backend(_config(tmp_path), "nodes=3")
    (task,) = backend.spec(_spec(tmp_path / "r")).to_json()["tasks"]
    assert (task["replicas"], task["leaderSelection"], task["hostNetworking"]) == (3, True, True)
    assert task["propagateFailure"] is True
    shell, flag, script, zero, *args = task["command"]
    assert (shell, flag, zero) == ("bash", "-c", "torchrun")
    assert "--nnodes=3 --nproc-per-node=4" in script
    assert '--node-rank="$BEAKER_REPLICA_RANK" --master-addr="$BEAKER_LEADER_REPLICA_HOSTNAME"' in script
    assert args == ["-m", "olmix.train", "--plan", "/olmix/plan/plan.json", "--out", "/out"]
    # what bash makes of it: torchrun, then the trainer's arguments untouched by the shell
    shown = subprocess.run(
        ["bash", "-c", script.replace("exec torchrun", "printf '%s\\n' torchrun"), zero, *args, "$(touch x)"],
        capture_output=True,
        text=True,
        env={"BEAKER_REPLICA_RANK": "2", "BEAKER_LEADER_REPLICA_HOSTNAME": "leader-0"},
        cwd=tmp_path,
    ).stdout.splitlines()
    assert shown[:6] == [
        "torchrun",
        "--nnodes=3",
        "--nproc-per-node=4",
        "--node-rank=2",
        "--master-addr=leader-0",
        "--master-port=29400",
    ]
    assert shown[-1] == "$(touch x)" and not (tmp_path / "x").exists()


def test_several_nodes_refuse_a_command_torchrun_cannot_start(tmp_path: Path) -> None:
    backend = _backend(_config(tmp_path), "nodes=2")
    with pytest.raises(BackendError, match="torchrun, which needs a trainer command"):
        backend.spec(_spec(tmp_path / "r", command=["./train.sh", "--plan", str(tmp_path / "r" / "plan.json")]))


def test_the_checker_refuses_wrong_types_and_unknown_keys_with_their_place(tmp_path: Path) -> None:
    spec = _backend(_config(tmp_path)).spec(_spec(tmp_path / "r"))
    assert bs.problems(spec) == []
    spec.tasks[0].resources.gpu_count = "4"
    spec.tasks[0].env_vars[1].secret = 7
    spec.tasks[0].host_networking = 1  # an int is no bool to Beaker
    spec.tasks[0].replica = 2  # a misspelt field beaker-py would drop
    assert bs.problems(spec) == [
        "tasks[0].replica: not a field of BeakerTaskSpec",
        "tasks[0].envVars[1].secret: expected str, got int 7",
        "tasks[0].resources.gpuCount: expected int, got str '4'",
        "tasks[0].hostNetworking: expected bool, got int 1",
    ]
    with pytest.raises(BackendError, match=r"spec of run r is refused: .*gpuCount.*nothing was submitted"):
        bs.check(spec, "r")


def test_the_checker_refuses_serialized_keys_that_name_no_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _backend(_config(tmp_path)).spec(_spec(tmp_path / "r"))
    t = bs.spec_types()
    monkeypatch.setattr(
        t.BeakerTaskContext, "_patch_json", staticmethod(lambda d: d.update(preemptable=True)), raising=False
    )
    assert bs.problems(spec) == ["tasks[0].context.preemptable: not a field of BeakerTaskContext"]


def test_the_checker_refuses_what_beaker_would_refuse(tmp_path: Path) -> None:
    spec = _backend(_config(tmp_path)).spec(_spec(tmp_path / "r"))
    task = spec.tasks[0]
    task.image.docker = "x:1"  # both images
    task.env_vars.append(dataclasses.replace(task.env_vars[0]))  # a variable twice
    task.datasets[1].source.host_path = "/data"  # two sources
    task.datasets[2].mode = "rw"
    assert bs.problems(spec) == [
        "tasks[0].image: exactly one of beaker and docker is needed (set beaker.image)",
        "tasks[0].datasets[1].source: exactly one source is needed, got ['host_path', 'weka']",
        "tasks[0].datasets[2].mode: 'rw' is not readonly or readwrite",
        "tasks[0].envVars: OMP_NUM_THREADS set twice (in env and in secrets?)",
    ]


def test_a_launch_without_image_workspace_or_budget_is_refused_before_anything(tmp_path: Path) -> None:
    backend = _backend(_config(tmp_path, "cluster: ai2/jupiter\n"))
    notes = backend.check(load_config(_config(tmp_path, "cluster: ai2/jupiter\n"), []))
    assert notes == ["the beaker backend needs beaker.image, workspace, budget; a launch refuses to start without them"]
    with pytest.raises(BackendError, match=r"needs beaker\.image, workspace, budget set in the config"):
        backend.check_command(["python"])


def test_backends_note_the_settings_they_ignore(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, BEAKER + "preemptible: false\n"), [])
    assert "the local backend ignores cluster, budget, workspace, priority, beaker" in LocalBackend().check(config)
    assert "the slurm backend ignores cluster, budget, workspace, priority, beaker" in " ".join(
        SlurmBackend().check(config)
    )
    assert BeakerBackend(**bs.settings_from_config(config)).check(config) == [
        "the beaker backend ignores preemptible (preemption is beaker.min_runtime_s and beaker.auto_resume)",
        "gpus: 4 requests 4 GPUs, but the trainer command runs as one process "
        "(torchrun starts one process per GPU only when nodes > 1)",
    ]
    several = load_config(_config(tmp_path, BEAKER + "nodes: 2\n"), [])
    assert BeakerBackend(**bs.settings_from_config(several)).check(several) == []
    weka = load_config(
        _config(
            tmp_path,
            BEAKER.replace("  weka:", "  old_weka:").replace(
                "  old_weka: [{bucket: oe-data-default}, {bucket: oe-training, mount_path: /weka/t}]\n", ""
            )
            + "weka: true\n",
        ),
        [],
    )
    with pytest.raises(BackendError, match=r"weka: true asks for Weka, but beaker\.weka names no bucket"):
        BeakerBackend(**bs.settings_from_config(weka)).check(weka)


def test_set_overrides_a_beaker_setting(tmp_path: Path) -> None:
    backend = _backend(_config(tmp_path), "beaker.image=docker://ghcr.io/me/olmix:2", "beaker.result_path=/r")
    (task,) = backend.spec(_spec(tmp_path / "r")).to_json()["tasks"]
    assert task["image"] == {"docker": "ghcr.io/me/olmix:2"} and task["result"] == {"path": "/r"}


def _dry(tmp_path: Path, *extra: str, config: Path | None = None) -> tuple[int, str]:
    runs = tmp_path / "runs"
    args = ["launch", "run", "--config", str(config or _config(tmp_path)), "--no-cache", "--runs-dir", str(runs)]
    result = CliRunner().invoke(main, [*args, "--backend", "beaker", "--dry-run", *extra])
    assert not runs.exists()  # a dry run writes nothing
    return result.exit_code, result.output


def _yaml_after(output: str, marker: str) -> dict[str, Any]:
    text = output.split(marker, 1)[1]
    body = [line for line in text.splitlines()[1:] if not line.startswith("#")]
    loaded: dict[str, Any] = yaml.safe_load("\n".join(body))
    return loaded


def test_the_dry_run_prints_each_runs_spec_as_beaker_reads_it(tmp_path: Path) -> None:
    code, output = _dry(tmp_path)
    assert code == 0, output
    spec = _yaml_after(output, "--- run c on beaker")
    read = bs.spec_types().BeakerExperimentSpec.from_json(spec)  # what `beaker experiment create` would read
    assert read.to_json() == spec
    # beaker-py reads a mount's source back as a plain dict; the checker says so rather than pass it on
    assert bs.problems(read) == [
        f"tasks[0].datasets[{i}].source: expected BeakerDataSource, got dict" for i in range(3)
    ]
    assert spec["tasks"][0]["image"] == {"beaker": "ai2/olmix-cuda"}
    assert spec["description"].startswith("olmix group c-")
    assert "# beaker experiment olmix-TOKEN in workspace ai2/dolma2" in output


def test_the_dry_run_says_what_a_launch_would_refuse(tmp_path: Path) -> None:
    code, output = _dry(tmp_path, config=_config(tmp_path, "cluster: ai2/jupiter\n"))
    assert code == 0, output
    assert "note: the beaker backend needs beaker.image, workspace, budget" in output
    assert "# refused at launch: tasks[0].image: exactly one of beaker and docker is needed" in output


def test_preview_describes_runs_for_the_backend_asked(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = CliRunner().invoke(
        main, ["launch", "preview", "--config", str(config), "--no-cache", "--backend", "beaker"]
    )
    assert result.exit_code == 0, result.output
    assert _yaml_after(result.output, "--- run c on beaker")["budget"] == "ai2/oe-data"
    local = CliRunner().invoke(main, ["launch", "preview", "--config", str(config), "--no-cache"])
    assert "on beaker" not in local.output and "note: the local backend ignores" in local.output


def _modules_after(args: list[str], env: dict[str, str]) -> set[str]:
    code = (
        "import json, sys\nfrom olmix.cli import main\ntry:\n"
        f"    main({args!r})\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stderr.strip().splitlines()[-1]))


def test_the_dry_run_needs_no_credentials_and_loads_no_client(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAKER_")}
    env["BEAKER_CONFIG"] = str(tmp_path / "absent.yml")
    args = ["launch", "run", "--config", str(_config(tmp_path)), "--no-cache", "--backend", "beaker", "--dry-run"]
    loaded = _modules_after([*args, "--runs-dir", str(tmp_path / "runs")], env)
    assert "beaker.types" in loaded  # the spec was built with beaker-py's classes
    assert not {m for m in loaded if m.split(".")[0] in {"grpc", "requests"} or m == "beaker.client"}


def test_a_launch_without_credentials_is_one_message_and_writes_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAKER_")}
    env |= {"BEAKER_CONFIG": str(tmp_path / "absent.yml"), "HOME": str(tmp_path)}
    runs = tmp_path / "runs"
    olmix = str(Path(sys.executable).with_name("olmix"))
    args = [olmix, "launch", "run", "--config", str(_config(tmp_path)), "--no-cache", "--runs-dir", str(runs)]
    done = subprocess.run([*args, "--backend", "beaker", "--yes"], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "beaker credentials: Failed to find config file or environment variable 'BEAKER_TOKEN'" in done.stderr
    assert "nothing was submitted" in done.stderr
    assert not runs.exists()


def test_the_runs_of_a_group_share_their_beaker_settings(tmp_path: Path) -> None:
    first = _config(tmp_path, name="a")
    second = _config(tmp_path, BEAKER.replace("beaker://ai2/olmix-cuda", "beaker://ai2/other"), name="b")
    args = ["launch", "run", "--config", str(first), "--config", str(second), "--no-cache", "--backend", "beaker"]
    result = CliRunner().invoke(main, [*args, "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert f"{second}: beaker differs from {first}'s; the runs of one group share it" in result.output
