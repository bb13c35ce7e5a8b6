"""The Beaker backend: each run is one Beaker experiment, submitted with beaker-py.

Specs are built and checked offline (olmix.backends.beakerspec); the client
is made only to submit, look up or cancel, with beaker-py's own credential
lookup (BEAKER_TOKEN, BEAKER_ADDR, BEAKER_CONFIG, ~/.beaker/config.yml).
Before anything is written or submitted, `preflight` asks the service for
the workspace, every cluster and every secret the runs name: bad credentials
or an unknown name is one message, and nothing is submitted.

The plan reaches the task as a Beaker dataset. A plan names every file of
every leaf, so a swarm's plan is megabytes: more than an environment variable
or a command line holds (Beaker keeps specs small), while a dataset holds any
size and is mounted read-only where the task reads it (/olmix/plan/plan.json).
Each run gets its own dataset, made by the launch that submits the run: a
resumed launch lists the data store again and a run trains on its own
launch's listing (as on the other backends), and a committed dataset never
changes afterwards, so what a run read stays what its record points at.

Exactly once: the experiment is named `olmix-<token>` and its dataset
`olmix-<token>-plan-<plan digest>`, with the run's submission token. A launch
killed after the experiment was created finds it by name in the workspace
and adopts it. A create that timed out (or whose answer was lost) may still
be made by the service later, so such a run is never given a new token: the
launcher looks it up by name, and if it is not there yet submits it again
under the same name (`reuses_tokens`); Beaker keeps names unique, so of two
creations one is refused as a name in use. A dataset left uncommitted by an
interrupted upload is mounted by nothing and is made again.

A run's metrics come home through its result dataset: the task writes to
the result path (`--out`), Beaker keeps what is there as the job's result
dataset, and `fetch_results` downloads its metrics.json into the run's
folder, where `olmix results` and `olmix fit` read every backend's runs. The
copy is kept with the dataset's id and the file's size and digest as Beaker
lists them (metrics.fetched.json); a later look lists the file again and
downloads it only when that changed (a task restarted, a new job, a new
result).

Status reads the group's experiments in one listing (filtered by the group's
id, which every experiment's description carries), and asks for the latest
job only of the runs whose exit code or reason it needs (failed, cancelled
and waiting ones). Secrets are Beaker workspace secrets, named in the spec;
their values never pass through olmix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from olmix.backends import beakerspec as bs
from olmix.backends.base import Backend
from olmix.backends.types import BackendError, RunSpec, RunState, Status
from olmix.errors import ExtraMissing
from olmix.training.metrics import METRICS_FILE

IGNORED = ("slurm", "preemptible", "shared_filesystem")

# Every WorkloadStatus of beaker-py, as olmix sees it.
STATES: dict[str, RunState] = {
    "submitted": RunState.PENDING,
    "queued": RunState.PENDING,
    "ready_to_start": RunState.PENDING,
    "initializing": RunState.PENDING,
    "running": RunState.RUNNING,
    "stopping": RunState.RUNNING,
    "uploading_results": RunState.RUNNING,
    "succeeded": RunState.SUCCEEDED,
    "failed": RunState.FAILED,
    "canceled": RunState.CANCELLED,
}
# The runs whose latest job is read for a status: its exit code, why it was cancelled (by a user, or preempted),
# or why the scheduler has not started it.
NEEDS_JOB = {"failed", "canceled", "queued", "submitted", "ready_to_start"}
# Beside a metrics.json fetched from a result dataset: where it came from, so it is fetched again only when changed.
FETCHED_FILE = "metrics.fetched.json"


def _sha256(path: Path) -> str:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise BackendError(f"cannot read the run's plan {path}: {exc.strerror or exc}") from None


def _seconds(stamp: Any) -> float | None:
    """A protobuf Timestamp in seconds, None when unset."""
    if stamp is None or not (stamp.seconds or stamp.nanos):
        return None
    return float(stamp.seconds) + float(stamp.nanos) / 1e9


class BeakerBackend(Backend):
    name = "beaker"
    takes_max_parallel = False  # Beaker schedules the runs itself

    @classmethod
    def options_from_config(cls, config: Any, max_parallel: int | None = None) -> dict[str, Any]:
        return bs.settings_from_config(config)

    secrets_from_environment = False  # secrets are Beaker's, named in the spec; none is read from here
    reuses_tokens = True  # experiment names are unique in Beaker: a second create under one name is refused

    def __init__(self, **options: Any) -> None:
        try:
            self.settings = bs.Settings(**options)
        except TypeError as exc:
            raise BackendError(f"beaker backend options: {exc}") from None
        self._client: Any = None
        self._workspace: Any = None  # the workspace, once the service named it
        self._urls: dict[str, str] = {}

    # -- checking, offline --------------------------------------------------------------------------------

    def check(self, config: Any) -> list[str]:
        notes = []
        ignored = [key for key in IGNORED if key in config.model_fields_set]
        if ignored:
            notes.append(
                f"the beaker backend ignores {', '.join(ignored)} "
                "(preemption is beaker.min_runtime_s and beaker.auto_resume)"
            )
        if config.weka and not self.settings.weka:
            raise BackendError("weka: true asks for Weka, but beaker.weka names no bucket to mount")
        if self.settings.gpus > 1 and self.settings.nodes == 1:
            notes.append(
                f"gpus: {self.settings.gpus} requests {self.settings.gpus} GPUs, but the trainer command runs as one "
                "process (torchrun starts one process per GPU only when nodes > 1)"
            )
        if missing := self.settings.missing():
            notes.append(f"the beaker backend needs {', '.join(missing)}; a launch refuses to start without them")
        return notes

    def check_command(self, command: list[str]) -> None:
        """The task's image and place must be known; the program itself is the image's."""
        if missing := self.settings.missing():
            raise BackendError(
                f"the beaker backend needs {', '.join(missing)} set in the config; nothing was submitted"
            )

    def _build(self, spec: RunSpec, dataset: str | None = None) -> Any:
        import sys

        command = bs.task_command(
            spec.command,
            plan_file=str(spec.plan_file),
            run_dir=str(spec.run_dir),
            python=sys.executable,
            settings=self.settings,
        )
        return bs.build(
            group=spec.group,
            run=spec.run,
            token=spec.token,
            command=command,
            env=spec.env,
            secrets=spec.secrets,
            settings=self.settings,
            dataset=dataset,
        )

    def spec(self, spec: RunSpec, dataset: str | None = None) -> Any:
        """The checked BeakerExperimentSpec of one run."""
        built = self._build(spec, dataset)
        bs.check(built, spec.run)
        return built

    def describe(self, spec: RunSpec) -> str:
        """What a launch submits for this run: the experiment spec as YAML, with where it goes."""
        built = self._build(spec)
        head = [
            f"# beaker experiment {bs.experiment_name(spec.token)} in workspace {self.settings.workspace or '(none)'}",
            f"# its plan: {spec.plan_file}, uploaded as dataset {bs.dataset_name(spec.token)}-<its sha256, 12 digits> "
            f"and mounted at {bs.PLAN_MOUNT}",
        ]
        head += [f"# refused at launch: {problem}" for problem in bs.problems(built)]
        return "\n".join(head) + "\n" + bs.to_yaml(built)

    # -- the service ----------------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """beaker-py's and grpc's exceptions as one BackendError saying what was being done."""
        import grpc  # type: ignore[import-untyped]
        import requests
        from beaker import exceptions as bx

        try:
            yield
        except BackendError:
            raise
        except bx.BeakerConfigurationError as exc:
            raise BackendError(
                f"beaker credentials: {exc} (set BEAKER_TOKEN, or log in with `beaker account login`); {doing}"
            ) from None
        except bx.BeakerPermissionsError as exc:
            raise BackendError(f"Beaker refused the credentials: {exc}; {doing}") from None
        except bx.BeakerError as exc:
            raise BackendError(f"Beaker: {type(exc).__name__}: {exc}; {doing}") from None
        except grpc.RpcError as exc:  # beaker-py lets some through (UNAUTHENTICATED, for one)
            code, detail = getattr(exc, "code", None), getattr(exc, "details", None)
            if callable(code) and callable(detail):
                raise BackendError(f"Beaker answered {code().name}: {detail()}; {doing}") from None
            raise BackendError(f"Beaker's gRPC service failed: {exc}; {doing}") from None
        except NotImplementedError as exc:  # beaker-py's word for an UNIMPLEMENTED call
            raise BackendError(f"Beaker does not implement a call olmix made: {exc}; {doing}") from None
        except (requests.RequestException, OSError) as exc:
            raise BackendError(f"cannot reach Beaker: {type(exc).__name__}: {exc}; {doing}") from None

    def client(self, doing: str = "nothing was submitted") -> Any:
        if self._client is None:
            try:
                from beaker import Beaker
            except ImportError:
                raise ExtraMissing("the beaker backend needs beaker-py", "beaker") from None
            with self._errors(doing):
                self._client = Beaker.from_env(check_for_upgrades=False)
        return self._client

    def workspace(self, doing: str = "nothing was submitted") -> Any:
        """The workspace the runs are filed in, asked of the service once."""
        if self._workspace is None:
            from beaker import exceptions as bx

            if not self.settings.workspace:
                raise BackendError(f"the beaker backend needs workspace set in the config; {doing}")
            client = self.client()
            with self._errors(doing):
                try:
                    self._workspace = client.workspace.get(self.settings.workspace)
                except bx.BeakerNotFoundError:
                    raise BackendError(f"Beaker has no workspace {self.settings.workspace!r}; {doing}") from None
        return self._workspace

    def preflight(self, secrets: list[str]) -> None:
        """Ask the service for the workspace, clusters and secrets the runs need; raise BackendError if one is
        missing or the credentials are refused. Submits nothing."""
        from beaker import exceptions as bx

        done = "nothing was submitted"
        workspace = self.workspace()
        client = self.client()
        with self._errors(done):
            unknown = []
            for cluster in self.settings.clusters:
                try:
                    client.cluster.get(cluster)
                except bx.BeakerNotFoundError:
                    unknown.append(cluster)
            if unknown:
                raise BackendError(f"Beaker has no cluster {', '.join(map(repr, unknown))}; {done}")
            absent = []
            for name in secrets:
                secret = self.settings.secret_names.get(name, name)
                try:
                    client.secret.get(secret, workspace=workspace)
                except bx.BeakerNotFoundError:
                    absent.append(secret if secret == name else f"{secret} (for {name})")
            if absent:
                raise BackendError(
                    f"workspace {self.settings.workspace} has no secret {', '.join(absent)} "
                    f"(`beaker secret write NAME VALUE --workspace {self.settings.workspace}`); {done}"
                )

    def submit(self, spec: RunSpec) -> str:
        """Upload the run's plan as a dataset, then create its experiment; return the experiment's id."""
        from beaker import exceptions as bx

        built = self.spec(spec)  # checked before anything is sent
        client = self.client()
        workspace = self.workspace()
        with self._errors(f"while submitting run {spec.run}"):
            name = bs.dataset_name(spec.token, _sha256(spec.plan_file))
            try:
                dataset = client.dataset.create(name, spec.plan_file, workspace=workspace, strip_paths=True)
            except bx.BeakerDatasetConflict:  # an earlier attempt under this token made it, for this same plan
                dataset = client.dataset.get(f"{client.user_name}/{name}")
                if not dataset.HasField("committed"):  # its upload was interrupted: nothing mounts it
                    dataset = client.dataset.create(
                        name, spec.plan_file, workspace=workspace, strip_paths=True, force=True
                    )
            built.tasks[0].datasets[0].source.beaker = dataset.id
            bs.check(built, spec.run)
            try:
                workload = client.experiment.create(
                    spec=built, name=bs.experiment_name(spec.token), workspace=workspace
                )
            except bx.BeakerExperimentConflict:
                found = self.find(spec)
                if found is None:
                    raise
                return found
            job_id = str(workload.experiment.id)
            self._urls[job_id] = str(client.workload.url(workload))
            return job_id

    def url(self, job_id: str) -> str | None:
        """The experiment's page on Beaker."""
        if job_id in self._urls:
            return self._urls[job_id]
        address = self._client.config.agent_address if self._client is not None else None
        return f"{address}/ex/{job_id}" if address else None

    def _org(self) -> Any:
        """The workspace's organization, which beaker-py's listings otherwise look up by name on every call."""
        workspace = self.workspace()
        return workspace.owner_org if workspace.HasField("owner_org") and workspace.owner_org.id else None

    def _list(self, text: str) -> list[Any]:
        """The experiments of the workspace whose name or description holds `text`: one paged listing."""
        from beaker import BeakerWorkloadType

        client = self.client()
        return list(
            client.workload.list(
                org=self._org(),
                workspace=self.workspace(),
                name_or_description=text,
                workload_type=BeakerWorkloadType.experiment,
            )
        )

    def _latest_job(self, workload: Any) -> Any:
        """The latest job of the experiment's task, None before there is one: one call."""
        from beaker import BeakerSortOrder

        tasks = workload.experiment.tasks
        if not tasks:
            return None
        jobs = self.client().job.list(task=tasks[0], org=self._org(), sort_order=BeakerSortOrder.descending, limit=1)
        return next(iter(jobs), None)

    def find(self, spec: RunSpec) -> str | None:
        name = bs.experiment_name(spec.token)
        with self._errors("nothing more was submitted"):
            for workload in self._list(name):
                if workload.experiment.name == name:
                    self._urls[str(workload.experiment.id)] = str(self.client().workload.url(workload))
                    return str(workload.experiment.id)
        return None

    def _status(self, workload: Any) -> Status:
        from beaker import BeakerWorkloadStatus

        client = self.client()
        try:
            word = BeakerWorkloadStatus(workload.status).name
        except ValueError:
            word = f"status {workload.status}"
        state = STATES.get(word)
        experiment = workload.experiment
        url = str(client.workload.url(workload))
        started = _seconds(experiment.created)
        finished = _seconds(experiment.canceled)
        exit_code: int | None = 0 if state is RunState.SUCCEEDED else None
        reason = experiment.canceled_for or ""
        if word in NEEDS_JOB:
            job = self._latest_job(workload)
            if job is not None:
                status = job.status
                if word == "failed" and status.HasField("exited"):
                    exit_code = int(status.exit_code)
                reason = status.failed_scheduling_message or status.message or status.canceled_for or reason
                started = _seconds(status.started) or started
                finished = _seconds(status.exited) or _seconds(status.finalized) or finished
        detail = f"beaker {word}" + (f": {reason}" if reason else "") + f" ({url})"
        if state is None:
            return Status(RunState.FAILED, exit_code, started, finished, detail + " (unknown state)")
        return Status(state, exit_code, started, finished if state.finished else None, detail)

    def statuses(self, jobs: list[tuple[str, Path]]) -> list[Status]:
        """Each run's status: one listing of the group's experiments, then the latest job where it tells more."""
        from beaker import exceptions as bx

        if not jobs:
            return []
        groups = sorted({run_dir.parent.name for _, run_dir in jobs})
        self.client("no status was read")
        self.workspace("no status was read")
        with self._errors("no status was read"):
            found: dict[str, Any] = {}
            for group in groups:
                for workload in self._list(bs.description(group, "")):
                    found[str(workload.experiment.id)] = workload
            out = []
            for job_id, _ in jobs:
                if job_id not in found:  # its description was changed on Beaker: ask for it by id
                    try:
                        found[job_id] = self.client().workload.get(job_id)
                    except bx.BeakerNotFoundError:
                        out.append(Status(RunState.FAILED, detail=f"Beaker does not know experiment {job_id}"))
                        continue
                out.append(self._status(found[job_id]))
            return out

    def status(self, job_id: str, run_dir: Path) -> Status:
        return self.statuses([(job_id, run_dir)])[0]

    def cancel(self, job_id: str, run_dir: Path) -> None:
        self.cancel_many([(job_id, run_dir)])

    def cancel_many(self, jobs: list[tuple[str, Path]]) -> None:
        """One call stops them all."""
        job_ids = [job_id for job_id, _ in jobs]
        if job_ids:
            client = self.client("nothing was cancelled")
            with self._errors("nothing was cancelled"):
                client.workload.cancel(*job_ids)

    # -- results ----------------------------------------------------------------------------------------------

    def _result_file(self, workload: Any) -> tuple[Any, Any] | None:
        """(result dataset, metrics.json's file entry) of the experiment's latest job that has one: with replicas,
        one job each, and rank 0's result holds the metrics."""
        from beaker import BeakerSortOrder

        client = self.client()
        tasks = workload.experiment.tasks
        if not tasks:
            return None
        jobs = client.job.list(
            task=tasks[0], org=self._org(), sort_order=BeakerSortOrder.descending, limit=max(1, self.settings.nodes)
        )
        for job in jobs:
            if not job.assignment_details.HasField("result_dataset_id"):
                continue
            dataset = client.job.get_results(job)
            for info in client.dataset.list_files(dataset, prefix=""):
                if info.path == METRICS_FILE:
                    return dataset, info
        return None

    def fetch_results(self, run_dir: Path, job_id: str) -> str | None:
        """Download the run's metrics.json from its result dataset into `run_dir`, unless the copy there is of
        the same file (dataset id, size and digest as Beaker lists them); a note when the run has none."""
        from olmix import records
        from olmix.fileio import write_atomic, write_json_atomic

        metrics, fetched = run_dir / METRICS_FILE, run_dir / FETCHED_FILE
        if metrics.is_file() and not fetched.is_file():
            return None  # written into the folder some other way: not Beaker's copy to replace
        doing = "no result was fetched"
        client = self.client(doing)  # beaker-py, or ExtraMissing
        self.workspace(doing)
        from beaker import BeakerWorkloadStatus
        from beaker import exceptions as bx

        with self._errors(doing):
            try:
                workload = client.workload.get(job_id)
            except bx.BeakerNotFoundError:
                return f"Beaker does not know experiment {job_id}; no metrics fetched"
            try:
                word = BeakerWorkloadStatus(workload.status).name
            except ValueError:
                word = f"status {workload.status}"
            state = STATES.get(word)
            if state is None or not state.finished:
                return None if metrics.is_file() else f"beaker {word}: no metrics yet"
            found = self._result_file(workload)
            if found is None:
                if metrics.is_file():
                    return f"beaker {word}: its result has no {METRICS_FILE} now; showing the copy fetched before"
                return f"beaker {word}, but its result dataset has no {METRICS_FILE}"
            dataset, info = found
            source = {
                "experiment": job_id,
                "dataset": str(dataset.id),
                "path": str(info.path),
                "size": int(info.size),
                "digest": info.digest.value.hex() if info.HasField("digest") else None,
            }
            if metrics.is_file() and _fetched(fetched) == source:
                return None
            limit = records.max_record_bytes("metrics file")
            if info.size > limit:
                return (
                    f"its result's {METRICS_FILE} is {info.size:,} bytes, more than the {limit:,} olmix reads "
                    f"(set {records.MAX_RECORD_ENV}=N); not fetched"
                )
            data = b"".join(client.dataset.stream_file(dataset, info.path))  # beaker-py checks the digest
        write_atomic(metrics, data)
        write_json_atomic(fetched, source)  # after the file: a copy cut short is fetched again
        return None


def _fetched(path: Path) -> Any:
    """What metrics.fetched.json says; None when it cannot be read (the file is then fetched again)."""
    import json

    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
