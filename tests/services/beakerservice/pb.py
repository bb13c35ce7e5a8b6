"""The stand-in's records as beaker-py's own protobuf messages (`beaker.beaker_pb2`), as the service sends them."""

from __future__ import annotations

import hashlib
from typing import Any

from beaker import beaker_pb2 as pb2
from google.protobuf.timestamp_pb2 import Timestamp  # type: ignore[import-untyped]

from tests.services.beakerservice import state as st

_STATUS = {
    "submitted": pb2.STATUS_SUBMITTED,
    "queued": pb2.STATUS_QUEUED,
    "initializing": pb2.STATUS_INITIALIZING,
    "running": pb2.STATUS_RUNNING,
    "stopping": pb2.STATUS_STOPPING,
    "uploading_results": pb2.STATUS_UPLOADING_RESULTS,
    "canceled": pb2.STATUS_CANCELED,
    "succeeded": pb2.STATUS_SUCCEEDED,
    "failed": pb2.STATUS_FAILED,
    "ready_to_start": pb2.STATUS_READY_TO_START,
}
STATE_OF_STATUS = {value: key for key, value in _STATUS.items()}
_PRIORITY = {
    "low": pb2.JOB_PRIORITY_LOW,
    "normal": pb2.JOB_PRIORITY_NORMAL,
    "high": pb2.JOB_PRIORITY_HIGH,
    "urgent": pb2.JOB_PRIORITY_URGENT,
    "immediate": pb2.JOB_PRIORITY_IMMEDIATE,
}
_MOUNT_MODE = {"ro": pb2.MOUNT_MODE_READ_ONLY, "rw": pb2.MOUNT_MODE_READ_WRITE}


def cancelation_code(name: str) -> pb2.CancelationCode:
    """beaker-py's BeakerCancelationCode names ("manual", "system_preemption", "timeout", ...) to the enum."""
    code: pb2.CancelationCode = pb2.CancelationCode.Value("CANCELATION_CODE_" + name.upper())
    return code


def status(state: str) -> pb2.WorkloadStatus:
    return _STATUS[state]


def timestamp(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def organization(s: st.State) -> pb2.Organization:
    return pb2.Organization(id=s.org_id, name=s.org, display_name=s.org)


def user(s: st.State) -> pb2.User:
    return pb2.User(id=s.user_id, name=s.user, display_name=s.user)


def workspace(s: st.State, ws: st.Workspace) -> pb2.Workspace:
    owner, _, name = ws.full_name.partition("/")
    return pb2.Workspace(
        id=ws.id,
        name=name,
        created=timestamp(ws.created),
        owner_org=pb2.Organization(id=s.org_id if owner == s.org else "", name=owner),
        author_user=user(s),
    )


def cluster(s: st.State, c: st.Cluster) -> pb2.Cluster:
    owner, _, name = c.full_name.partition("/")
    return pb2.Cluster(
        id=c.id,
        name=name,
        created=timestamp(c.created),
        organization_id=s.org_id if owner == s.org else "",
        organization_name=owner,
    )


def secret(s: st.State, sec: st.Secret) -> pb2.Secret:
    return pb2.Secret(
        name=sec.name, created=timestamp(sec.created), updated=timestamp(sec.created), author_id=s.user_id
    )


def _container_spec(s: st.State, spec: dict[str, Any]) -> pb2.ContainerSpec:
    image = spec.get("image") or {}
    resources = spec.get("resources") or {}
    env = [
        pb2.EnvironmentVariable(name=e["name"], secret_reference=e["secret"])
        if e.get("secret")
        else pb2.EnvironmentVariable(name=e["name"], literal=str(e.get("value") or ""))
        for e in spec.get("envVars") or []
    ]
    mounts = []
    for mount in spec.get("datasets") or []:
        source = mount.get("source") or {}
        dataset_id = ""
        if source.get("beaker"):
            try:
                dataset_id = s.dataset(str(source["beaker"])).id
            except st.CallError:
                dataset_id = str(source["beaker"])
        mounts.append(
            pb2.Mount(
                mount_path=mount.get("mountPath"),
                sub_path=mount.get("subPath"),
                dataset_id=dataset_id or None,
                host_path=source.get("hostPath"),
                secret_reference=source.get("secret"),
                weka=source.get("weka"),
                mode=_MOUNT_MODE.get(str(mount.get("mode")), pb2.MOUNT_MODE_UNSPECIFIED),
            )
        )
    return pb2.ContainerSpec(
        resource_request=pb2.ResourceRequest(gpu_count=resources.get("gpuCount"), cpu_count=resources.get("cpuCount")),
        image_id=image.get("beaker"),
        docker_reference=image.get("docker"),
        command=spec.get("command") or [],
        arguments=spec.get("arguments") or [],
        environment_variables=env,
        mounts=mounts,
        result_path=(spec.get("result") or {}).get("path"),
        host_networking=bool(spec.get("hostNetworking")),
    )


def _system_details(spec: dict[str, Any]) -> pb2.SystemDetails:
    context = spec.get("context") or {}
    clusters = (spec.get("constraints") or {}).get("cluster") or []
    replicas = spec.get("replicas")
    return pb2.SystemDetails(
        priority=_PRIORITY.get(str(context.get("priority")), pb2.JOB_PRIORITY_UNSPECIFIED),
        placement_constraints=[
            pb2.JobPlacementConstraint(type=pb2.JOB_PLACEMENT_CONSTRAINT_TYPE_CLUSTER, values=clusters)
        ]
        if clusters
        else [],
        replica_group_details=pb2.ReplicaGroupDetails(
            size=replicas, is_leader_replica=bool(spec.get("leaderSelection"))
        )
        if replicas
        else None,
        propagate_failure=bool(spec.get("propagateFailure")),
        propagate_preemption=bool(spec.get("propagatePreemption")),
        auto_resume=bool(context.get("autoResume")),
    )


def task(s: st.State, exp: st.Experiment, t: st.Task) -> pb2.Task:
    return pb2.Task(
        id=t.id,
        experiment_id=exp.id,
        name=t.name,
        author_id=s.user_id,
        created=timestamp(t.created),
        container_spec=_container_spec(s, t.spec),
        system_details=_system_details(t.spec),
        status=status(t.state),
    )


def workload(s: st.State, exp: st.Experiment) -> pb2.Workload:
    return pb2.Workload(
        experiment=pb2.Experiment(
            id=exp.id,
            name=exp.name,
            author_id=s.user_id,
            workspace_id=exp.workspace_id,
            description=str(exp.spec.get("description") or ""),
            tasks=[task(s, exp, t) for t in exp.tasks],
            created=timestamp(exp.created),
            canceled=timestamp(exp.canceled),
            canceled_for="canceled by user" if exp.canceled is not None else None,
        ),
        status=status(exp.state),
        budget_id=exp.spec.get("budget"),
    )


def job(s: st.State, exp: st.Experiment, t: st.Task, j: st.Job) -> pb2.Job:
    return pb2.Job(
        id=j.id,
        task_id=t.id,
        name=f"{exp.name}/{t.name}",
        author_id=s.user_id,
        workspace_id=exp.workspace_id,
        workload_id=exp.id,
        workspace_reference=exp.workspace,
        author_reference=exp.author,
        budget_id=exp.spec.get("budget"),
        workload_created=timestamp(exp.created),
        status=pb2.JobStatus(
            status=status(j.state),
            created=timestamp(j.created),
            scheduled=timestamp(j.started),
            started=timestamp(j.started),
            exited=timestamp(j.exited),
            failed=timestamp(j.finalized) if j.state == "failed" else None,
            finalized=timestamp(j.finalized),
            canceled=timestamp(j.canceled),
            exit_code=j.exit_code,
            message=j.message or None,
            canceled_for=j.canceled_for or None,
            canceled_code=cancelation_code(j.canceled_code) if j.canceled_code else None,
        ),
        container_spec=_container_spec(s, t.spec),
        system_details=_system_details(t.spec),
        assignment_details=pb2.AssignmentDetails(result_dataset_id=j.result_dataset_id or None),
    )


def dataset(s: st.State, ds: st.Dataset) -> pb2.Dataset:
    return pb2.Dataset(
        id=ds.id,
        name=ds.name,
        full_name=f"{ds.author}/{ds.name}",
        author_id=s.user_id,
        workspace_id=ds.workspace_id,
        created=timestamp(ds.created),
        committed=timestamp(ds.committed),
        description=ds.description,
    )


def dataset_file(ds: st.Dataset, path: str) -> pb2.DatasetFile:
    data = ds.files[path]
    return pb2.DatasetFile(
        path=path,
        size=len(data),
        updated=timestamp(ds.file_times.get(path)),
        digest=pb2.DatasetFile.Digest(
            algorithm=pb2.DatasetFile.ALGORITHM_TYPE_SHA256, value=hashlib.sha256(data).digest()
        ),
    )
