"""The stand-in Beaker service, proved with the real beaker-py client alone (no olmix code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO

beaker = pytest.importorskip("beaker", reason="needs the olmix[beaker] extra (beaker-py): pip install 'olmix[beaker]'")
grpc = pytest.importorskip("grpc")
requests = pytest.importorskip("requests")
pytest.importorskip("cryptography", reason="the stand-in Beaker's TLS certificate needs cryptography")

from beaker import (  # noqa: E402
    Beaker,
    BeakerCancelationCode,
    BeakerConstraints,
    BeakerDataMount,
    BeakerDataSource,
    BeakerEnvVar,
    BeakerExperimentSpec,
    BeakerImageSource,
    BeakerJobPriority,
    BeakerResultSpec,
    BeakerSortOrder,
    BeakerTaskContext,
    BeakerTaskResources,
    BeakerTaskSpec,
    BeakerWorkloadStatus,
)
from beaker import beaker_pb2 as pb2  # noqa: E402
from beaker import exceptions as bx  # noqa: E402

if TYPE_CHECKING:
    from tests.services.beakerservice import BeakerService

WORKSPACE = "ai2/olmix"
CLUSTER = "ai2/jupiter"


def _spec(*, description: str = "olmix run", cluster: str = CLUSTER, secret: str = "HF_TOKEN") -> BeakerExperimentSpec:
    return BeakerExperimentSpec(
        description=description,
        budget="ai2/oe-data",
        tasks=[
            BeakerTaskSpec(
                name="train",
                image=BeakerImageSource(beaker="olmix/trainer"),
                context=BeakerTaskContext(priority=BeakerJobPriority.high),
                command=["python", "-m", "olmix.train"],
                arguments=["--plan", "/plan/run-0.json"],
                env_vars=[BeakerEnvVar(name="OLMIX_RUN", value="run-0"), BeakerEnvVar(name="HF_TOKEN", secret=secret)],
                constraints=BeakerConstraints(cluster=[cluster]),
                resources=BeakerTaskResources(gpu_count=8),
                result=BeakerResultSpec(path="/results"),
            )
        ],
    )


@pytest.fixture
def service(beaker_service: BeakerService) -> BeakerService:
    beaker_service.add_workspace(WORKSPACE)
    beaker_service.add_cluster(CLUSTER)
    beaker_service.add_secret(WORKSPACE, "HF_TOKEN")
    return beaker_service


@pytest.fixture
def client(service: BeakerService) -> Iterator[Beaker]:
    with Beaker.from_env(check_for_upgrades=False) as b:
        yield b


@pytest.fixture
def ws(client: Beaker) -> pb2.Workspace:
    return client.workspace.get(WORKSPACE)


def _state(status: int) -> str:
    """A workload or job status by beaker-py's BeakerWorkloadStatus name."""
    return BeakerWorkloadStatus(status).name


def test_config_points_the_real_client_at_the_stand_in(
    service: BeakerService, client: Beaker, ws: pb2.Workspace
) -> None:
    assert client.config.agent_address == service.address
    assert client.config.rpc_address == service.rpc_address
    assert client.user.get().name == "tester"
    assert client.workspace.get(WORKSPACE).id == service.add_workspace(WORKSPACE)
    assert client.cluster.get(CLUSTER).name == "jupiter"
    assert client.secret.get("HF_TOKEN", workspace=ws).name == "HF_TOKEN"


def test_create_then_read_back_by_name(service: BeakerService, client: Beaker, ws: pb2.Workspace) -> None:
    spec = _spec()
    created = client.experiment.create(name="olmix-g1-run0", spec=spec, workspace=ws)

    found = client.workload.get("tester/olmix-g1-run0")
    assert found.experiment.id == created.experiment.id
    assert found.experiment.name == "olmix-g1-run0"
    assert found.experiment.workspace_id == client.workspace.get(WORKSPACE).id
    assert _state(found.status) == "queued"
    # the server keeps the body as posted; the YAML spec reads back to an equal spec
    (record,) = service.experiments()
    assert record.spec == spec.to_json()
    assert client.experiment.get_spec(found) == spec
    # the task carries what the spec asked for, in Beaker's own message fields
    task = found.experiment.tasks[0]
    assert task.name == "train"
    assert task.container_spec.resource_request.gpu_count == 8
    assert [(e.name, e.secret_reference) for e in task.container_spec.environment_variables if e.secret_reference] == [
        ("HF_TOKEN", "HF_TOKEN")
    ]
    assert list(task.system_details.placement_constraints[0].values) == [CLUSTER]
    assert client.experiment.url(found) == f"{service.address}/ex/{created.experiment.id}"


def test_a_name_in_use_is_a_conflict_and_nothing_is_created_twice(
    service: BeakerService, client: Beaker, ws: pb2.Workspace
) -> None:
    client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
    with pytest.raises(bx.BeakerExperimentConflict):
        client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
    assert [e.name for e in service.experiments()] == ["olmix-g1-run0"]


def test_find_by_name_in_a_workload_list(service: BeakerService, client: Beaker, ws: pb2.Workspace) -> None:
    for name in ("olmix-aaa-run0", "olmix-aaa-run1", "olmix-bbb-run0"):
        client.experiment.create(name=name, spec=_spec(), workspace=ws)
    service.add_workspace("ai2/elsewhere")
    service.add_secret("ai2/elsewhere", "HF_TOKEN")
    client.experiment.create(name="olmix-aaa-run2", spec=_spec(), workspace=client.workspace.get("ai2/elsewhere"))

    found = client.workload.list(workspace=ws, name_or_description="olmix-aaa")
    assert sorted(w.experiment.name for w in found) == ["olmix-aaa-run0", "olmix-aaa-run1"]
    by_description = client.workload.list(workspace=ws, name_or_description="olmix run")
    assert len(list(by_description)) == 3


@pytest.mark.slow
def test_a_long_list_comes_in_pages(service: BeakerService, client: Beaker, ws: pb2.Workspace) -> None:
    names = {f"olmix-big-run{i}" for i in range(61)}
    for name in names:
        client.experiment.create(name=name, spec=_spec(), workspace=ws)
    service.reset_calls()

    found = [w.experiment.name for w in client.workload.list(workspace=ws, name_or_description="olmix-big")]
    assert sorted(found) == sorted(names)
    assert service.calls["ListWorkloads"] == 2  # pages of beaker-py's MAX_PAGE_SIZE (50)


def test_state_exit_code_and_reason_after_set_job_state(
    service: BeakerService, client: Beaker, ws: pb2.Workspace
) -> None:
    workload = client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
    job = client.workload.get_latest_job(workload)
    assert job is not None and _state(job.status.status) == "queued"
    assert not job.status.HasField("finalized")

    service.set_job_state("olmix-g1-run0", "running")
    assert _state(client.workload.get(workload.experiment.id).status) == "running"
    running = client.workload.get_latest_job(workload)
    assert running is not None and running.status.HasField("started") and not running.status.HasField("exit_code")

    service.set_job_state("olmix-g1-run0", "failed", exit_code=137, reason="out of memory")
    again = client.workload.get(workload.experiment.id)
    assert _state(again.status) == "failed"
    failed = client.workload.get_latest_job(again)
    assert failed is not None
    assert (_state(failed.status.status), failed.status.exit_code, failed.status.message) == (
        "failed",
        137,
        "out of memory",
    )
    assert failed.status.HasField("finalized")
    assert client.job.get(failed.id).status.exit_code == 137


def test_a_finished_job_moved_again_is_a_new_job(service: BeakerService, client: Beaker, ws: pb2.Workspace) -> None:
    workload = client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
    service.set_job_state(workload.experiment.id, "failed")
    first = client.workload.get_latest_job(workload)
    service.set_job_state(workload.experiment.id, "succeeded")
    second = client.workload.get_latest_job(workload)
    assert first is not None and second is not None and first.id != second.id
    assert (first.status.exit_code, second.status.exit_code) == (1, 0)
    assert _state(client.workload.get(workload.experiment.id).status) == "succeeded"


def test_cancel(service: BeakerService, client: Beaker, ws: pb2.Workspace) -> None:
    keep = client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
    stop = client.experiment.create(name="olmix-g1-run1", spec=_spec(), workspace=ws)
    service.set_job_state("olmix-g1-run1", "running")

    assert list(client.workload.cancel(stop)) == [stop.experiment.id]

    stopped = client.workload.get(stop.experiment.id)
    assert _state(stopped.status) == "canceled"
    assert stopped.experiment.HasField("canceled")
    job = client.workload.get_latest_job(stopped)
    assert job is not None and job.status.HasField("canceled") and job.status.HasField("finalized")
    assert _state(client.workload.get(keep.experiment.id).status) == "queued"
    with pytest.raises(bx.BeakerNotFoundError):
        client.workload.cancel(pb2.Workload(experiment=pb2.Experiment(id="01NOSUCHWORKLOAD")))


def test_a_wrong_token_is_refused_on_both_protocols(service: BeakerService) -> None:
    workspace_id = service.add_workspace(WORKSPACE)
    with service.client(user_token="not-the-token") as wrong:
        with pytest.raises(grpc.RpcError) as refused:
            wrong.workspace.get(WORKSPACE)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(bx.BeakerError, match=r"\[code=401\]"):
            wrong.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=workspace_id)  # type: ignore[arg-type]
    # the raw reply is Beaker's error body
    reply = requests.post(f"{service.address}/api/v3/workspaces/{workspace_id}/experiments", data="{}", timeout=10)
    assert reply.status_code == 401 and "token" in reply.json()["message"]
    assert service.experiments() == []


def test_unknown_names_are_not_found(service: BeakerService, client: Beaker, ws: pb2.Workspace) -> None:
    with pytest.raises(bx.BeakerWorkspaceNotFound):
        client.workspace.get("ai2/no-such-workspace")
    with pytest.raises(bx.BeakerWorkspaceNotFound):
        client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace="ai2/no-such-workspace")  # type: ignore[arg-type]
    with pytest.raises(bx.BeakerClusterNotFound):
        client.cluster.get("ai2/no-such-cluster")
    with pytest.raises(bx.BeakerSecretNotFound):
        client.secret.get("NO_SUCH_SECRET", workspace=ws)
    with pytest.raises(bx.BeakerWorkloadNotFound):
        client.workload.get("tester/no-such-run")
    # a spec naming what does not exist is refused at creation, and nothing is created
    with pytest.raises(bx.BeakerError, match="cluster"):
        client.experiment.create(name="olmix-g1-run0", spec=_spec(cluster="ai2/nowhere"), workspace=ws)
    with pytest.raises(bx.BeakerError, match="secret"):
        client.experiment.create(name="olmix-g1-run0", spec=_spec(secret="NOPE"), workspace=ws)
    assert service.experiments() == []


def test_an_rpc_the_stand_in_lacks_is_unimplemented(service: BeakerService, client: Beaker, ws: pb2.Workspace) -> None:
    with pytest.raises(NotImplementedError):
        list(client.group.list(workspace=ws))


def test_calls_are_counted_by_name(service: BeakerService, client: Beaker, ws: pb2.Workspace) -> None:
    service.reset_calls()
    client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
    # beaker-py 2.8.1: POST the spec, read the new workload
    assert dict(service.calls) == {"CreateExperiment": 1, "GetWorkload": 1}
    assert service.total_calls() == 2
    service.reset_calls()
    client.experiment.create(name="olmix-g1-run1", spec=_spec(), workspace=WORKSPACE)  # type: ignore[arg-type]
    # a workspace by name costs one more call
    assert dict(service.calls) == {"ResolveWorkspaceName": 1, "CreateExperiment": 1, "GetWorkload": 1}


def test_a_create_refused_after_it_took_effect_is_found_by_name(
    service: BeakerService, client: Beaker, ws: pb2.Workspace
) -> None:
    service.fail_next("CreateExperiment", 503, after=True)
    with pytest.raises(requests.HTTPError):
        client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
    # the client never heard of it, yet it exists: a resumed launch must look before it submits
    (found,) = client.workload.list(workspace=ws, name_or_description="olmix-g1-run0")
    assert found.experiment.name == "olmix-g1-run0"
    client.experiment.create(name="olmix-g1-run1", spec=_spec(), workspace=ws)  # the fault was used up


def test_a_create_refused_before_it_took_effect_leaves_nothing(
    service: BeakerService, client: Beaker, ws: pb2.Workspace
) -> None:
    service.fail_next("CreateExperiment", 400, message="spec rejected")
    with pytest.raises(bx.BeakerError, match="spec rejected"):
        client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
    assert service.experiments() == []


def test_a_held_create_has_taken_effect_before_the_client_hears(
    service: BeakerService, client: Beaker, ws: pb2.Workspace
) -> None:
    gate = service.hold_next("CreateExperiment", after=True)
    errors: list[BaseException] = []

    def create() -> None:
        try:
            client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=create, daemon=True)
    thread.start()
    assert gate.wait_arrived(30)
    assert [e.name for e in service.experiments()] == ["olmix-g1-run0"]
    assert service.calls["GetWorkload"] == 0  # the client is still waiting for the create's reply
    gate.release()
    thread.join(30)
    assert not thread.is_alive() and errors == []
    assert service.calls["GetWorkload"] == 1


def test_a_slow_call_is_slowed(service: BeakerService, client: Beaker) -> None:
    service.delay_next("GetWorkspace", 0.2)
    gate = service.hold_next("GetCluster")
    done = threading.Event()

    def get() -> None:
        client.cluster.get(CLUSTER)
        done.set()

    thread = threading.Thread(target=get, daemon=True)
    thread.start()
    assert gate.wait_arrived(30)
    assert not done.is_set()
    gate.release()
    thread.join(30)
    assert done.is_set()
    with pytest.raises(ValueError, match="unknown call"):
        service.fail_next("NoSuchCall")


def _files(folder: Path, sizes: dict[str, int]) -> dict[str, bytes]:
    written = {}
    for name, size in sizes.items():
        data = os.urandom(size)
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        written[name] = data
    return written


def _read_back(client: Beaker, dataset_name: str) -> dict[str, bytes]:
    dataset = client.dataset.get(dataset_name)
    return {f.path: b"".join(client.dataset.stream_file(dataset, f.path)) for f in client.dataset.list_files(dataset)}


def test_dataset_upload_and_read_back(
    service: BeakerService, client: Beaker, tmp_path: Path, ws: pb2.Workspace
) -> None:
    plan = tmp_path / "plan"
    written = _files(plan, {"group.json": 300, "runs/run-0.json": 5000, "runs/run-1.json": 7})

    dataset = client.dataset.create("olmix-g1-plan", plan, workspace=ws, strip_paths=True)

    assert dataset.HasField("committed")
    assert client.dataset.get("tester/olmix-g1-plan").id == dataset.id
    assert _read_back(client, "tester/olmix-g1-plan") == written
    assert service.dataset_files("olmix-g1-plan") == written
    with pytest.raises(bx.BeakerDatasetConflict):
        client.dataset.create("olmix-g1-plan", plan, workspace=ws)


@pytest.mark.slow
def test_a_job_result_is_a_dataset_read_back_through_the_workload(
    service: BeakerService, client: Beaker, ws: pb2.Workspace
) -> None:
    import hashlib

    workload = client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
    assert client.workload.get_results(workload) is None  # nothing written yet: no result dataset
    service.set_job_state(workload.experiment.id, "running")
    first = service.write_result(workload.experiment.id, {"metrics.json": b'{"loss": 1}', "logs/train.log": b"x"})
    service.set_job_state(workload.experiment.id, "succeeded")

    result = client.workload.get_results(workload)
    assert result is not None and result.id == first and result.HasField("committed")
    files = {f.path: f for f in client.dataset.list_files(result)}
    assert sorted(files) == ["logs/train.log", "metrics.json"]
    assert (files["metrics.json"].size, files["metrics.json"].digest.value) == (
        len(b'{"loss": 1}'),
        hashlib.sha256(b'{"loss": 1}').digest(),
    )
    assert b"".join(client.dataset.stream_file(result, "metrics.json")) == b'{"loss": 1}'
    with pytest.raises(ValueError, match="committed"):  # a finished job's result changes no more
        service.write_result(workload.experiment.id, {"metrics.json": b"{}"})
    # run again: a new job with a result of its own; the first stays as it was
    service.set_job_state(workload.experiment.id, "running")
    second = service.write_result(workload.experiment.id, {"metrics.json": b'{"loss": 2}'})
    again = client.workload.get_results(workload)
    assert again is not None and again.id == second != first and not again.HasField("committed")
    assert b"".join(client.dataset.stream_file(again, "metrics.json")) == b'{"loss": 2}'
    assert service.dataset_files(first)["metrics.json"] == b'{"loss": 1}'


def test_a_multi_megabyte_dataset_in_chunks(
    service: BeakerService, client: Beaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ws: pb2.Workspace
) -> None:
    plan = tmp_path / "plan"
    written = _files(plan, {"plan.json": 6 * 1024 * 1024 + 123, "small.json": 10})
    # beaker-py sends files over REQUEST_SIZE_LIMIT (32 MiB) through the chunked upload API; lower it to use
    # that path with a file this size
    monkeypatch.setattr(type(client.dataset), "REQUEST_SIZE_LIMIT", 2 * 1024 * 1024)
    service.reset_calls()

    client.dataset.create("olmix-big-plan", plan, workspace=ws, strip_paths=True)

    assert service.calls["StartUpload"] == 1
    assert service.calls["WriteUpload"] == 4
    assert service.calls["UploadDatasetFile"] == 2
    assert _read_back(client, "tester/olmix-big-plan") == written
    # a mounted dataset resolves to its id in the task's mounts
    spec = _spec()
    spec.tasks[0].datasets = [
        BeakerDataMount(source=BeakerDataSource(beaker="tester/olmix-big-plan"), mount_path="/plan")
    ]
    workload = client.experiment.create(name="olmix-big-run0", spec=spec, workspace=ws)
    (mount,) = workload.experiment.tasks[0].container_spec.mounts
    assert (mount.mount_path, mount.dataset_id) == ("/plan", client.dataset.get("tester/olmix-big-plan").id)


@pytest.mark.slow
def test_a_subprocess_reaches_the_stand_in_through_env(service: BeakerService) -> None:
    script = (
        "import json; from beaker import *\n"
        "with Beaker.from_env(check_for_upgrades=False) as b:\n"
        "    b.experiment.create(name='olmix-sub-run0', spec=BeakerExperimentSpec.from_file('spec.yml'),"
        " workspace='ai2/olmix')\n"
        "    print(json.dumps([w.experiment.name for w in b.workload.list(name_or_description='olmix-sub')]))\n"
    )
    folder = service.config_path.parent
    _spec().to_file(folder / "spec.yml")
    env = service.subprocess_env({**os.environ, "BEAKER_TOKEN": "would-override", "PYTHONPATH": str(REPO)})
    assert "BEAKER_TOKEN" not in env
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout) == ["olmix-sub-run0"]
    assert [e.name for e in service.experiments()] == ["olmix-sub-run0"]


def test_concurrent_creates_of_one_name_make_one_experiment(service: BeakerService, ws: pb2.Workspace) -> None:
    outcomes: list[str] = []
    lock = threading.Lock()

    def create() -> None:
        with service.client() as b:
            try:
                b.experiment.create(name="olmix-race-run0", spec=_spec(), workspace=ws)
                outcome = "created"
            except bx.BeakerExperimentConflict:
                outcome = "conflict"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=create, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["conflict"] * 7 + ["created"]
    assert [e.name for e in service.experiments()] == ["olmix-race-run0"]


@pytest.mark.slow
def test_a_client_killed_during_create_leaves_one_experiment(service: BeakerService, ws: pb2.Workspace) -> None:
    folder = service.config_path.parent
    _spec().to_file(folder / "spec.yml")
    script = (
        "from beaker import *\n"
        "with Beaker.from_env(check_for_upgrades=False) as b:\n"
        f"    b.experiment.create(name='olmix-kill-run0', spec=BeakerExperimentSpec.from_file('spec.yml'),"
        f" workspace=b.workspace.get('{WORKSPACE}'))\n"
    )
    gate = service.hold_next("CreateExperiment", after=True)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=folder, env=service.subprocess_env())
    try:
        assert gate.wait_arrived(60)
        child.kill()
        child.wait(30)
    finally:
        gate.release()
    assert child.returncode != 0
    # the server finished what the killed client asked for; a second look by name finds exactly one
    with service.client() as b:
        found = list(b.workload.list(workspace=ws, name_or_description="olmix-kill-run0"))
    assert [w.experiment.name for w in found] == ["olmix-kill-run0"]
    assert service.calls["GetWorkload"] == 0


def test_stop_closes_both_ports_and_releases_held_calls(tmp_path: Path) -> None:
    from tests.services.beakerservice import BeakerService as Service

    with Service(tmp_path / "beaker") as service:
        service.add_workspace(WORKSPACE)
        gate = service.hold_next("GetWorkspace")
        errors: list[BaseException] = []

        def get() -> None:
            try:
                with service.client() as b:
                    b.workspace.get(WORKSPACE)
            except BaseException as err:
                errors.append(err)

        thread = threading.Thread(target=get, daemon=True)
        thread.start()
        assert gate.wait_arrived(30)
        address, rpc_address = service.address, service.rpc_address
    thread.join(30)
    assert not thread.is_alive() and errors == []  # the released call was answered before the port closed
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{address}/api/v3/datasets/x", timeout=5)
    channel = grpc.secure_channel(rpc_address, grpc.ssl_channel_credentials())  # as beaker-py opens it
    try:
        with pytest.raises(grpc.FutureTimeoutError):
            grpc.channel_ready_future(channel).result(timeout=1)
    finally:
        channel.close()


def test_a_preempted_job_reads_back_its_cancelation(service: BeakerService, client: Beaker, ws: pb2.Workspace) -> None:
    workload = client.experiment.create(name="olmix-g1-run0", spec=_spec(), workspace=ws)
    service.set_job_state(
        "olmix-g1-run0", "canceled", reason="preempted by a higher priority job", canceled_code="system_preemption"
    )
    job = client.workload.get_latest_job(workload)
    assert job is not None
    assert BeakerCancelationCode(job.status.canceled_code).name == "system_preemption"
    assert job.status.canceled_for == "preempted by a higher priority job"
    assert _state(client.workload.get(workload.experiment.id).status) == "canceled"
    with pytest.raises(ValueError):
        service.set_job_state("olmix-g1-run0", "canceled", canceled_code="no_such_code")
    with pytest.raises(ValueError, match="unknown state"):
        service.set_job_state("olmix-g1-run0", "exploded")


@pytest.mark.slow
def test_the_module_runs_a_command_against_a_stand_in(tmp_path: Path) -> None:
    script = (
        "from beaker import *\n"
        "with Beaker.from_env(check_for_upgrades=False) as b:\n"
        "    print(b.workspace.get('ai2/scratch').name, b.cluster.get('ai2/saturn').name,"
        " b.secret.get('S', workspace=b.workspace.get('ai2/scratch')).name)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BEAKER_CONFIG"} | {"PYTHONPATH": str(REPO)}
    argv = ["--workspace", "ai2/scratch", "--cluster", "ai2/saturn", "--secret", "S"]
    out = subprocess.run(
        [sys.executable, "-m", "tests.services.beakerservice", *argv, "--", sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["scratch", "saturn", "S"]
    assert "GetCluster" in out.stderr


def test_list_filters_by_status_and_finalized(service: BeakerService, client: Beaker, ws: pb2.Workspace) -> None:
    for name in ("olmix-f-run0", "olmix-f-run1", "olmix-f-run2"):
        client.experiment.create(name=name, spec=_spec(), workspace=ws)
    service.set_job_state("olmix-f-run0", "running")
    service.set_job_state("olmix-f-run1", "succeeded")

    def names(**filters: object) -> list[str]:
        return sorted(w.experiment.name for w in client.workload.list(workspace=ws, **filters))  # type: ignore[arg-type]

    assert names(statuses=[BeakerWorkloadStatus.running]) == ["olmix-f-run0"]
    assert names(statuses=[BeakerWorkloadStatus.queued, BeakerWorkloadStatus.succeeded]) == [
        "olmix-f-run1",
        "olmix-f-run2",
    ]
    assert names(finalized=True) == ["olmix-f-run1"]
    assert names(finalized=False) == ["olmix-f-run0", "olmix-f-run2"]
    running = client.workload.get("tester/olmix-f-run0")
    assert client.workload.get_latest_job(running, finalized=True) is None
    assert client.workload.get_latest_job(running, finalized=False) is not None
    newest_first = [
        w.experiment.name for w in client.workload.list(workspace=ws, sort_order=BeakerSortOrder.descending)
    ]
    assert newest_first == ["olmix-f-run2", "olmix-f-run1", "olmix-f-run0"]
