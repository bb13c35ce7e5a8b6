"""The local backend: each run is a detached process group on this machine.

Runs outlive the launching process; their state lives in files in the run's
folder (job.json, started.json, exit.json, cancel.json) written by
local_runner, so `olmix launch status` works from any terminal. At most
`max_parallel` runs of a group train at once; the others wait for a slot.

The runner and its trainer share a process group, and the trainer carries
the run's token in its environment (OLMIX_RUN_TOKEN). So a trainer whose
runner was killed is still recognised (status says `orphaned`, never
`failed` while it trains) and can still be stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from olmix.backends.base import Backend
from olmix.backends.types import BackendError, RunSpec, RunState, Status, run_file
from olmix.errors import ExtraMissing
from olmix.fileio import write_json_atomic

IGNORED = ("cluster", "budget", "workspace", "priority", "slurm", "beaker")
TOKEN_VAR = "OLMIX_RUN_TOKEN"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int, token: str) -> bool:
    """Whether pid is still the runner that holds token (pids are reused)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and token.encode() in _cmdline(pid)


def _group_members(pgid: int, token: str) -> list[int]:
    """Live processes of process group pgid started for the run with `token` (a reused pgid is not ours)."""
    mark = f"{TOKEN_VAR}={token}".encode()
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[2]) != pgid:
                continue
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                members.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return members


def _pid(job_id: str) -> int:
    if not job_id.isdigit():
        raise BackendError(f"job id {job_id!r} is not a process id, as the local backend's job ids are")
    return int(job_id)


class LocalBackend(Backend):
    name = "local"

    @classmethod
    def options_from_config(cls, config: Any, max_parallel: int | None = None) -> dict[str, Any]:
        return {"max_parallel": max_parallel or 1}

    def __init__(self, max_parallel: int = 1, cwd: str | None = None) -> None:
        if max_parallel < 1:
            raise BackendError("--max-parallel must be at least 1")
        self.max_parallel = max_parallel
        self.cwd = cwd

    def check(self, config: Any) -> list[str]:
        ignored = [key for key in IGNORED if key in config.model_fields_set]
        notes = [f"the local backend ignores {', '.join(ignored)}"] if ignored else []
        if config.nodes > 1:
            raise BackendError(f"the local backend runs on one machine; the config asks for nodes: {config.nodes}")
        return notes

    def check_command(self, command: list[str]) -> None:
        program = command[0]
        if "/" in program:
            path = Path(self.cwd or os.getcwd(), program)  # an absolute program ignores the folder
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise BackendError(f"trainer program {program!r}: no executable file at {path}; nothing was submitted")
        elif shutil.which(program) is None:
            raise BackendError(f"trainer program {program!r} is not on PATH; nothing was submitted")

    def check_trainer(self, command: list[str]) -> None:
        from olmix.training.olmocore import runs_olmix_train, train_extra_missing

        if not runs_olmix_train(command):
            return
        if missing := train_extra_missing(command[0]):
            raise ExtraMissing(
                f"trainer command {' '.join(command[:3])!r}: olmix.train needs {', '.join(missing)}, which "
                f"{command[0]} cannot import (nothing was submitted)",
                "train",
            )

    def submit(self, spec: RunSpec) -> str:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        runner = [
            sys.executable,
            "-m",
            "olmix.backends.local_runner",
            "--run-dir",
            str(spec.run_dir),
            "--token",
            spec.token,
            "--slots-dir",
            str(spec.run_dir.parent / ".slots"),
            "--max-parallel",
            str(self.max_parallel),
        ]
        if self.cwd:
            runner += ["--cwd", self.cwd]
        for name in spec.secrets:
            runner += ["--secret", name]
        env = {**os.environ, **spec.env, TOKEN_VAR: spec.token}
        # runs sharing the machine share its cores, unless the user or the config said otherwise
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        env.setdefault("OMP_NUM_THREADS", str(max(1, cores // self.max_parallel)))
        with open(os.devnull, "rb") as stdin, open(spec.run_dir / "runner.log", "ab") as log:
            proc = subprocess.Popen(
                [*runner, "--", *spec.command], stdin=stdin, stdout=log, stderr=log, env=env, start_new_session=True
            )
        return str(proc.pid)

    def find(self, spec: RunSpec) -> str | None:
        job = run_file(spec.run_dir / "job.json")
        if job and job.get("token") == spec.token:
            return str(job["pid"])
        # Started but job.json not yet written: the token is on the runner's command line.
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and spec.token.encode() in _cmdline(int(proc.name)):
                return proc.name
        return None

    def statuses(self, jobs: list[tuple[str, Path]]) -> list[Status]:
        return [self.status(job_id, run_dir) for job_id, run_dir in jobs]

    def status(self, job_id: str, run_dir: Path) -> Status:
        pid = _pid(job_id)
        done = run_file(run_dir / "exit.json")
        started = run_file(run_dir / "started.json")
        started_at = started["started_at"] if started else None
        if done is not None:
            code = done["exit_code"]
            ok = RunState.SUCCEEDED if code == 0 else RunState.FAILED
            state = RunState.CANCELLED if done["cancelled"] else ok
            # the runner records the trainer's return code: minus the signal that ended it, if one did
            signal_number = -code if isinstance(code, int) and code < 0 else None
            return Status(state, code, started_at, done["finished_at"], signal=signal_number)
        job = run_file(run_dir / "job.json")
        token = job["token"] if job else ""
        if job is None or not _alive(pid, token):
            if job is None and self._starting(job_id, run_dir):
                return Status(RunState.PENDING)
            if job is not None and (members := _group_members(int(job["pgid"]), token)):
                return Status(
                    RunState.ORPHANED,
                    None,
                    started_at,
                    detail=f"its runner (pid {pid}) died; the trainer still runs as process group {job['pgid']} "
                    f"(pids {', '.join(map(str, members))}); `olmix launch cancel` stops it",
                )
            if (run_dir / "cancel.json").exists():
                return Status(RunState.CANCELLED, None, started_at, detail="stopped before it could record an exit")
            return Status(RunState.FAILED, None, started_at, detail="the runner process ended without an exit record")
        return Status(RunState.RUNNING if started else RunState.PENDING, None, started_at)

    @staticmethod
    def _starting(job_id: str, run_dir: Path) -> bool:
        return str(run_dir).encode() in _cmdline(_pid(job_id))

    def cancel(self, job_id: str, run_dir: Path, grace_s: float = 10.0) -> None:
        """SIGTERM the run's process group (runner and trainer, or the trainer alone if its runner died), SIGKILL
        after grace_s."""
        pid = _pid(job_id)
        # written before job.json is read: a runner that has not written job.json yet finds this instead
        write_json_atomic(run_dir / "cancel.json", {"cancelled_at": time.time(), "pid": pid})
        job = run_file(run_dir / "job.json")
        if job is None:
            return
        pgid, token = int(job["pgid"]), job["token"]

        def running() -> bool:
            return _alive(pid, token) or bool(_group_members(pgid, token))

        if not running():
            return
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and running():
            time.sleep(0.05)
        if running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
