"""Asking Slurm about runs: one squeue for the jobs it still knows, one sacct (or sacct -c) for the others, and
the run's own started.json and exit.json for what the scheduler has forgotten."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from olmix.backends.slurm.script import NAME_PREFIX
from olmix.backends.types import BackendError, RunSpec, RunState, Status, run_file

# Every state squeue or sacct can print (slurm.h's job_states and their flags), as olmix sees it.
STATES: dict[str, RunState] = {
    "PENDING": RunState.PENDING,
    "CONFIGURING": RunState.PENDING,
    "REQUEUED": RunState.PENDING,
    "REQUEUE_HOLD": RunState.PENDING,
    "REQUEUE_FED": RunState.PENDING,
    "RESV_DEL_HOLD": RunState.PENDING,
    "POWER_UP_NODE": RunState.PENDING,
    "RUNNING": RunState.RUNNING,
    "COMPLETING": RunState.RUNNING,
    "SIGNALING": RunState.RUNNING,
    "STAGE_OUT": RunState.RUNNING,
    "RESIZING": RunState.RUNNING,
    "SUSPENDED": RunState.RUNNING,
    "STOPPED": RunState.RUNNING,
    "UPDATE_DB": RunState.RUNNING,
    "COMPLETED": RunState.SUCCEEDED,
    "CANCELLED": RunState.CANCELLED,
    "FAILED": RunState.FAILED,
    "TIMEOUT": RunState.FAILED,
    "OUT_OF_MEMORY": RunState.FAILED,
    "NODE_FAIL": RunState.FAILED,
    "BOOT_FAIL": RunState.FAILED,
    "DEADLINE": RunState.FAILED,
    "PREEMPTED": RunState.FAILED,
    "SPECIAL_EXIT": RunState.FAILED,
    "REVOKED": RunState.FAILED,
}


# While a requeueable job is being preempted it is on its way back to the queue.
LIVE_STATES = {"PREEMPTED": RunState.PENDING}


@dataclass(frozen=True)
class Job:
    """One row of squeue or sacct."""

    job_id: str
    raw_id: str
    state: str
    reason: str = ""
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    name: str = ""
    signal: int | None = None


def _time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return None


def map_state(job: Job, *, live: bool) -> Status:
    """The olmix Status of a Slurm job; the detail names Slurm's state and reason."""
    word = job.state.split()[0].rstrip("+") if job.state.strip() else "UNKNOWN"
    state = (LIVE_STATES.get(word) if live else None) or STATES.get(word)
    reason = job.reason if job.reason and job.reason not in ("None", "(null)") else ""
    detail = f"slurm {job.state.strip()}" + (f": {reason}" if reason else "")
    if state is None:
        return Status(
            RunState.FAILED, job.exit_code, job.started_at, job.finished_at, detail + " (unknown state)", job.signal
        )
    finished = job.finished_at if state.finished else None
    # A pending job's StartTime is the scheduler's forecast (a requeued job's next start), not a start.
    started = None if state is RunState.PENDING else job.started_at
    if not state.finished:
        return Status(state, None, started, finished, detail)
    return Status(state, job.exit_code, started, finished, detail, job.signal)


def _array_of(job_id: str) -> str:
    """The array job id of an array task's id (`123_4` → `123`); any other id itself."""
    return job_id.split("_")[0]


class QueryMixin:
    """The query half of the Slurm backend."""

    # None: not yet known whether the cluster keeps accounting (sacct) or only a completion log (sacct -c).
    _sacct_flags: list[str] | None = None

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        raise NotImplementedError

    @staticmethod
    def _name(token: str) -> tuple[str, int | None]:
        raise NotImplementedError

    def find(self, spec: RunSpec) -> str | None:
        return self.find_many([spec])[0]

    def find_many(self, specs: Sequence[RunSpec]) -> list[str | None]:
        """The job id of each run already submitted with its token, if any: one squeue for them all, and one
        sacct for those the controller does not know (any more)."""
        names = {spec.token: self._names(spec.token) for spec in specs}
        wanted = sorted({name for pair in names.values() for name in pair})
        if not wanted:
            return []
        out = self._run(
            ["squeue", "-h", "-r", "--states=all", f"--name={','.join(wanted)}", "-O", "JobArrayID:0|,Name:0|"]
        )
        live = [tuple(p.strip() for p in line.split("|")[:2]) for line in out.stdout.splitlines() if "|" in line]
        found: dict[str, str | None] = {}
        unknown = []
        for spec in specs:
            rows = [(job_id, name) for job_id, name in live if name in names[spec.token]]
            if rows:
                found[spec.token] = self._pick(spec.token, rows)
            else:
                unknown.append(spec)
        if unknown:
            asked = sorted({name for spec in unknown for name in names[spec.token]})
            # The completion log (sacct -c) ignores --name: keep only the rows that carry a token asked about.
            done = [r for r in self._sacct(["--name", ",".join(asked), "--starttime", "now-30days"]) if r.name in asked]
            for spec in unknown:
                mine = [row for row in done if row.name in names[spec.token]]
                started = run_file(spec.run_dir / "started.json") or {}
                if started.get("raw_job_id") in {row.raw_id for row in mine}:
                    found[spec.token] = str(started["job_id"])
                else:
                    found[spec.token] = self._pick(spec.token, [(row.job_id, row.name) for row in mine])
        return [found[spec.token] for spec in specs]

    def _names(self, token: str) -> tuple[str, ...]:
        """The job names a run with this token may carry: its own, and its array's if it was submitted in one."""
        array_name, index = self._name(token)
        alone = NAME_PREFIX + token  # its name had it been submitted on its own (also after an array failed)
        return (alone,) if index is None else (alone, array_name)

    def _pick(self, token: str, rows: list[tuple[str, str]]) -> str | None:
        """Among (job id, name) rows, the job of this token: submitted alone, else its array's task."""
        array_name, index = self._name(token)
        for job_id, name in rows:
            if name == NAME_PREFIX + token:
                return job_id
        if index is None:
            return None
        return next((job_id for job_id, name in rows if name == array_name and job_id.endswith(f"_{index}")), None)

    def _squeue(self, job_ids: list[str]) -> dict[str, Job]:
        fields = "JobID:0|,JobArrayID:0|,State:0|,Reason:0|,exit_code:0|,StartTime:0|,EndTime:0|"
        # An array's tasks that never started and have ended (say, cancelled while pending) are no rows of their
        # own: one row of the array's id stands for them, which only asking for the array's id shows.
        asked = [*job_ids, *sorted({_array_of(j) for j in job_ids if _array_of(j) != j})]
        out = self._run(["squeue", "-h", "-r", "--states=all", "-j", ",".join(asked), "-O", fields], check=False)
        if out.returncode != 0:
            if "Invalid job id" in out.stderr:
                return {}  # none of them is known any more
            raise BackendError(f"squeue failed (exit {out.returncode}): {out.stderr.strip()}")
        jobs = {}
        for line in out.stdout.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) < 7:
                continue
            raw, job_id, state, reason, status, start, end = parts[:7]
            code = int(status) >> 8 if status.isdigit() else None
            signal_number = (int(status) & 0x7F) or None if status.isdigit() else None  # a wait status
            jobs[job_id] = Job(job_id, raw, state, reason, code, _time(start), _time(end), signal=signal_number)
        return jobs

    def _sacct(self, selection: list[str]) -> list[Job]:
        fields = "JobID,JobIDRaw,State,ExitCode,Start,End,Reason,JobName"
        base = ["sacct", "-X", "-P", "-n", *selection, "-o", fields]
        flags = QueryMixin._sacct_flags
        out = self._run([*base, *(flags or [])], check=False)
        if out.returncode != 0 and flags is None and "accounting storage is disabled" in out.stderr + out.stdout:
            # No accounting database: read the job-completion log instead (and remember that).
            QueryMixin._sacct_flags = flags = ["-c"]
            out = self._run([*base, *flags], check=False)
        if out.returncode != 0:
            raise BackendError(f"sacct failed (exit {out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
        if flags is None:
            QueryMixin._sacct_flags = []
        rows = []
        for line in out.stdout.splitlines():
            parts = line.split("|")
            if len(parts) < 8:
                continue
            job_id, raw, state, exit_code, start, end, reason = parts[:7]
            name = "|".join(parts[7:])  # the last field: a job name may hold the separator
            code, _, sig = exit_code.partition(":")  # sacct's ExitCode: the exit code, then the signal
            rows.append(
                Job(
                    job_id,
                    raw,
                    state,
                    reason,
                    int(code) if code.isdigit() else None,
                    _time(start),
                    _time(end),
                    name,
                    int(sig) or None if sig.isdigit() else None,
                )
            )
        return rows

    def statuses(self, jobs: list[tuple[str, Path]]) -> list[Status]:
        """The status of each (job id, run folder), in order, from one `query`."""
        found = self.query([job_id for job_id, _ in jobs], [run_dir for _, run_dir in jobs])
        return [found[job_id] for job_id, _ in jobs]

    def query(self, job_ids: list[str], run_dirs: list[Path]) -> dict[str, Status]:
        """The state of many runs with one squeue call and (for runs squeue has forgotten) one sacct call."""
        if not job_ids:
            return {}
        result: dict[str, Status] = {}
        live = self._squeue(job_ids)
        for job_id in job_ids:
            if (job := live.get(job_id) or live.get(_array_of(job_id))) is not None:
                result[job_id] = map_state(job, live=True)
        missing = [(j, d) for j, d in zip(job_ids, run_dirs, strict=True) if j not in result]
        if missing:
            started = {j: run_file(d / "started.json") or {} for j, d in missing}
            wanted = {j for j, _ in missing} | {str(s["raw_job_id"]) for s in started.values() if "raw_job_id" in s}
            rows = self._sacct(["-j", ",".join(sorted(wanted))])
            by_id = {row.job_id: row for row in rows} | {row.raw_id: row for row in rows}
            for job_id, run_dir in missing:
                row = by_id.get(job_id) or by_id.get(str(started[job_id].get("raw_job_id")))
                if row is None and (rest := by_id.get(_array_of(job_id))) is not None and rest.job_id == rest.raw_id:
                    row = rest  # the array's own record, standing for its tasks that never started
                if row is not None:
                    result[job_id] = map_state(row, live=False)
                else:
                    result[job_id] = self._from_files(run_dir, started[job_id])
        return result

    @staticmethod
    def _from_files(run_dir: Path, started: dict[str, Any]) -> Status:
        done = run_file(run_dir / "exit.json")
        if done is not None:
            code = done.get("exit_code")
            state = RunState.SUCCEEDED if code == 0 else RunState.FAILED
            detail = "from the run's exit record; the scheduler no longer knows the job"
            return Status(state, code, started.get("started_at"), done.get("finished_at"), detail)
        return Status(RunState.FAILED, None, started.get("started_at"), None, "neither squeue nor sacct knows the job")

    def status(self, job_id: str, run_dir: Path) -> Status:
        return self.query([job_id], [run_dir])[job_id]
