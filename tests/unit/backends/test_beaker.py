"""The Beaker backend end to end: the real CLI and launcher, the real beaker-py client, a stand-in Beaker on loopback.

tests/services/beakerservice speaks Beaker's REST and gRPC protocols; what it received is read back from it. No
real Beaker cluster is used.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from olmix.backends import RunSpec, RunState
from olmix.backends.beaker import BeakerBackend
from olmix.errors import OlmixError
from olmix.launch import launcher
from tests.conftest import REPO
from tests.support.launch_killer import killed

OLMIX = str(Path(sys.executable).with_name("olmix"))
WORKSPACE = "ai2/olmix"
SETTINGS = """\
cluster: ai2/jupiter
workspace: ai2/olmix
budget: ai2/oe-data
priority: high
gpus: 2
nodes: 2
env: {OMP_NUM_THREADS: "3"}
secrets: [HF_TOKEN, WANDB_API_KEY]
beaker:
  image: docker://ghcr.io/allenai/olmix:test
  clusters: [ai2/augusta]
  min_runtime_s: 120
  auto_resume: true
  weka: [{bucket: oe-data-default}]
  secret_names: {WANDB_API_KEY: team_wandb}
"""


def _service(svc: Any) -> Any:
    svc.add_workspace(WORKSPACE)
    svc.add_cluster("ai2/jupiter")
    svc.add_cluster("ai2/augusta")
    svc.add_secret(WORKSPACE, "HF_TOKEN")
    svc.add_secret(WORKSPACE, "team_wandb")
    return svc


def _configs(tmp_path: Path, names: tuple[str, ...] = ("a", "b"), settings: str = SETTINGS) -> list[Path]:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "x.npy").write_bytes(b"\0" * 4 * 2_000_000)
    paths = []
    for name in names:
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            f"name: {name}\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.05\n{settings}"
            f"sources:\n  - name: web\n    paths: ['{data}/*.npy']\n"
        )
        paths.append(path)
    return paths


def _olmix(svc: Any, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OLMIX, *args], capture_output=True, text=True, env=env or svc.subprocess_env(), cwd=REPO, timeout=120
    )


def _launch(svc: Any, tmp_path: Path, configs: list[Path], *extra: str, env: dict[str, str] | None = None) -> Any:
    args = ["launch", "run", *[a for c in configs for a in ("--config", str(c))], "--runs-dir", str(tmp_path / "runs")]
    return _olmix(svc, *args, "--backend", "beaker", "--yes", "--json", *extra, env=env)


def _launched(svc: Any, tmp_path: Path, configs: list[Path]) -> dict[str, Any]:
    done = _launch(svc, tmp_path, configs)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_a_launch_creates_one_experiment_per_run_as_config_and_plan_say(beaker_service: Any, tmp_path: Path) -> None:
    svc = _service(beaker_service)
    configs = _configs(tmp_path)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    for step in (["init", "-q"], ["add", "a.yaml", "b.yaml"], ["commit", "-qm", "configs"]):
        subprocess.run([*git, *step], check=True, capture_output=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    result = _launched(svc, tmp_path, configs)
    group_dir = tmp_path / "runs" / result["group"]
    record = json.loads((group_dir / "launch.json").read_text())
    experiments = {e.id: e for e in svc.experiments()}
    assert sorted(experiments) == sorted(r["job_id"] for r in result["runs"])
    for entry in record["runs"]:
        experiment = experiments[entry["job_id"]]
        assert experiment.name == f"olmix-{entry['token']}"
        assert experiment.workspace == WORKSPACE or experiment.workspace.endswith(WORKSPACE.split("/")[1])
        assert entry["url"] == f"{svc.address}/ex/{experiment.id}"
        spec = experiment.spec
        assert (spec["budget"], spec["description"]) == (
            "ai2/oe-data",
            f"olmix group {result['group']} run {entry['name']}",
        )
        (task,) = spec["tasks"]
        assert task["image"] == {"docker": "ghcr.io/allenai/olmix:test"}
        assert task["constraints"] == {"cluster": ["ai2/jupiter", "ai2/augusta"]}
        assert task["context"] == {"priority": "high", "minRuntime": 120 * 10**9, "autoResume": True}
        assert task["resources"] == {"gpuCount": 2}
        assert (task["replicas"], task["leaderSelection"], task["hostNetworking"]) == (2, True, True)
        assert task["envVars"] == [
            {"name": "OMP_NUM_THREADS", "value": "3"},
            {"name": "HF_TOKEN", "secret": "HF_TOKEN"},
            {"name": "WANDB_API_KEY", "secret": "team_wandb"},
        ]
        plan_mount, weka = task["datasets"]
        assert weka == {
            "source": {"weka": "oe-data-default"},
            "mountPath": "/weka/oe-data-default",
            "mode": "readwrite",
        }
        assert (plan_mount["mountPath"], plan_mount["mode"]) == ("/olmix/plan", "readonly")
        # the dataset the task mounts holds exactly the run's plan, as written beside the record
        files = svc.dataset_files(plan_mount["source"]["beaker"])
        run_plan = (group_dir / entry["name"] / "plan.json").read_bytes()
        assert files == {"plan.json": run_plan}
        assert [r["name"] for r in json.loads(run_plan)["runs"]] == [entry["name"]]
        assert task["command"][:2] == ["bash", "-c"]
        assert task["command"][3:] == [
            "torchrun",
            "-m",
            "olmix.train",
            "--plan",
            "/olmix/plan/plan.json",
            "--out",
            "/results",
        ]
        assert task["result"] == {"path": "/results"}
    # what identifies the group's source: the configs' hashes and the commit
    assert record["config"]["sha256"] == json.loads((group_dir / "plan.json").read_text())["config"]["sha256"]
    assert record["config"]["path"] == ", ".join(str(c) for c in configs)
    assert record["git_commit"] == commit
    plan_configs = {r["name"]: r["config"] for r in json.loads((group_dir / "plan.json").read_text())["runs"]}
    for config in configs:
        assert plan_configs[config.stem]["sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    # launching the group again submits nothing
    again = _launched(svc, tmp_path, configs)
    assert [r["new"] for r in again["runs"]] == [False, False]
    assert len(svc.experiments()) == 2


def _backend(**extra: Any) -> BeakerBackend:
    options: dict[str, Any] = {
        "image": "beaker://ai2/olmix",
        "clusters": ["ai2/jupiter"],
        "workspace": WORKSPACE,
        "budget": "ai2/oe-data",
    }
    return BeakerBackend(**(options | extra))


def _run_spec(tmp_path: Path, run: str, token: str) -> RunSpec:
    run_dir = tmp_path / "runs" / "g-1" / run
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = run_dir / "plan.json"
    plan.write_text(json.dumps({"runs": [{"name": run}]}))
    return RunSpec("g-1", run, run_dir, plan, [sys.executable, "-m", "olmix.train", "--plan", str(plan)], token)


def test_find_knows_an_experiment_by_its_token_and_no_other(beaker_service: Any, tmp_path: Path) -> None:
    svc = _service(beaker_service)
    backend = _backend()
    spec = _run_spec(tmp_path, "r", "a" * 32)
    assert backend.find(spec) is None
    job_id = backend.submit(spec)
    assert BeakerBackend(**_backend().settings.__dict__).find(spec) == job_id
    assert backend.find(_run_spec(tmp_path, "r", "a" * 31 + "b")) is None  # a token is no prefix match
    assert [e.name for e in svc.experiments()] == ["olmix-" + "a" * 32]


def test_status_maps_every_state_with_exit_code_reason_and_url(beaker_service: Any, tmp_path: Path) -> None:
    svc = _service(beaker_service)
    backend = _backend()
    runs = ["queued", "running", "succeeded", "failed", "canceled"]
    jobs = {run: backend.submit(_run_spec(tmp_path, run, f"{i:032x}")) for i, run in enumerate(runs)}
    svc.set_job_state(jobs["queued"], "queued", reason="waiting for 2 nodes with 2 GPUs")
    svc.set_job_state(jobs["running"], "running")
    svc.set_job_state(jobs["succeeded"], "succeeded")
    svc.set_job_state(jobs["failed"], "failed", exit_code=137, reason="OOMKilled")
    svc.set_job_state(jobs["canceled"], "canceled", reason="preempted by urgent job")
    fresh = _backend()  # as `launch status` makes one, from the record
    svc.reset_calls()
    found = dict(zip(runs, fresh.statuses([(jobs[r], tmp_path / "runs" / "g-1" / r) for r in runs]), strict=True))
    # the workspace (twice: its name, then it), one listing, and the latest job of the queued, failed and
    # cancelled runs
    assert sorted(svc.calls.elements()) == sorted(
        ["ResolveWorkspaceName", "GetWorkspace", "ListWorkloads", "ListJobs", "ListJobs", "ListJobs"]
    )
    assert {r: s.state for r, s in found.items()} == {
        "queued": RunState.PENDING,
        "running": RunState.RUNNING,
        "succeeded": RunState.SUCCEEDED,
        "failed": RunState.FAILED,
        "canceled": RunState.CANCELLED,
    }
    assert [found[r].exit_code for r in runs] == [None, None, 0, 137, None]
    assert found["queued"].detail.startswith("beaker queued: waiting for 2 nodes with 2 GPUs (")
    assert found["failed"].detail.startswith("beaker failed: OOMKilled (")
    assert found["canceled"].detail.startswith("beaker canceled: preempted by urgent job (")
    for run in runs:
        assert found[run].detail.endswith(f"({svc.address}/ex/{jobs[run]})")
    assert found["failed"].finished_at is not None and found["running"].finished_at is None


@pytest.mark.slow
def test_status_and_cancel_through_the_cli(beaker_service: Any, tmp_path: Path) -> None:
    svc = _service(beaker_service)
    result = _launched(svc, tmp_path, _configs(tmp_path, ("a", "b", "c")))
    group, jobs = result["group"], {r["run"]: r["job_id"] for r in result["runs"]}
    svc.set_job_state(jobs["a"], "running")
    svc.set_job_state(jobs["c"], "failed", exit_code=3, reason="trainer exited")
    args = ["--group", group, "--runs-dir", str(tmp_path / "runs")]
    status = _olmix(svc, "launch", "status", *args, "--json")
    assert status.returncode == 0, status.stderr
    shown = {r["run"]: r for r in json.loads(status.stdout)["runs"]}
    assert {r: (s["state"], s["exit_code"]) for r, s in shown.items()} == {
        "a": ("running", None),
        "b": ("pending", None),
        "c": ("failed", 3),
    }
    assert shown["c"]["detail"] == f"beaker failed: trainer exited ({svc.address}/ex/{jobs['c']})"
    assert {r: s["log"] for r, s in shown.items()} == {r: f"{svc.address}/ex/{j}" for r, j in jobs.items()}
    record = json.loads((tmp_path / "runs" / group / "launch.json").read_text())
    assert {r["name"]: r["status"]["state"] for r in record["runs"]} == {"a": "running", "b": "pending", "c": "failed"}

    one = _olmix(svc, "launch", "cancel", *args, "--run", "b", "--yes")
    assert one.returncode == 0, one.stderr
    assert "cancelled: b" in one.stdout
    assert {r: svc.experiment(j).state for r, j in jobs.items()} == {"a": "running", "b": "canceled", "c": "failed"}
    rest = _olmix(svc, "launch", "cancel", *args, "--yes")
    assert rest.returncode == 0, rest.stderr
    assert "cancelled: a" in rest.stdout  # b is finished now, c had failed: neither is cancelled again
    assert {r: svc.experiment(j).state for r, j in jobs.items()} == {"a": "canceled", "b": "canceled", "c": "failed"}


def _plan(tmp_path: Path, runs: list[str]) -> tuple[dict[str, Any], Path]:
    config = _configs(tmp_path, ("k",))[0]
    plan = {
        "plan_version": 1,
        "group": "g-0123abcd",
        "config": {"path": str(config), "sha256": launcher.sha256_file(config), "overrides": []},
        "runs": [{"name": name, "leaves": []} for name in runs],
    }
    return plan, config


KILL_POINTS = [("before-submit", 1), ("before-submit", 2), ("after-submit", 1), ("after-submit", 3), ("mid-save", 3)]
RUNS = ["run-a", "run-b", "run-c"]
COMMAND = ["{python}", "-m", "olmix.train", "--plan", "{plan}", "--out", "{run_dir}"]


def _options() -> dict[str, Any]:
    return {"image": "beaker://ai2/olmix", "clusters": ["ai2/jupiter"], "workspace": WORKSPACE, "budget": "ai2/b"}


def _resume_and_check(svc: Any, plan: dict[str, Any], config: Path, out: Path) -> None:
    results = launcher.launch(plan, config, BeakerBackend(**_options()), out, command=COMMAND)
    assert sorted(r.run for r in results) == RUNS
    experiments = svc.experiments()
    assert len(experiments) == len(RUNS)  # exactly one experiment per run
    record = launcher.read_record(out / "g-0123abcd")
    assert sorted(e.id for e in experiments) == sorted(str(r.job_id) for r in record.runs)
    by_id = {e.id: e for e in experiments}
    for entry in record.runs:  # each run's experiment mounts that run's own plan
        mount = by_id[str(entry.job_id)].spec["tasks"][0]["datasets"][0]["source"]["beaker"]
        assert json.loads(svc.dataset_files(mount)["plan.json"])["runs"][0]["name"] == entry.name


@pytest.mark.slow
@pytest.mark.parametrize(("where", "n"), KILL_POINTS)
def test_a_killed_launch_resumes_without_duplicates(beaker_service: Any, tmp_path: Path, where: str, n: int) -> None:
    svc = _service(beaker_service)
    plan, config = _plan(tmp_path, RUNS)
    out = tmp_path / "out"
    args = {"plan": plan, "config": str(config), "output": str(out), "command": COMMAND, "kill": [where, n]}
    args |= {"backend": "beaker", "options": _options()}
    killed(args, env=svc.subprocess_env(), cwd=REPO, timeout=120)
    _resume_and_check(svc, plan, config, out)


@pytest.mark.slow
@pytest.mark.parametrize("after", [False, True], ids=["dataset-made-no-experiment", "experiment-made-unheard"])
def test_a_launch_killed_inside_a_submission_resumes_without_duplicates(
    beaker_service: Any, tmp_path: Path, after: bool
) -> None:
    svc = _service(beaker_service)
    plan, config = _plan(tmp_path, RUNS)
    out = tmp_path / "out"
    gate = svc.hold_next("CreateExperiment", after=after)
    args = {"plan": plan, "config": str(config), "output": str(out), "command": COMMAND, "kill": ["none", 0]}
    args |= {"backend": "beaker", "options": _options()}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests/support/launch_killer.py"), json.dumps(args)],
        env=svc.subprocess_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert gate.wait_arrived(60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        gate.release()
    assert len(svc.datasets()) == 1  # the first run's plan was uploaded before its experiment was asked for
    assert len(svc.experiments()) == (1 if after else 0)
    _resume_and_check(svc, plan, config, out)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"workspace": "ai2/elsewhere"}, "Beaker has no workspace 'ai2/elsewhere'"),
        ({"cluster": "ai2/nowhere"}, "Beaker has no cluster 'ai2/nowhere'"),
        ({"secret": "team_wandb"}, "workspace ai2/olmix has no secret team_wandb (for WANDB_API_KEY)"),
        ({"token": "wrong"}, "Beaker answered UNAUTHENTICATED"),
    ],
    ids=["workspace", "cluster", "secret", "token"],
)
def test_a_launch_beaker_refuses_is_one_message_and_submits_nothing(
    beaker_service: Any, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    svc = beaker_service
    svc.add_workspace(WORKSPACE)
    svc.add_cluster("ai2/jupiter")
    svc.add_cluster("ai2/augusta")
    svc.add_secret(WORKSPACE, "HF_TOKEN")
    if "secret" not in change:
        svc.add_secret(WORKSPACE, "team_wandb")
    settings = SETTINGS.replace("ai2/olmix", change.get("workspace", "ai2/olmix"))
    settings = settings.replace("cluster: ai2/jupiter", f"cluster: {change.get('cluster', 'ai2/jupiter')}")
    env = svc.subprocess_env()
    if "token" in change:
        env["BEAKER_TOKEN"] = change["token"]
    done = _launch(svc, tmp_path, _configs(tmp_path, ("a",), settings), env=env)
    assert done.returncode == 1
    assert message in done.stderr and "nothing was submitted" in done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()  # one message, before any plan or confirmation
    assert message in line
    assert svc.experiments() == [] and svc.datasets() == []
    assert not (tmp_path / "runs").exists()


def _short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """beaker-py gives up on a REST call after Beaker.TIMEOUT seconds (30); a test waits 1."""
    import beaker

    monkeypatch.setattr(beaker.Beaker, "TIMEOUT", 1.0)


def _one_experiment_per_run_and_the_record_knows_each(svc: Any, out: Path) -> None:
    experiments = svc.experiments()
    record = launcher.read_record(out / "g-0123abcd")
    assert [e.state for e in record.runs] == ["submitted"] * len(RUNS)
    assert sorted(e.name for e in experiments) == sorted(f"olmix-{e.token}" for e in record.runs)
    assert sorted(e.id for e in experiments) == sorted(str(e.job_id) for e in record.runs)


def test_a_create_that_timed_out_after_beaker_made_it_is_adopted_at_once(
    beaker_service: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = _service(beaker_service)
    _short_timeout(monkeypatch)
    plan, config = _plan(tmp_path, RUNS)
    out = tmp_path / "out"
    gate = svc.hold_next("CreateExperiment", after=True)  # made, and the answer comes after the client gave up
    try:
        results = launcher.launch(plan, config, BeakerBackend(**_options()), out, command=COMMAND)
    finally:
        gate.release()
    assert gate.wait_finished()
    assert sorted(r.run for r in results) == RUNS
    _one_experiment_per_run_and_the_record_knows_each(svc, out)


def test_a_create_beaker_makes_after_the_client_timed_out_is_never_made_twice(
    beaker_service: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = _service(beaker_service)
    _short_timeout(monkeypatch)
    plan, config = _plan(tmp_path, RUNS)
    out = tmp_path / "out"
    gate = svc.hold_next("CreateExperiment")  # the first create reaches Beaker, which makes it only later
    try:
        with pytest.raises(OlmixError) as caught:
            launcher.launch(plan, config, BeakerBackend(**_options()), out, command=COMMAND)
        assert "was not submitted" not in str(caught.value)
        # resumed while Beaker still holds the first create: the run is not there yet
        launcher.launch(plan, config, BeakerBackend(**_options()), out, command=COMMAND)
    finally:
        gate.release()
    assert gate.wait_finished()  # ...and now Beaker has done what it was first asked
    _one_experiment_per_run_and_the_record_knows_each(svc, out)
    again = launcher.launch(plan, config, BeakerBackend(**_options()), out, command=COMMAND)
    assert not any(r.new for r in again)
    assert len(svc.experiments()) == len(RUNS)


@pytest.mark.slow
def test_results_fetch_each_finished_run_s_metrics_from_its_result_dataset_once(
    beaker_service: Any, tmp_path: Path
) -> None:
    from tests.support.records import metrics_doc

    svc = _service(beaker_service)
    group = _launched(svc, tmp_path, _configs(tmp_path, ("a", "b", "c")))["group"]
    group_dir = tmp_path / "runs" / group
    job = {e["name"]: e["job_id"] for e in json.loads((group_dir / "launch.json").read_text())["runs"]}
    first = json.dumps(metrics_doc("a", {"web": 3.25})).encode()
    svc.set_job_state(job["a"], "running")
    dataset = svc.write_result(job["a"], {"metrics.json": first, "train.log": b"step 1\n"})
    svc.set_job_state(job["a"], "succeeded")
    svc.set_job_state(job["b"], "running")
    svc.write_result(job["b"], {"train.log": b"killed before the end\n"})  # no metrics.json in its result
    svc.set_job_state(job["b"], "succeeded")
    svc.set_job_state(job["c"], "running")

    def results() -> tuple[dict[str, Any], str]:
        done = _olmix(svc, "results", "--group", group, "--runs-dir", str(tmp_path / "runs"), "--format", "json")
        assert done.returncode == 0, done.stderr
        return {r["run"]: r for r in json.loads(done.stdout)["runs"]}, done.stderr

    found, notes = results()
    assert sorted(found) == ["a"] and found["a"]["heldout_loss"] == {"web": 3.25}
    assert f"{group}/b: beaker succeeded, but its result dataset has no metrics.json" in notes
    assert f"{group}/c: beaker running: no metrics yet" in notes
    assert (group_dir / "a" / "metrics.json").read_bytes() == first  # kept in the run's folder
    assert json.loads((group_dir / "a" / "metrics.fetched.json").read_text()) == {
        "experiment": job["a"],
        "dataset": dataset,
        "path": "metrics.json",
        "size": len(first),
        "digest": hashlib.sha256(first).hexdigest(),
    }
    assert svc.calls["DownloadDatasetFile"] == 1

    svc.reset_calls()
    assert results()[0] == found  # unchanged on Beaker: nothing downloaded again
    # the workspace once; each finished run: its experiment, its latest job, its result and the result's files
    # (a, and b without metrics); the running run c: its experiment
    finished = ["GetWorkload", "ListJobs", "GetDataset", "ListDatasetFiles"]
    assert sorted(svc.calls.elements()) == sorted(
        ["ResolveWorkspaceName", "GetWorkspace", *finished, *finished, "GetWorkload"]
    )

    # a run restarted writes a new result; the next look fetches it, and only it
    second = json.dumps(metrics_doc("a", {"web": 2.5})).encode()
    svc.set_job_state(job["a"], "running")
    svc.write_result(job["a"], {"metrics.json": second})
    svc.set_job_state(job["a"], "succeeded")
    svc.reset_calls()
    found, _ = results()
    assert found["a"]["heldout_loss"] == {"web": 2.5} and svc.calls["DownloadDatasetFile"] == 1
    assert (group_dir / "a" / "metrics.json").read_bytes() == second

    # fit's evidence fetches too: a run whose copy is gone is fetched again
    (group_dir / "a" / "metrics.json").unlink()
    done = _olmix(svc, "results", "--group", group, "--runs-dir", str(tmp_path / "runs"), "--mixtures")
    assert done.returncode == 0, done.stderr
    assert "2.5000" in done.stdout and (group_dir / "a" / "metrics.json").read_bytes() == second


def test_fetching_without_beaker_py_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from olmix.errors import ExtraMissing

    monkeypatch.setitem(sys.modules, "beaker", None)  # `import beaker` fails as where it is not installed
    with pytest.raises(ExtraMissing, match=r"olmix\[beaker\]"):
        _backend().fetch_results(tmp_path / "r", "01ABC")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.json").write_text("{}")  # written there some other way: nothing to ask Beaker
    assert _backend().fetch_results(tmp_path / "r", "01ABC") is None
