"""Submit the runs of a plan through a backend, exactly once each, and keep the group's record.

The record (`<output>/<group>/launch.json`) is rewritten atomically at every
step. Before a run is submitted it is marked `submitting` with a fresh token;
after, `submitted` with its job id. A launch killed at any point is resumed by
launching the group again: `submitted` runs are skipped, and a `submitting`
run is first looked up by its token, so it is adopted if it started and
submitted if it did not. Every run is submitted exactly once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from olmix.backends import Backend, BackendError, RunSpec, Status
from olmix.backends.secrets import check_secrets
from olmix.errors import OlmixError
from olmix.fileio import make_dir, write_json_atomic

RECORD = "launch.json"
DEFAULT_COMMAND = ["{python}", "-m", "olmix.train", "--plan", "{plan}", "--out", "{run_dir}"]


class LaunchError(OlmixError):
    """A launch cannot proceed; nothing (more) was submitted."""


@dataclass(frozen=True)
class Submitted:
    run: str
    job_id: str
    new: bool  # False: it had been submitted before (resumed group)


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


def read_record(group_dir: Path) -> dict[str, Any]:
    path = group_dir / RECORD
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise LaunchError(f"no launch record at {path}: is the group name right? (see `olmix launch list`)") from None
    except ValueError as exc:
        raise LaunchError(f"{path}: not a readable launch record ({exc})") from None
    return record


@contextmanager
def group_lock(group_dir: Path) -> Iterator[None]:
    """One launcher per group at a time."""
    make_dir(group_dir)
    with open(group_dir / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LaunchError(f"another olmix process is launching group {group_dir.name}") from None
        yield


def render_command(template: list[str], *, plan: Path, run_dir: Path, run: str) -> list[str]:
    values = {"python": sys.executable, "plan": str(plan), "run_dir": str(run_dir), "run": run}
    try:
        return [part.format(**values) for part in template]
    except (KeyError, IndexError, ValueError) as exc:
        raise LaunchError(
            f"trainer command {template!r}: bad placeholder {exc}; use {{python}}, {{plan}}, {{run_dir}}, {{run}}"
        ) from None


def new_record(
    plan: dict[str, Any],
    config_path: Path,
    backend: Backend,
    options: dict[str, Any],
    command: list[str],
    env: dict[str, str],
    secrets: list[str],
) -> dict[str, Any]:
    from olmix import __version__

    now = time.time()
    return {
        "record_version": 1,
        "group": plan["group"],
        "config": dict(plan["config"]),
        "git_commit": git_commit(config_path),
        "olmix_version": __version__,
        "backend": backend.name,
        "backend_options": options,
        "trainer_command": command,
        "env": env,
        "secrets": secrets,  # names only
        "plan_file": "plan.json",
        "created_at": now,
        "updated_at": now,
        "runs": [
            {
                "name": run["name"],
                "state": "planned",
                "token": None,
                "job_id": None,
                "submitted_at": None,
                "status": None,
            }
            for run in plan["runs"]
        ],
    }


def prepare_group(group_dir: Path, plan: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """Write the group's plan and record, or check a resumed group matches them."""
    path = group_dir / RECORD
    if path.exists():
        old = read_record(group_dir)
        if (old["config"]["sha256"], old["config"].get("overrides", [])) != (
            record["config"]["sha256"],
            record["config"].get("overrides", []),
        ):
            raise LaunchError(
                f"group {old['group']} was launched from {old['config']['path']} with different content or "
                f"overrides (sha256 {old['config']['sha256'][:12]}…); launch the changed config as a new group"
            )
        if old["backend"] != record["backend"]:
            raise LaunchError(
                f"group {old['group']} was launched on backend '{old['backend']}', not '{record['backend']}'"
            )
        return old
    write_json_atomic(group_dir / record["plan_file"], plan)
    for run in plan["runs"]:
        write_json_atomic(group_dir / run["name"] / "plan.json", {**plan, "runs": [run]})
    write_json_atomic(path, record)
    return record


def missing_secrets(secrets: list[str]) -> list[str]:
    return [name for name in secrets if name not in os.environ]


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
    secrets = secrets or []
    if absent := missing_secrets(secrets):
        raise LaunchError(f"secret environment variable(s) not set: {', '.join(absent)}; nothing was submitted")
    check_secrets(secrets)
    group_dir = output.resolve() / plan["group"]
    template = command or DEFAULT_COMMAND
    with group_lock(group_dir):
        record = new_record(plan, config_path, backend, options or {}, template, env or {}, secrets)
        record = prepare_group(group_dir, plan, record)
        results = []
        for entry in record["runs"]:
            run_dir = group_dir / entry["name"]
            spec = RunSpec(
                group=record["group"],
                run=entry["name"],
                run_dir=run_dir,
                plan_file=run_dir / "plan.json",
                command=render_command(
                    record["trainer_command"], plan=run_dir / "plan.json", run_dir=run_dir, run=entry["name"]
                ),
                token=entry["token"] or uuid.uuid4().hex,
                env=record["env"],
                secrets=record["secrets"],
            )
            if entry["state"] == "submitted":
                result = Submitted(entry["name"], entry["job_id"], new=False)
                on_submit(result)
                results.append(result)
                continue
            job_id = backend.find(spec) if entry["state"] == "submitting" else None
            new = job_id is None
            if job_id is None:
                entry.update(state="submitting", token=spec.token)
                _save(group_dir, record)
                job_id = backend.submit(spec)
            entry.update(state="submitted", job_id=job_id, submitted_at=entry["submitted_at"] or time.time())
            _save(group_dir, record)
            result = Submitted(entry["name"], job_id, new)
            on_submit(result)
            results.append(result)
        return results


def _save(group_dir: Path, record: dict[str, Any]) -> None:
    record["updated_at"] = time.time()
    write_json_atomic(group_dir / RECORD, record)


def statuses(group_dir: Path, backend: Backend) -> tuple[dict[str, Any], dict[str, Status | None]]:
    """Each run's current state (None: never submitted), recorded in the group's record too."""
    record = read_record(group_dir)
    found: dict[str, Status | None] = {}
    for entry in record["runs"]:
        if entry["state"] != "submitted":
            found[entry["name"]] = None
            continue
        status = backend.status(entry["job_id"], group_dir / entry["name"])
        found[entry["name"]] = status
        entry["status"] = {
            "state": status.state.value,
            "exit_code": status.exit_code,
            "started_at": status.started_at,
            "finished_at": status.finished_at,
        }
    with group_lock_or_skip(group_dir):
        _save(group_dir, record)
    return record, found


@contextmanager
def group_lock_or_skip(group_dir: Path) -> Iterator[None]:
    # Status is read-mostly: when a launcher holds the group, it keeps the record; don't wait for it.
    try:
        with group_lock(group_dir):
            yield
    except LaunchError:
        return


def cancel(group_dir: Path, backend: Backend, runs: list[str] | None = None) -> list[str]:
    """Cancel the group's unfinished runs (or those named); return the names cancelled."""
    record = read_record(group_dir)
    names = {e["name"] for e in record["runs"]}
    if runs and (unknown := sorted(set(runs) - names)):
        raise LaunchError(
            f"group {record['group']} has no run named {', '.join(unknown)} (runs: {', '.join(sorted(names))})"
        )
    done = []
    for entry in record["runs"]:
        if (runs and entry["name"] not in runs) or entry["state"] != "submitted":
            continue
        run_dir = group_dir / entry["name"]
        if backend.status(entry["job_id"], run_dir).state.finished:
            continue
        backend.cancel(entry["job_id"], run_dir)
        entry["cancelled_at"] = time.time()
        done.append(entry["name"])
    with group_lock_or_skip(group_dir):
        _save(group_dir, record)
    return done


def backend_for(record: dict[str, Any]) -> Backend:
    from olmix import backends

    try:
        return backends.get(record["backend"], **record.get("backend_options", {}))
    except TypeError as exc:
        raise BackendError(f"backend options in the record do not fit backend '{record['backend']}': {exc}") from None
