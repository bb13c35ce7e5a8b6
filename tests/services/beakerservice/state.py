"""The stand-in's memory: organization, user, workspaces, clusters, secrets, experiments, jobs and datasets.

Every change and every read happens under one lock (`State.lock`), taken by the gRPC servicer, the REST handler
and the test controls alike. Records are plain dataclasses; `pb.py` turns them into beaker-py's protobuf
messages. A `CallError` carries the HTTP status the real service answers with; the gRPC side maps it to the
matching status code.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# The workload states a test can put a job in, by beaker-py's BeakerWorkloadStatus names.
JOB_STATES = (
    "submitted",
    "queued",
    "initializing",
    "running",
    "stopping",
    "uploading_results",
    "canceled",
    "succeeded",
    "failed",
    "ready_to_start",
)
FINAL_STATES = ("canceled", "succeeded", "failed")


class CallError(Exception):
    """A refusal as the service sends it: an HTTP status (mapped to a gRPC code on that side) and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def new_id() -> str:
    """A 26-character upper-case id like Beaker's ULIDs (never contains '/', so beaker-py treats it as an id)."""
    return "01" + secrets.token_hex(12).upper()


@dataclass
class Workspace:
    id: str
    full_name: str
    created: float


@dataclass
class Cluster:
    id: str
    full_name: str
    created: float


@dataclass
class Secret:
    workspace_id: str
    name: str
    created: float


@dataclass
class Job:
    id: str
    task_id: str
    created: float
    state: str = "queued"
    exit_code: int | None = None
    message: str = ""
    started: float | None = None
    exited: float | None = None
    finalized: float | None = None
    canceled: float | None = None
    canceled_for: str = ""
    canceled_code: str = ""
    result_dataset_id: str = ""


@dataclass
class Task:
    id: str
    name: str
    spec: dict[str, Any]
    created: float
    jobs: list[Job] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.jobs[-1].state if self.jobs else "submitted"


@dataclass
class Experiment:
    """An experiment as created: `spec` is the JSON body the client posted, untouched."""

    id: str
    name: str
    workspace_id: str
    workspace: str
    author: str
    spec: dict[str, Any]
    created: float
    tasks: list[Task] = field(default_factory=list)
    canceled: float | None = None

    @property
    def state(self) -> str:
        """The workload's state, from its tasks' latest jobs (Beaker's rules, simplified)."""
        states = [task.state for task in self.tasks]
        if not states:
            return "submitted"
        for state in ("failed", "canceled"):
            if state in states and all(s in FINAL_STATES for s in states):
                return state
        if all(s == "succeeded" for s in states):
            return "succeeded"
        for state in ("running", "stopping", "uploading_results", "initializing", "ready_to_start", "queued"):
            if state in states:
                return state
        return "submitted"


@dataclass
class Dataset:
    id: str
    name: str
    workspace_id: str
    author: str
    description: str
    created: float
    storage_id: str
    storage_token: str
    files: dict[str, bytes] = field(default_factory=dict)
    file_times: dict[str, float] = field(default_factory=dict)
    committed: float | None = None


@dataclass
class Upload:
    id: str
    dataset_storage_id: str
    data: bytearray = field(default_factory=bytearray)
    length: int | None = None


class State:
    """Everything the stand-in knows; every method expects `lock` to be held by the caller."""

    def __init__(self, *, org: str, user: str) -> None:
        self.lock = threading.RLock()
        self.org_id = new_id()
        self.org = org
        self.user_id = new_id()
        self.user = user
        self.workspaces: dict[str, Workspace] = {}
        self.clusters: dict[str, Cluster] = {}
        self.secrets: dict[tuple[str, str], Secret] = {}
        self.experiments: dict[str, Experiment] = {}
        self.datasets: dict[str, Dataset] = {}
        self.uploads: dict[str, Upload] = {}
        self.jobs: dict[str, tuple[Experiment, Task, Job]] = {}

    # -- lookups -------------------------------------------------------------------------------------------

    def workspace(self, id_or_name: str) -> Workspace:
        for ws in self.workspaces.values():
            if id_or_name in (ws.id, ws.full_name):
                return ws
        raise CallError(404, f"workspace {id_or_name!r} not found")

    def workspace_by_name(self, owner: str, name: str) -> Workspace:
        return self.workspace(f"{owner}/{name}")

    def cluster(self, id_or_name: str) -> Cluster:
        for cluster in self.clusters.values():
            if id_or_name in (cluster.id, cluster.full_name):
                return cluster
        raise CallError(404, f"cluster {id_or_name!r} not found")

    def secret(self, workspace_id: str, name: str) -> Secret:
        ws = self.workspace(workspace_id)
        try:
            return self.secrets[(ws.id, name)]
        except KeyError:
            raise CallError(404, f"secret {name!r} not found in workspace {ws.full_name!r}") from None

    def experiment(self, id_or_name: str) -> Experiment:
        """By id, by `author/name`, or by bare name (a test control convenience; the wire never sends one)."""
        if id_or_name in self.experiments:
            return self.experiments[id_or_name]
        author, _, name = id_or_name.rpartition("/")
        for exp in self.experiments.values():
            if exp.name == name and author in ("", exp.author):
                return exp
        raise CallError(404, f"workload {id_or_name!r} not found")

    def dataset(self, id_or_name: str) -> Dataset:
        if id_or_name in self.datasets:
            return self.datasets[id_or_name]
        author, _, name = id_or_name.rpartition("/")
        for ds in self.datasets.values():
            if ds.name == name and author in ("", ds.author):
                return ds
        raise CallError(404, f"dataset {id_or_name!r} not found")

    def dataset_by_storage(self, storage_id: str, token: str) -> Dataset:
        for ds in self.datasets.values():
            if ds.storage_id == storage_id:
                if token != ds.storage_token:
                    raise CallError(403, "invalid storage token")
                if ds.committed is not None:
                    raise CallError(403, f"dataset {ds.id} is committed")
                return ds
        raise CallError(404, f"dataset storage {storage_id!r} not found")

    # -- changes -------------------------------------------------------------------------------------------

    def add_workspace(self, full_name: str) -> Workspace:
        _check_full_name(full_name)
        for ws in self.workspaces.values():
            if ws.full_name == full_name:
                return ws
        ws = Workspace(id=new_id(), full_name=full_name, created=time.time())
        self.workspaces[ws.id] = ws
        return ws

    def add_cluster(self, full_name: str) -> Cluster:
        _check_full_name(full_name)
        for cluster in self.clusters.values():
            if cluster.full_name == full_name:
                return cluster
        cluster = Cluster(id=new_id(), full_name=full_name, created=time.time())
        self.clusters[cluster.id] = cluster
        return cluster

    def add_secret(self, workspace: str, name: str) -> Secret:
        ws = self.workspace(workspace)
        secret = self.secrets.get((ws.id, name)) or Secret(workspace_id=ws.id, name=name, created=time.time())
        self.secrets[(ws.id, name)] = secret
        return secret

    def create_experiment(self, workspace_id: str, name: str | None, spec: dict[str, Any]) -> Experiment:
        ws = self.workspace(workspace_id)
        tasks_spec = spec.get("tasks")
        if spec.get("version") not in ("v2", "v2-alpha") or not isinstance(tasks_spec, list) or not tasks_spec:
            raise CallError(400, "invalid experiment spec: version v2 with at least one task required")
        exp_name = name or f"exp-{secrets.token_hex(4)}"
        if any(e.name == exp_name and e.author == self.user for e in self.experiments.values()):
            raise CallError(409, f"experiment name {exp_name!r} already in use")
        task_names: set[str] = set()
        for i, task_spec in enumerate(tasks_spec):
            self._check_task(ws, i, task_spec, task_names)
        now = time.time()
        exp = Experiment(
            id=new_id(),
            name=exp_name,
            workspace_id=ws.id,
            workspace=ws.full_name,
            author=self.user,
            spec=copy.deepcopy(spec),
            created=now,
        )
        for task_spec in tasks_spec:
            task = Task(
                id=new_id(), name=str(task_spec.get("name") or "main"), spec=copy.deepcopy(task_spec), created=now
            )
            job = Job(id=new_id(), task_id=task.id, created=now)
            task.jobs.append(job)
            exp.tasks.append(task)
            self.jobs[job.id] = (exp, task, job)
        self.experiments[exp.id] = exp
        return exp

    def _check_task(self, ws: Workspace, index: int, task: Any, names: set[str]) -> None:
        where = f"tasks[{index}]"
        if not isinstance(task, dict):
            raise CallError(400, f"invalid experiment spec: {where} is not an object")
        image = task.get("image")
        if not isinstance(image, dict) or not (image.get("beaker") or image.get("docker")):
            raise CallError(400, f"invalid experiment spec: {where}.image needs 'beaker' or 'docker'")
        name = str(task.get("name") or "main")
        if name in names:
            raise CallError(400, f"invalid experiment spec: task name {name!r} is used twice")
        names.add(name)
        for cluster in (task.get("constraints") or {}).get("cluster") or []:
            self.cluster(str(cluster))
        for env in task.get("envVars") or []:
            if isinstance(env, dict) and env.get("secret"):
                self.secret(ws.id, str(env["secret"]))
        for mount in task.get("datasets") or []:
            source = mount.get("source") if isinstance(mount, dict) else None
            if isinstance(source, dict) and source.get("beaker"):
                self.dataset(str(source["beaker"]))
            if isinstance(source, dict) and source.get("secret"):
                self.secret(ws.id, str(source["secret"]))

    def set_job_state(
        self,
        experiment: str,
        state: str,
        *,
        exit_code: int | None = None,
        reason: str | None = None,
        task: str | None = None,
        canceled_code: str | None = None,
    ) -> None:
        if state not in JOB_STATES:
            raise ValueError(f"unknown state {state!r}; one of {', '.join(JOB_STATES)}")
        exp = self.experiment(experiment)
        tasks = [t for t in exp.tasks if task is None or task in (t.id, t.name)]
        if not tasks:
            raise ValueError(f"experiment {exp.name!r} has no task {task!r}")
        now = time.time()
        for t in tasks:
            job = t.jobs[-1]
            if job.finalized is not None:
                # A finished job stays finished: a new state means Beaker started another job (a retry).
                job = Job(id=new_id(), task_id=t.id, created=now)
                t.jobs.append(job)
                self.jobs[job.id] = (exp, t, job)
            if canceled_code is not None:
                job.canceled_code = canceled_code
            _move(job, state, now, exit_code=exit_code, reason=reason)
            self._commit_result(job)

    def write_result(self, experiment: str, files: dict[str, bytes], *, task: str | None = None) -> str:
        exp = self.experiment(experiment)
        tasks = [t for t in exp.tasks if task is None or task in (t.id, t.name)]
        if not tasks:
            raise ValueError(f"experiment {exp.name!r} has no task {task!r}")
        now = time.time()
        dataset_id = ""
        for t in tasks:
            job = t.jobs[-1]
            if not job.result_dataset_id:
                # Beaker names a result dataset after nothing a user chose; this one after its job
                ds = self.create_dataset(f"result-{job.id}", exp.workspace_id, f"results of job {job.id}")
                job.result_dataset_id = ds.id
            ds = self.datasets[job.result_dataset_id]
            if ds.committed is not None:
                raise ValueError(f"job {job.id} has finished: its result dataset is committed")
            for path, data in files.items():
                ds.files[path] = bytes(data)
                ds.file_times[path] = now
            if job.finalized is not None:  # written after the job ended: uploaded with its end
                ds.committed = now
            dataset_id = ds.id
        return dataset_id

    def cancel(self, workload_id: str) -> Experiment:
        exp = self.experiment(workload_id)
        now = time.time()
        for task in exp.tasks:
            job = task.jobs[-1]
            if job.finalized is None:
                _move(job, "canceled", now, exit_code=None, reason="canceled by user")
                job.canceled_code = "manual"
                self._commit_result(job)
        if exp.canceled is None:
            exp.canceled = now
        return exp

    def _commit_result(self, job: Job) -> None:
        """A finished job's result dataset is committed: what its task wrote is final."""
        ds = self.datasets.get(job.result_dataset_id)
        if job.finalized is not None and ds is not None and ds.committed is None:
            ds.committed = job.finalized

    def create_dataset(self, name: str, workspace_id: str, description: str) -> Dataset:
        ws = self.workspace(workspace_id)
        if any(d.name == name and d.author == self.user for d in self.datasets.values()):
            raise CallError(409, f"dataset name {name!r} already in use")
        ds = Dataset(
            id=new_id(),
            name=name,
            workspace_id=ws.id,
            author=self.user,
            description=description,
            created=time.time(),
            storage_id=new_id(),
            storage_token=secrets.token_urlsafe(24),
        )
        self.datasets[ds.id] = ds
        return ds


def _move(job: Job, state: str, now: float, *, exit_code: int | None, reason: str | None) -> None:
    job.state = state
    if state in ("running", "stopping", "uploading_results") and job.started is None:
        job.started = now
    if state in FINAL_STATES:
        job.finalized = now
        if state == "canceled":
            job.canceled = now
            job.canceled_for = reason or ""
            job.canceled_code = job.canceled_code or "manual"
        if job.started is not None or exit_code is not None:
            job.exited = now
        if exit_code is None and state in ("succeeded", "failed"):
            exit_code = 0 if state == "succeeded" else 1
    job.exit_code = exit_code if exit_code is not None else job.exit_code
    job.message = reason or ""


def _check_full_name(full_name: str) -> None:
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name:
        raise ValueError(f"expected 'owner/name', got {full_name!r}")
