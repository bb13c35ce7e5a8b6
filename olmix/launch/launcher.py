"""Submit the runs of a plan through a backend, exactly once each, and keep the group's record.

A launch is prepared, then submitted. `prepare` checks everything a launch
needs (secrets set, names that are safe folder names, a trainer command
whose placeholders fill in and whose program the backend can start, a
resumed group that matches) and writes nothing, so a bad launch leaves no
trace and a confirmation shows exactly what each run will execute.
`submit` then writes the group's plan and record and submits.

Before a run is submitted it is marked `submitting` with a fresh token;
after, `submitted` with its job id. A launch killed at any point is resumed
by launching the group again: `submitted` runs are skipped, and a
`submitting` run is first looked up by its token, so it is adopted if it
started and submitted if it did not. Where the backend submits many runs
in one call (`submit_many`: a Slurm job array), the runs left to submit go
together: all are marked `submitting` in one change, run i with the token
`<T>.<i>` of one fresh token T, then submitted by one call, then recorded;
each is found again by its own token.

A cancel wins against a submission in flight: `cancel` marks every run it
stops `cancel_requested_at` under the record lock, on the same read that
tells it which runs are submitted. A run marked before it is submitted is
never submitted (marking a run `submitting` checks for the mark under the
lock), and one submitted while the cancel came is cancelled by the
submitter as soon as its job id is known (recording it submitted checks
again); the record notes `cancelled_at` for each. One launch per group runs at a time
(the group's launch lock), and every change to the record, by a launch,
`status` or `cancel`, is made on a fresh read under the record lock
(olmix.launch.record). Together: every run is submitted exactly once.

A submission that fails is not taken as a "no": a timeout, or an answer lost
on the way back, may follow a scheduler that took the run. So after any
failure the run is looked up by its token at once, and adopted if it is
there; if not, it stays `submitting`, and the next launch looks it up again
before submitting anything. A backend whose names are unique on the service
(`reuses_tokens`: Beaker) submits such a run again with the same token, so
a creation that reaches the service late is refused as a name in use rather
than made twice.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix import runpaths
from olmix.backends import Backend, BackendError, RunSpec, RunState, Status
from olmix.backends.secrets import check_secrets
from olmix.errors import OlmixError
from olmix.fileio import make_dir, write_json_atomic
from olmix.launch.record import RECORD, RecordError, read_record, record_lock, updating, write_record

if TYPE_CHECKING:
    from olmix_generated.launch_record import LaunchRecord

__all__ = ["RECORD", "RecordError", "read_record"]

DEFAULT_COMMAND = ["{python}", "-m", "olmix.train", "--plan", "{plan}", "--out", "{run_dir}"]
LAUNCH_LOCK = ".lock"
SETTINGS = ("trainer_command", "env", "secrets")


class LaunchError(OlmixError):
    """A launch cannot proceed; nothing (more) was submitted."""


@dataclass(frozen=True)
class Submitted:
    run: str
    job_id: str  # "": never submitted, a cancel came first
    new: bool  # False: it had been submitted before (resumed group)
    cancelled: bool = False  # a cancel came before or while it was submitted; it was stopped (or never started)


@dataclass(frozen=True)
class Cancelled:
    """What `cancel` did: runs stopped now, and runs not yet submitted that will never be."""

    cancelled: list[str]
    not_submitted: list[str]


@dataclass(frozen=True)
class RunLaunch:
    """One run as it will be submitted: its folder, its plan and the exact command."""

    name: str
    run_dir: Path
    plan_file: Path
    command: list[str]


@dataclass(frozen=True)
class Change:
    setting: str
    old: Any
    new: Any


@dataclass(frozen=True)
class LaunchRequest:
    """A checked launch: what `submit` will write and submit. Nothing is written to make one."""

    plan: dict[str, Any]
    config_path: Path
    runs_dir: Path
    group_dir: Path
    backend_options: dict[str, Any]
    trainer_command: list[str]
    env: dict[str, str]
    secrets: list[str]
    runs: list[RunLaunch]
    resumed: bool = False  # the group has a record already
    retry: bool = False  # failed and cancelled runs start a new attempt, submitted with the runs left
    changes: list[Change] = field(default_factory=list)  # settings a resume changes, against the record
    command_kept: bool = False  # a resume without a new command keeps the recorded one

    @property
    def group(self) -> str:
        return str(self.plan["group"])


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(path.parent), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@contextmanager
def launch_lock(group_dir: Path) -> Iterator[None]:
    """One launch per group at a time (status and cancel do not take it)."""
    make_dir(group_dir)
    with open(group_dir / LAUNCH_LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LaunchError(f"another olmix process is launching group {group_dir.name}") from None
        yield


def render_command(template: Sequence[str], *, plan: Path, run_dir: Path, run: str) -> list[str]:
    values = {"python": sys.executable, "plan": str(plan), "run_dir": str(run_dir), "run": run}
    try:
        return [part.format(**values) for part in template]
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise LaunchError(
            f"trainer command {list(template)!r}: bad placeholder {exc}; use {{python}}, {{plan}}, {{run_dir}}, "
            "{run} (write {{ and }} for literal braces); nothing was submitted"
        ) from None


def run_launches(group_dir: Path, names: Sequence[str], template: Sequence[str]) -> list[RunLaunch]:
    """Each run's folder, plan file and command: checked names, filled-in placeholders."""
    if not template:
        raise LaunchError("the trainer command is empty; nothing was submitted")
    out = []
    for name in names:
        folder = runpaths.run_dir(group_dir, name)
        plan_file = folder / "plan.json"
        out.append(
            RunLaunch(name, folder, plan_file, render_command(template, plan=plan_file, run_dir=folder, run=name))
        )
    return out


@dataclass(frozen=True)
class RunSettings:
    """How every run of a group is run, and where each setting came from (for the confirmation)."""

    configs: list[Any]  # each run's validated config
    config_path: Path
    command: list[str]
    command_from: str  # "from --trainer-command", "from the config <path>", "olmix's default"
    env: dict[str, str]
    secrets: list[str]
    env_from: str


def run_settings(plan: Any, configs: Sequence[Any], trainer_command: str | None) -> RunSettings:
    """The trainer command, environment and secrets the runs of `plan` share, from their validated configs (the
    ones the plan was built from, in its order) and the flag."""
    import shlex

    paths = [Path(r.config.path) for r in plan.runs if r.config is not None]
    configs = list(configs)
    first = configs[0]
    for path, other in zip(paths[1:], configs[1:], strict=True):
        for key in (*SETTINGS, "slurm", "beaker", "nodes"):
            if getattr(other, key) != getattr(first, key):
                raise LaunchError(f"{path}: {key} differs from {paths[0]}'s; the runs of one group share it")
    where = str(paths[0]) if len(paths) == 1 else f"{paths[0]} and the group's other configs"
    if trainer_command is not None:
        try:
            command = shlex.split(trainer_command)
        except ValueError as exc:
            raise LaunchError(f"--trainer-command: {exc}; nothing was submitted") from None
        command_from = "from --trainer-command"
    elif first.trainer_command:
        command, command_from = list(first.trainer_command), f"from the config {where}"
    else:
        command, command_from = list(DEFAULT_COMMAND), "olmix's default"
    return RunSettings(
        configs,
        paths[0],
        command,
        command_from,
        dict(first.env or {}),
        list(first.secrets or []),
        f"from the config {where}",
    )


def missing_secrets(secrets: list[str]) -> list[str]:
    return [name for name in secrets if name not in os.environ]


def _check_secrets(secrets: list[str], backend: Backend) -> None:
    """Secrets passed from this environment must be set here (a backend whose secrets are its own says so)."""
    if not backend.secrets_from_environment:
        return
    if absent := missing_secrets(secrets):
        raise LaunchError(f"secret environment variable(s) not set: {', '.join(absent)}; nothing was submitted")
    check_secrets(secrets)


def _settings_of(record: LaunchRecord) -> dict[str, Any]:
    return {"trainer_command": list(record.trainer_command), "env": dict(record.env), "secrets": list(record.secrets)}


def _check_resume(record: LaunchRecord, plan: dict[str, Any], backend: Backend) -> None:
    config = plan["config"]
    if (record.config.sha256, list(record.config.overrides)) != (config["sha256"], config.get("overrides", [])):
        raise LaunchError(
            f"group {record.group} was launched from {record.config.path} with different content or "
            f"overrides (sha256 {record.config.sha256[:12]}…); launch the changed config as a new group"
        )
    if record.backend != backend.name:
        raise LaunchError(
            f"group {record.group} was launched on backend '{record.backend}', not '{backend.name}': its runs stay "
            f"there (`olmix launch retry --group {record.group}` submits its failed ones again on {record.backend}); "
            f"to run these configs on {backend.name}, launch them as a new group (any --set makes one): "
            + moved_command(record, backend.name)
        )
    if [r.name for r in record.runs] != [r["name"] for r in plan["runs"]]:
        raise LaunchError(f"group {record.group}: the record's runs are not the plan's runs")


def moved_command(record: LaunchRecord, backend: str) -> str:
    """The command that launches a group's configs, with its overrides, on `backend` as a new group: a
    description naming the backend is one more override, so the group id differs and nothing else does."""
    import shlex

    paths = record.config.path.split(", ")  # several configs are recorded as their paths joined so
    sets = [*record.config.overrides, f"description=launched on {backend} (was group {record.group})"]
    words = ["olmix", "launch", "run", *paths, "--backend", backend, *(w for o in sets for w in ("--set", o))]
    return shlex.join(words)


def prepare(
    plan: dict[str, Any],
    config_path: Path,
    backend: Backend,
    runs_dir: Path,
    *,
    options: dict[str, Any] | None = None,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
    secrets: list[str] | None = None,
    group: str | None = None,
    default_command: list[str] | None = None,
    offline: bool = False,
    retry: bool = False,
) -> LaunchRequest:
    """Check a launch of `plan` (as a resume of `group`, if given) and say exactly what it would do.

    `command` is the trainer command asked for; without it a new group runs `default_command` (else
    olmix's default) and a resumed group keeps its recorded command. Writes nothing, submits nothing.
    `offline` (a dry run) leaves out what asks the world: the secrets' values, the program's presence and
    the service's preflight.
    """
    if group is not None and group != plan["group"]:
        raise LaunchError(
            f"group {group} is not the group of these configs: they plan as {plan['group']} "
            "(a changed config or different --set overrides make a new group)"
        )
    secrets = list(secrets or [])
    if not offline:
        _check_secrets(secrets, backend)
    root = runs_dir.resolve()
    group_dir = runpaths.group_dir(root, str(plan["group"]))
    record = read_record(group_dir) if (group_dir / RECORD).exists() else None
    kept = command is None and record is not None
    if record is not None and command is None:
        command = list(record.trainer_command)
    template = list(command or default_command or DEFAULT_COMMAND)
    runs = run_launches(group_dir, [r["name"] for r in plan["runs"]], template)
    if not offline:
        for program in sorted({run.command[0] for run in runs}):
            backend.check_command([program])
        backend.check_trainer(runs[0].command)  # every run's command is the one template filled in
        backend.preflight(secrets)  # a service asked, before anything is written, whether it will take these runs
    request = LaunchRequest(
        plan, config_path, root, group_dir, dict(options or {}), template, dict(env or {}), secrets, runs, retry=retry
    )
    if record is None:
        if retry:
            raise LaunchError(
                f"group {plan['group']} has not been launched under {root}, so it has no failed run to retry; "
                "launch it without --retry-failed"
            )
        return request
    _check_resume(record, plan, backend)
    old = _settings_of(record)
    new = {"trainer_command": template, "env": request.env, "secrets": secrets}
    changes = [Change(key, old[key], new[key]) for key in SETTINGS if old[key] != new[key]]
    return dataclasses.replace(request, resumed=True, changes=changes, command_kept=kept)


def retry_request(group_dir: Path, backend: Backend) -> LaunchRequest:
    """A checked launch of a group's own plan (`plan.json` beside its record) that retries its failed and
    cancelled runs with the recorded settings, and submits any run not yet submitted."""
    from olmix.planning.planfile import plan_data, read_plan

    record = read_record(group_dir)
    plan = plan_data(read_plan(runpaths.inside(group_dir, group_dir / record.plan_file)))
    return prepare(
        plan,
        Path(record.config.path),
        backend,
        group_dir.parent,
        options=dict(record.backend_options),
        env=dict(record.env),
        secrets=list(record.secrets),
        retry=True,
    )


def _new_record(request: LaunchRequest, backend: Backend) -> LaunchRecord:
    from olmix_generated.launch_record import LaunchRecord

    from olmix import __version__

    now = time.time()
    return LaunchRecord.model_validate(
        {
            "record_version": 1,
            "group": request.group,
            # what identifies the group's config; the plan file beside the record keeps the rest
            "config": {k: v for k, v in request.plan["config"].items() if k in ("path", "sha256", "overrides")},
            "git_commit": git_commit(request.config_path),
            "olmix_version": __version__,
            "backend": backend.name,
            "backend_options": request.backend_options,
            "trainer_command": request.trainer_command,
            "env": request.env,
            "secrets": request.secrets,  # names only
            "plan_file": "plan.json",
            "created_at": now,
            "updated_at": now,
            "changes": [],
            "runs": [
                {
                    "name": r.name,
                    "state": "planned",
                    "token": None,
                    "job_id": None,
                    "submitted_at": None,
                    "status": None,
                }
                for r in request.runs
            ],
        }
    )


def _prepare_group(request: LaunchRequest, backend: Backend) -> None:
    """Under the record lock: write a new group's plans and record, or bring a resumed group's settings up to date."""
    from olmix_generated.launch_record import Change as RecordChange

    group_dir = request.group_dir
    with record_lock(group_dir):
        if not (group_dir / RECORD).exists():
            write_json_atomic(runpaths.inside(request.runs_dir, group_dir / "plan.json"), request.plan)
            write_record(group_dir, _new_record(request, backend))
            return
    with updating(group_dir) as record:
        _check_resume(record, request.plan, backend)
        old = _settings_of(record)
        new = {"trainer_command": request.trainer_command, "env": request.env, "secrets": request.secrets}
        now = time.time()
        for key in SETTINGS:
            if old[key] != new[key]:
                record.changes.append(RecordChange(at=now, setting=key, old=old[key], new=new[key]))  # type: ignore[arg-type]
        record.trainer_command = request.trainer_command
        record.env = request.env
        record.secrets = request.secrets


def submit(
    request: LaunchRequest, backend: Backend, on_submit: Callable[[Submitted], None] = lambda s: None
) -> list[Submitted]:
    """Write the group's plan and record (or resume it) and submit every run not yet submitted."""
    _check_secrets(request.secrets, backend)
    group_dir = request.group_dir
    runpaths.inside(request.runs_dir, group_dir)
    make_dir(request.runs_dir)
    with launch_lock(group_dir):
        runpaths.inside(request.runs_dir, group_dir)  # the folder just made (or found) is no symlink out
        _prepare_group(request, backend)
        if request.retry:
            _new_attempts(group_dir, backend)
        entries = {e.name: e for e in read_record(group_dir).runs}  # this process alone submits (launch lock)
        done: dict[str, Submitted] = {}
        for run in request.runs:
            if (entry := entries[run.name]).state == "submitted":
                assert entry.job_id is not None  # launchrecord's rules
                done[run.name] = Submitted(run.name, entry.job_id, new=False)
        asked = [run for run in request.runs if entries[run.name].state == "submitting"]
        done.update({s.run: s for s in _adopt(request, backend, asked, [str(entries[r.name].token) for r in asked])})
        done.update(_honour_cancels(request, backend, done))
        fresh = [run for run in request.runs if run.name not in done]
        if len(fresh) > 1 and backend.submits_together:
            done.update({s.run: s for s in _submit_array(request, backend, fresh)})
        # a run whose earlier submission was never answered goes again under its token, where names are unique
        again = {r.name: str(entries[r.name].token) for r in asked} if backend.reuses_tokens else {}
        results = []
        for run in request.runs:
            if run.name not in done:
                done[run.name] = _submit_one(request, backend, run, again.get(run.name))
            on_submit(done[run.name])
            results.append(done[run.name])
        return results


ATTEMPT_FILES = ("job.json", "started.json", "exit.json", "cancel.json", "runner.log", "train.log", "metrics.json")
"""What one attempt of a run leaves in its folder (the backends' state files, its logs, its metrics): a retry
moves them to `attempts/<n>/`, so the next attempt's state is never read from an earlier one's files."""

RETRIED_STATES = (RunState.FAILED, RunState.CANCELLED)


def to_retry(group_dir: Path, backend: Backend) -> list[str]:
    """The runs a retry of the group would submit again: those whose latest attempt failed or was cancelled
    (a cancel before it was submitted included). Asks the backend; changes nothing."""
    return sorted(_ended(read_record(group_dir), group_dir, backend))


def _ended(record: LaunchRecord, group_dir: Path, backend: Backend) -> dict[str, Status | None]:
    """Runs whose latest attempt failed or was cancelled, with the status their backend gave (None: cancelled
    before it was submitted)."""
    asked = [e for e in record.runs if e.state == "submitted" and e.job_id is not None]
    answers = backend.statuses([(str(e.job_id), group_dir / e.name) for e in asked])
    out: dict[str, Status | None] = {
        e.name: st for e, st in zip(asked, answers, strict=True) if st.state in RETRIED_STATES
    }
    out.update({e.name: None for e in record.runs if e.state == "planned" and e.cancel_requested_at is not None})
    return out


def _new_attempts(group_dir: Path, backend: Backend) -> list[str]:
    """Under the launch lock: end the latest attempt of each failed or cancelled run, so that the submission that
    follows submits it again, once. Its files move to `attempts/<n>/` first, then its record entry moves to
    `attempts` and the run is `planned` again (a retry killed between the two moves the files again, to the same
    folder, and then the entry). Returns the runs to submit again."""
    from olmix_generated.launch_record import Attempt

    record = read_record(group_dir)
    ended = _ended(record, group_dir, backend)
    asked = {e.name: e.job_id for e in record.runs if e.name in ended}
    for entry in record.runs:
        if entry.name in ended:
            _move_attempt_files(group_dir / entry.name, len(entry.attempts) + 1)
    now = time.time()
    retried = []
    with updating(group_dir) as fresh:
        for entry in fresh.runs:
            if entry.name not in ended or entry.job_id != asked[entry.name]:
                continue  # a run changed since it was asked about is not this attempt any more
            if entry.job_id is None and (entry.state != "planned" or entry.cancel_requested_at is None):
                continue
            st = ended[entry.name]
            n = len(entry.attempts) + 1
            attempt = {
                "token": entry.token,
                "job_id": entry.job_id,
                "url": entry.url,
                "submitted_at": entry.submitted_at,
                "command": entry.command,
                "status": status_record(st) if st is not None else None,
                "cancelled_at": entry.cancelled_at,
                "cancel_requested_at": entry.cancel_requested_at,
                "retried_at": now,
                "folder": f"attempts/{n}",
            }
            optional = ("url", "command", "cancelled_at", "cancel_requested_at")  # absent, never null
            entry.attempts.append(
                Attempt.model_validate({k: v for k, v in attempt.items() if v is not None or k not in optional})
            )
            entry.state, entry.token, entry.job_id, entry.submitted_at, entry.status = "planned", None, None, None, None
            entry.url = entry.command = entry.cancelled_at = entry.cancel_requested_at = None
            retried.append(entry.name)
    return retried


def _move_attempt_files(run_dir: Path, n: int) -> None:
    folder = run_dir / "attempts" / str(n)
    present = [name for name in ATTEMPT_FILES if (run_dir / name).exists()]
    if not present:
        return
    make_dir(folder)
    for name in present:
        os.replace(run_dir / name, folder / name)


def _honour_cancels(request: LaunchRequest, backend: Backend, done: dict[str, Submitted]) -> dict[str, Submitted]:
    """Runs whose cancel was asked for: those not submitted are left so, those submitted (by an earlier launch that
    died before it could stop them) are cancelled now."""
    out: dict[str, Submitted] = {}
    stop: dict[str, str] = {}
    for entry in read_record(request.group_dir).runs:
        if entry.cancel_requested_at is None:
            continue
        if entry.state != "submitted" and entry.name not in done:
            out[entry.name] = Submitted(entry.name, "", new=False, cancelled=True)
        elif (job_id := entry.job_id or (done[entry.name].job_id if entry.name in done else None)) is not None:
            if entry.cancelled_at is None:
                stop[entry.name] = job_id
            out[entry.name] = Submitted(entry.name, job_id, new=False, cancelled=True)
    _cancel_now(request.group_dir, backend, stop)
    return out


def _cancel_now(group_dir: Path, backend: Backend, job_ids: dict[str, str]) -> None:
    """Cancel these runs' jobs (run name: job id) and note it in the record."""
    if not job_ids:
        return
    backend.cancel_many([(job_id, group_dir / name) for name, job_id in job_ids.items()])  # one scancel, where it can
    now = time.time()
    with updating(group_dir) as record:
        for entry in record.runs:
            if entry.job_id is not None and job_ids.get(entry.name) == entry.job_id:
                entry.cancelled_at = entry.cancelled_at or now


def _spec(request: LaunchRequest, run: RunLaunch, token: str) -> RunSpec:
    return RunSpec(
        group=request.group,
        run=run.name,
        run_dir=runpaths.inside(request.runs_dir, run.run_dir),
        plan_file=run.plan_file,
        command=run.command,
        token=token,
        env=request.env,
        secrets=request.secrets,
    )


def _adopt(request: LaunchRequest, backend: Backend, runs: list[RunLaunch], tokens: list[str]) -> list[Submitted]:
    """Runs an earlier launch marked `submitting`: those the backend knows by their tokens, recorded as submitted.

    A backend that finds many runs at once (`find_many`) is asked once.
    """
    if not runs:
        return []
    specs = [_spec(request, run, token) for run, token in zip(runs, tokens, strict=True)]
    job_ids = backend.find_many(specs)
    adopted = {run.name: job_id for run, job_id in zip(runs, job_ids, strict=True) if job_id is not None}
    if adopted:
        _mark_submitted(request.group_dir, backend, adopted)
    return [Submitted(name, job_id, new=False) for name, job_id in adopted.items()]


def _write_run_plan(request: LaunchRequest, run: RunLaunch) -> None:
    # The run's plan is this launch's, built from listings confirmed during it: a resumed group's runs
    # left to submit never train on files an earlier launch listed.
    planned = next(r for r in request.plan["runs"] if r["name"] == run.name)
    write_json_atomic(runpaths.inside(request.runs_dir, run.plan_file), {**request.plan, "runs": [planned]})


def _mark_submitting(group_dir: Path, specs: Sequence[RunSpec]) -> set[str]:
    """One change of the record: every run of `specs` is being submitted, with its token.

    Unless a cancel was asked for some of them: then nothing is marked, and their names are returned.
    """
    by_name = {spec.run: spec for spec in specs}
    with updating(group_dir) as record:
        if cancelled := {e.name for e in record.runs if e.name in by_name and e.cancel_requested_at is not None}:
            return cancelled
        for entry in record.runs:
            if (spec := by_name.get(entry.name)) is not None:
                entry.state, entry.token, entry.command = "submitting", spec.token, spec.command
    return set()


def _mark_submitted(group_dir: Path, backend: Backend, job_ids: dict[str, str]) -> set[str]:
    """One change of the record: each run of `job_ids` is submitted, with its job id (and its URL, where the
    backend gives one). Returns those whose cancel was asked for meanwhile: the caller stops them."""
    now = time.time()
    with updating(group_dir) as record:
        for entry in record.runs:
            if (job_id := job_ids.get(entry.name)) is not None:
                entry.state, entry.job_id = "submitted", job_id
                entry.submitted_at = entry.submitted_at or now
                if url := backend.url(job_id):
                    entry.url = url
        return {e.name for e in record.runs if e.name in job_ids and e.cancel_requested_at is not None}


def _submitted(
    request: LaunchRequest, backend: Backend, job_ids: dict[str, str], runs: Sequence[RunLaunch]
) -> list[Submitted]:
    """Record the runs just submitted, and cancel at once those whose cancel came while they were submitted."""
    stop = _mark_submitted(request.group_dir, backend, job_ids)
    _cancel_now(request.group_dir, backend, {name: job_ids[name] for name in stop})
    return [Submitted(run.name, job_ids[run.name], new=True, cancelled=run.name in stop) for run in runs]


def _submit_array(request: LaunchRequest, backend: Backend, runs: list[RunLaunch]) -> list[Submitted]:
    """Submit `runs` together (a job array): run i gets the token `<T>.<i>` of one fresh T.

    Every run is marked `submitting` in one change before the one call, so a launch killed before it
    submitted nothing findable and one killed after finds each run by its token.
    """
    for run in runs:
        _write_run_plan(request, run)
    skipped: list[RunLaunch] = []
    while True:  # runs whose cancel came before they were marked are left out, with a fresh token for the rest
        array_token = uuid.uuid4().hex
        specs = [_spec(request, run, f"{array_token}.{i}") for i, run in enumerate(runs)]
        if not (cancelled := _mark_submitting(request.group_dir, specs)):
            break
        skipped += [run for run in runs if run.name in cancelled]
        runs = [run for run in runs if run.name not in cancelled]
    out = [Submitted(run.name, "", new=False, cancelled=True) for run in skipped]
    if not runs:
        return out
    try:
        job_ids = backend.submit_many(specs)
    except Exception as exc:
        found = _after_failure(backend, specs, exc)
        known = {s.run: j for s, j in zip(specs, found, strict=True) if j}
        _submitted(request, backend, known, [run for run in runs if run.name in known])
        if None in found:
            raise _not_found(request, [s for s, j in zip(specs, found, strict=True) if j is None], exc) from None
        job_ids = [str(j) for j in found]
    if len(job_ids) != len(runs):
        raise BackendError(f"{len(runs)} runs submitted together, but {len(job_ids)} job ids came back")
    return out + _submitted(request, backend, dict(zip([r.name for r in runs], job_ids, strict=True)), runs)


def _submit_one(request: LaunchRequest, backend: Backend, run: RunLaunch, token: str | None = None) -> Submitted:
    spec = _spec(request, run, token or uuid.uuid4().hex)  # a new attempt, a new token (unless told)
    _write_run_plan(request, run)
    if _mark_submitting(request.group_dir, [spec]):
        return Submitted(run.name, "", new=False, cancelled=True)  # its cancel came first: never submitted
    try:
        job_id = backend.submit(spec)
    except Exception as exc:
        (found,) = _after_failure(backend, [spec], exc)
        if found is None:
            raise _not_found(request, [spec], exc) from None
        job_id = found
    return _submitted(request, backend, {run.name: job_id}, [run])[0]


def _after_failure(backend: Backend, specs: list[RunSpec], exc: Exception) -> list[str | None]:
    """Each run's job id, looked up by its token after its submission failed: a timeout or a lost answer may
    follow a scheduler that took it. Raises when the lookup fails too: then whether they were submitted is not
    known, and the record keeps them `submitting` for the next launch to look up."""
    try:
        return list(backend.find_many(specs))
    except Exception as lookup:
        if not isinstance(exc, OlmixError):
            raise exc from None
        runs = ", ".join(spec.run for spec in specs)
        raise LaunchError(
            f"{exc}; whether run(s) {runs} were submitted is not known: looking them up by their tokens failed "
            f"too ({lookup}); launching group {specs[0].group} again looks them up before submitting anything"
        ) from None


def _not_found(request: LaunchRequest, specs: list[RunSpec], exc: Exception) -> Exception:
    """The error for runs whose submission failed and which the backend does not know by their tokens."""
    if not isinstance(exc, OlmixError):
        return exc
    runs = ", ".join(spec.run for spec in specs)
    return LaunchError(
        f"{exc}; run(s) {runs} not found by their tokens afterwards, so most likely not submitted; launching "
        f"group {request.group} again looks them up before submitting anything"
    )


def launch(
    plan: dict[str, Any],
    config_path: Path,
    backend: Backend,
    output: Path,
    *,
    options: dict[str, Any] | None = None,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
    secrets: list[str] | None = None,
    on_submit: Callable[[Submitted], None] = lambda s: None,
) -> list[Submitted]:
    """Submit every run of `plan` not yet submitted; return what each run's job id is."""
    request = prepare(plan, config_path, backend, output, options=options, command=command, env=env, secrets=secrets)
    return submit(request, backend, on_submit)


def status_record(status: Status) -> dict[str, Any]:
    out = {
        "state": status.state.value,
        "exit_code": status.exit_code,
        "started_at": status.started_at,
        "finished_at": status.finished_at,
        "detail": status.detail,
    }
    return out if status.signal is None else {**out, "signal": status.signal}


def statuses(group_dir: Path, backend: Backend) -> tuple[LaunchRecord, dict[str, Status | None]]:
    """Each run's current state (None: never submitted), noted in the group's record too.

    The backend is asked (which may be slow) without any lock; what it said is then saved on a fresh
    read under the record lock, for the runs whose job id is still the one asked about.
    """
    from olmix_generated.launch_record import RunStatus

    record = read_record(group_dir)
    asked = [e for e in record.runs if e.state == "submitted" and e.job_id is not None]
    answers = backend.statuses([(str(e.job_id), group_dir / e.name) for e in asked])
    by_job = {(e.name, e.job_id): st for e, st in zip(asked, answers, strict=True)}
    try:
        with updating(group_dir) as fresh:
            for entry in fresh.runs:
                if (st := by_job.get((entry.name, entry.job_id))) is not None:
                    entry.status = RunStatus.model_validate(status_record(st))
        record = fresh
    except PermissionError:
        pass  # a group someone else owns: show what the backend said, save nothing
    # runs a launch submitted meanwhile: asked too, their status saved by the next look
    late = [e for e in record.runs if e.state == "submitted" and (e.name, e.job_id) not in by_job]
    by_job.update(
        {
            (e.name, e.job_id): st
            for e, st in zip(late, backend.statuses([(str(e.job_id), group_dir / e.name) for e in late]), strict=True)
        }
    )
    found: dict[str, Status | None] = {e.name: by_job.get((e.name, e.job_id)) for e in record.runs}
    return record, found


def watch(
    group_dir: Path, backend: Backend, poll_s: float = 2.0
) -> Iterator[tuple[LaunchRecord, dict[str, Status | None]]]:
    """The group's statuses every poll_s seconds, until every submitted run has finished (the last one included)."""
    while True:
        record, found = statuses(group_dir, backend)
        yield record, found
        if all(st is None or st.state.finished for st in found.values()):
            return
        time.sleep(poll_s)


def cancel(group_dir: Path, backend: Backend, runs: list[str] | None = None) -> list[str]:
    """Cancel the group's unfinished runs (or those named); return the names of the runs stopped now."""
    return cancel_runs(group_dir, backend, runs).cancelled


def cancel_runs(group_dir: Path, backend: Backend, runs: list[str] | None = None) -> Cancelled:
    """Cancel the group's unfinished runs (or those named), and those a launch has yet to submit.

    Under the record lock, every run asked about that is not submitted yet is marked cancel-requested
    (a launch under way then never submits it, or stops it the moment its job id is known), and the
    submitted ones are read on that same read. Like status, the backend is then asked and told without
    a lock (stopping a run may take its grace period); the cancellation is noted on a fresh read.
    """
    record = read_record(group_dir)
    names = [e.name for e in record.runs]
    if runs and (unknown := sorted(set(runs) - set(names))):
        raise LaunchError(
            f"group {record.group} has no run named {', '.join(unknown)} (runs: {', '.join(sorted(names))})"
        )
    now = time.time()
    with updating(group_dir) as fresh:
        asked = [e for e in fresh.runs if not runs or e.name in runs]
        waiting = [e for e in asked if e.state != "submitted"]
        for entry in waiting:
            entry.cancel_requested_at = entry.cancel_requested_at or now
        targets = [(e.name, str(e.job_id)) for e in asked if e.state == "submitted" and e.job_id is not None]
    found = backend.statuses([(job_id, group_dir / name) for name, job_id in targets])
    live = {name: job_id for (name, job_id), st in zip(targets, found, strict=True) if not st.state.finished}
    if live:
        with updating(group_dir) as fresh:  # a launch resumed meanwhile sees them as asked to stop
            for entry in fresh.runs:
                if live.get(entry.name) == entry.job_id:
                    entry.cancel_requested_at = entry.cancel_requested_at or now
    _cancel_now(group_dir, backend, live)
    return Cancelled(list(live), [e.name for e in waiting])


def list_records(runs_dir: Path) -> tuple[list[LaunchRecord], list[OlmixError]]:
    """The valid records of the groups under `runs_dir`, newest first, and an error naming each bad one."""
    from olmix.launch.record import parse_record, read_record_file

    records, bad = [], []
    for path in sorted(runs_dir.glob(f"*/{RECORD}")) if runs_dir.is_dir() else []:
        try:
            records.append(parse_record(read_record_file(path), str(path)))
        except OlmixError as exc:
            bad.append(exc)
    records.sort(key=lambda r: r.created_at, reverse=True)
    return records, bad


def backend_for(record: LaunchRecord) -> Backend:
    from olmix import backends

    try:
        return backends.get(record.backend, **record.backend_options)
    except TypeError as exc:
        raise BackendError(f"backend options in the record do not fit backend '{record.backend}': {exc}") from None
