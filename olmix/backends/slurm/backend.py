"""The Slurm backend: each run is a batch job, a group submitted together is one job array.

Every run gets a batch script in its folder (`slurm.sh`), written before
anything is submitted so it can be reviewed; options go to `sbatch` as
arguments (never through the shell) and the script names them in a comment.
Every string from a config that reaches the script is shell-quoted; Slurm
settings are checked against a conservative pattern before they reach an
argument list.

The trainer runs under `srun`; a run with more than one node or more than
one process per node (`gpus`, or `slurm.gpus_per_node`) runs under torchrun
(`python -m torch.distributed.run`, one agent per node), which meets its
peers at the first node of the job (`scontrol show hostnames`) on a port
drawn from the job id. On a node without GPUs the same processes train on
the CPU. A trainer that is `olmix.train` gets `--checkpoint-interval` unless
its command sets one: a requeued or preempted job resumes from its latest
checkpoint.

The submission token is in the job's name (`olmix-<token>`), so a launch
killed after `sbatch` returned finds its job again with `squeue` (jobs the
controller still remembers) or `sacct` (accounting). A run submitted inside
an array carries the token `<array token>.<index>`.

State comes from the scheduler: one `squeue` call for all runs asked about and
one `sacct` call for those squeue no longer knows. Where the cluster keeps
no accounting database, `sacct -c` (the job-completion log) is used instead.
The script also records started.json and exit.json in the run folder, which
answer for runs the scheduler has forgotten.

The runs folder must be on a filesystem the compute nodes share: a job reads
its plan and writes train.log, checkpoints and metrics.json in its run folder,
and `olmix results` reads them on the machine that launched. Where the launch
can tell that the folder is this machine's own (a tmpfs or ramfs, or under
/tmp, /var/tmp or /dev/shm), it says so in a note: a one-machine cluster
shares it.

Secrets travel by name only: `sbatch --export=ALL` hands the submitting
environment to the job, the script checks each named variable is there and
masks their values in train.log; no value is written anywhere.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from olmix.backends import sbatchopts
from olmix.backends.base import Backend
from olmix.backends.slurm.query import QueryMixin
from olmix.backends.slurm.script import CHECKPOINT_INTERVAL, ScriptMixin, _comment, _pattern
from olmix.backends.types import BackendError, RunSpec
from olmix.fileio import write_atomic

IGNORED = ("cluster", "budget", "workspace", "priority", "beaker")
TIMEOUT_S = 120
# Filesystems and folders that are each machine's own (compute nodes see their own, not the login node's).
LOCAL_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs"})
LOCAL_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")
MOUNTS = Path("/proc/mounts")


# Settings go to sbatch as `--opt=value`; a value is one word of ordinary characters.
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.,:=/@+%|&!()\[\]*-]+$")


class SlurmBackend(ScriptMixin, QueryMixin, Backend):
    name = "slurm"
    submits_together = True  # one job array

    @classmethod
    def options_from_config(cls, config: Any, max_parallel: int | None = None) -> dict[str, Any]:
        return options_from_config(config, max_parallel)

    def __init__(
        self,
        partition: str | None = None,
        account: str | None = None,
        qos: str | None = None,
        time_limit: str | None = None,
        constraint: str | None = None,
        gpus_per_node: int | None = None,
        sbatch_args: Sequence[str] = (),
        nodes: int = 1,
        processes_per_node: int = 1,
        max_parallel: int | None = None,
        checkpoint_interval: int = CHECKPOINT_INTERVAL,
        python: str | None = None,
    ) -> None:
        self.settings = {
            "partition": partition,
            "account": account,
            "qos": qos,
            "time": time_limit,
            "constraint": constraint,
        }
        for key, value in self.settings.items():
            if value is not None and not SAFE_VALUE.fullmatch(value):
                raise BackendError(f"slurm {key} {value!r}: only letters, digits and _.,:=/@+%|&!()[]*- are allowed")
        for arg in sbatch_args:
            if not arg.startswith("-") or "\n" in arg or "\0" in arg:
                raise BackendError(f"slurm sbatch_args {arg!r}: each entry is one sbatch option, like --mem=8G")
        given = {"time_limit" if key == "time" else key for key, value in self.settings.items() if value is not None}
        for problem in sbatchopts.check(sbatch_args, given | ({"gpus_per_node"} if gpus_per_node else set())):
            raise BackendError(f"slurm sbatch_args {sbatch_args[problem.index]!r}: {problem.message}")
        for key, number in (
            ("nodes", nodes),
            ("processes_per_node", processes_per_node),
            ("max_parallel", 1 if max_parallel is None else max_parallel),
            ("checkpoint_interval", checkpoint_interval),
        ):
            if not isinstance(number, int) or number < 1:
                raise BackendError(f"slurm {key} {number!r}: a whole number of at least 1 is needed")
        self.gpus_per_node = gpus_per_node
        self.sbatch_args = list(sbatch_args)
        self.nodes = nodes
        self.processes_per_node = gpus_per_node or processes_per_node
        self.max_parallel = max_parallel
        self.checkpoint_interval = checkpoint_interval
        self.python = python or sys.executable
        self.calls: list[str] = []  # the Slurm commands this backend ran, in order (for measuring)

    # -- checking -----------------------------------------------------------------------------------------------

    def check(self, config: Any) -> list[str]:
        notes = []
        ignored = [key for key in IGNORED if key in config.model_fields_set]
        if ignored:
            notes.append(f"the slurm backend ignores {', '.join(ignored)} (use slurm.partition, slurm.account, ...)")
        slurm = getattr(config, "slurm", None)
        gpus_per_node = getattr(slurm, "gpus_per_node", None)
        if gpus_per_node is not None and "gpus" in config.model_fields_set and gpus_per_node != config.gpus:
            raise BackendError(f"slurm.gpus_per_node is {gpus_per_node} but gpus is {config.gpus}; set one of them")
        if "gpus" in config.model_fields_set and gpus_per_node is None:
            notes.append(
                f"gpus: {config.gpus} requests no GPU from Slurm (set slurm.gpus_per_node to request them); "
                f"{config.gpus} trainer process(es) per node train on whatever device the node has"
            )
        return notes

    def check_runs_dir(self, runs_dir: Path) -> list[str]:
        """A note when the runs folder is this machine's own, so that compute nodes would not see it."""
        where = _existing(runs_dir)
        kind = filesystem_type(where)
        folder = next((f for f in LOCAL_FOLDERS if where == Path(f) or Path(f) in where.parents), None)
        if kind not in LOCAL_FILESYSTEMS and folder is None:
            return []
        place = f"on a {kind} filesystem" if kind in LOCAL_FILESYSTEMS else f"under {folder}"
        return [
            f"the runs folder {runs_dir} is {place}, which is this machine's own: Slurm jobs read their plans and "
            "write their metrics in it, so on a cluster of other machines put --runs-dir on a filesystem the "
            "compute nodes share"
        ]

    # -- the batch script -------------------------------------------------------------------------------------

    # -- talking to Slurm -------------------------------------------------------------------------------------

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv[0])
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise BackendError(
                f"{argv[0]} not found: the slurm backend needs Slurm's client commands on PATH"
            ) from None
        except subprocess.TimeoutExpired:
            raise BackendError(f"{argv[0]} did not answer within {TIMEOUT_S} s") from None
        if check and out.returncode != 0:
            raise BackendError(f"{argv[0]} failed (exit {out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
        return out

    def _sbatch(self, argv: list[str]) -> str:
        out = self._run(argv)
        job_id = out.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise BackendError(f"sbatch answered {out.stdout.strip()!r}, not a job id")
        return job_id

    def submit(self, spec: RunSpec) -> str:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        argv = self.submit_argv(spec)
        self.write_script(spec, argv)
        return self._sbatch(argv)

    def array_dir(self, specs: Sequence[RunSpec]) -> Path:
        """Where a job array's dispatcher script and its index links live, beside its runs' folders."""
        return specs[0].run_dir.parent / f".slurm-{self._name(specs[0].token)[0]}"

    def array_argv(self, specs: Sequence[RunSpec]) -> list[str]:
        """The one sbatch command that submits `specs` as a job array."""
        array_dir = self.array_dir(specs)
        name = self._name(specs[0].token)[0]
        return self._submit_argv(name, _pattern(array_dir, "%a/slurm-%A_%a.out"), array_dir / "array.sh", len(specs))

    def submit_many(self, specs: Sequence[RunSpec]) -> list[str]:
        """Submit runs as one job array; their tokens must be `<array token>.0` … `.<n-1>`, in order.

        Returns each run's job id (`<array job id>_<index>`). One sbatch call,
        so either every run is submitted or none is.
        """
        if not specs:
            return []
        names = {self._name(spec.token) for spec in specs}
        array_name = self._name(specs[0].token)[0]
        if names != {(array_name, i) for i in range(len(specs))}:
            raise BackendError("runs submitted as one array need the tokens <token>.0 … <token>.<n-1>, in order")
        scripts = []
        for spec in specs:
            spec.run_dir.mkdir(parents=True, exist_ok=True)
            scripts.append(self.write_script(spec, None))
        array_dir = self.array_dir(specs)
        array_dir.mkdir(parents=True, exist_ok=True)
        for i, spec in enumerate(specs):
            link = array_dir / str(i)  # Slurm names outputs by index; each index leads to its run folder
            if not link.is_symlink():
                link.symlink_to(os.path.relpath(spec.run_dir, array_dir))
        dispatcher = array_dir / "array.sh"
        argv = self.array_argv(specs)
        lines = [
            "#!/bin/bash",
            _comment(f"olmix: {len(specs)} runs of group {specs[0].group} as one job array."),
            _comment("submitted with: " + shlex.join(argv)),
            'case "$SLURM_ARRAY_TASK_ID" in',
            *(f"  {i}) exec /bin/bash {shlex.quote(str(path))} ;;" for i, path in enumerate(scripts)),
            '  *) echo "olmix: no run for array index $SLURM_ARRAY_TASK_ID" >&2; exit 1 ;;',
            "esac",
        ]
        write_atomic(dispatcher, ("\n".join(lines) + "\n").encode())
        array_id = self._sbatch(argv)
        return [f"{array_id}_{i}" for i in range(len(specs))]

    def check_command(self, command: list[str]) -> None:
        """Nothing to check here: the trainer starts on a compute node, whose PATH and files are not this
        machine's (a program that is missing there fails its job, with the reason in the run's log)."""

    def cancel(self, job_id: str, run_dir: Path) -> None:
        self.cancel_many([(job_id, run_dir)])

    def cancel_many(self, jobs: list[tuple[str, Path]]) -> None:
        """One scancel for all; a job that already ended is not an error."""
        job_ids = [job_id for job_id, _ in jobs]
        if job_ids:
            out = self._run(["scancel", *job_ids], check=False)
            if out.returncode != 0 and "already completed" not in out.stderr and "Invalid job id" not in out.stderr:
                raise BackendError(f"scancel failed (exit {out.returncode}): {out.stderr.strip()}")


def options_from_config(config: Any, max_parallel: int | None = None) -> dict[str, Any]:
    """The backend options a config's `slurm` settings (and `nodes`, `gpus`) make; recorded with the launch.

    `max_parallel` (launch run --max-parallel) caps how many runs of a job array run at once.
    """
    slurm = getattr(config, "slurm", None)
    options: dict[str, Any] = {"nodes": config.nodes}
    processes = getattr(slurm, "gpus_per_node", None) or config.gpus
    if processes > 1:
        options["processes_per_node"] = processes
    if max_parallel is not None:
        options["max_parallel"] = max_parallel
    if slurm is not None:
        for key in ("partition", "account", "qos", "time_limit", "constraint", "gpus_per_node"):
            value = getattr(slurm, key, None)
            if value is not None:
                options[key] = value
        if "checkpoint_interval" in slurm.model_fields_set:
            options["checkpoint_interval"] = slurm.checkpoint_interval
        if slurm.sbatch_args:
            options["sbatch_args"] = list(slurm.sbatch_args)
    return options


def _existing(path: Path) -> Path:
    """`path` resolved, or its nearest folder that exists (a runs folder a launch has yet to make)."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _unescape(field: str) -> str:
    """A /proc/mounts field: space, tab, newline and backslash are written as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def filesystem_type(path: Path, mounts: Path | None = None) -> str | None:
    """The type of the filesystem `path` (resolved, existing) is on: the longest mount point above it in
    /proc/mounts (or `mounts`). None where that cannot be read."""
    try:
        lines = (mounts or MOUNTS).read_text(errors="replace").splitlines()
    except OSError:
        return None
    best: tuple[int, str | None] = (-1, None)
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(_unescape(fields[1]))
        if (point == path or point in path.parents) and len(point.parts) >= best[0]:
            best = (len(point.parts), fields[2])
    return best[1]
