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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from olmix.backends import sbatchopts
from olmix.backends.base import Backend
from olmix.backends.types import BackendError, RunSpec, RunState, Status, run_file
from olmix.fileio import write_atomic

SCRIPT = "slurm.sh"
NAME_PREFIX = "olmix-"
IGNORED = ("cluster", "budget", "workspace", "priority", "beaker")
TIMEOUT_S = 120
CHECKPOINT_INTERVAL = 100  # steps; what a requeue may lose at most
RDZV_PORT_BASE = 29500  # torchrun's rendezvous port: this plus the job id modulo RDZV_PORT_SPAN
RDZV_PORT_SPAN = 10000
# Filesystems and folders that are each machine's own (compute nodes see their own, not the login node's).
LOCAL_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs"})
LOCAL_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")
MOUNTS = Path("/proc/mounts")

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

# Settings go to sbatch as `--opt=value`; a value is one word of ordinary characters.
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.,:=/@+%|&!()\[\]*-]+$")
TOKEN = re.compile(r"^([A-Za-z0-9_-]+)(?:\.(\d+))?$")
# Masks the values of the named variables in the trainer's output, as the local runner does (run by the job's Python).
MASK = (
    "import os, sys\n"
    "from olmix.backends.secrets import Masker, variants\n"
    "masker = Masker(v for n in sys.argv[1:] if (s := os.environb.get(n.encode())) for v in variants(s))\n"
    "out = sys.stdout.buffer\n"
    "while chunk := sys.stdin.buffer.read1(65536):\n"
    "    out.write(masker.feed(chunk))\n"
    "    out.flush()\n"
    "out.write(masker.close())\n"
)


def _comment(text: str) -> str:
    """One comment line whatever `text` holds: control characters shown escaped."""
    return "# " + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _pattern(folder: Path, name: str) -> str:
    """An sbatch --output pattern: `name` (with Slurm's %j, %A, %a) in `folder`, whose own % are escaped."""
    return str(folder).replace("%", "%%") + "/" + name


def _json_record(path: Path, fields: dict[str, tuple[str, str]]) -> str:
    """A shell line writing a JSON object to path atomically: {key: (printf conversion, shell value)}.

    The values are the job's own (Slurm's ids, a number, the time), never a config string.
    """
    form = ", ".join(f'"{key}": {conv}' for key, (conv, _) in fields.items())
    values = " ".join(f'"{value}"' for _, value in fields.values())
    tmp = shlex.quote(f"{path}.tmp")
    return f"printf '{{{form}}}\\n' {values} > {tmp} && mv -f {tmp} {shlex.quote(str(path))}"


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


class SlurmBackend(Backend):
    name = "slurm"
    submits_together = True  # one job array

    @classmethod
    def options_from_config(cls, config: Any, max_parallel: int | None = None) -> dict[str, Any]:
        return options_from_config(config, max_parallel)

    # None: not yet known whether the cluster keeps accounting (sacct) or only a completion log (sacct -c).
    _sacct_flags: list[str] | None = None

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

    def sbatch_options(self) -> list[str]:
        options = [f"--{key}={value}" for key, value in self.settings.items() if value is not None]
        if self.gpus_per_node:
            options.append(f"--gpus-per-node={self.gpus_per_node}")
        return [f"--nodes={self.nodes}", "--ntasks-per-node=1", "--requeue", *options, *self.sbatch_args]

    def _submit_argv(self, name: str, output: str, script: Path, array: int | None = None) -> list[str]:
        head = ["sbatch", "--parsable", f"--job-name={name}", f"--output={output}", "--open-mode=append"]
        head += ["--export=ALL"]  # secrets reach the job from the submitting environment, by name
        if array is not None:
            head.append(f"--array=0-{array - 1}" + (f"%{self.max_parallel}" if self.max_parallel else ""))
        return [*head, *self.sbatch_options(), str(script)]

    @staticmethod
    def _name(token: str) -> tuple[str, int | None]:
        match = TOKEN.fullmatch(token)
        if match is None:
            raise BackendError(f"submission token {token!r} is not a word of letters, digits, _ and -")
        index = match.group(2)
        return NAME_PREFIX + match.group(1), (int(index) if index is not None else None)

    def describe(self, spec: RunSpec) -> str:
        """The batch script the run is submitted with (a dry run shows it)."""
        return f"# {spec.run_dir / SCRIPT}\n" + self.script(spec, self.submit_argv(spec))

    def describe_many(self, specs: Sequence[RunSpec]) -> tuple[list[str | None], str | None]:
        """The runs' batch scripts and, for more than one run, the one sbatch that submits them as an array."""
        if len(specs) < 2:
            return [self.describe(spec) for spec in specs], None
        texts: list[str | None] = [f"# {spec.run_dir / SCRIPT}\n" + self.script(spec) for spec in specs]
        return texts, f"the {len(specs)} runs are submitted as one job array:\n" + shlex.join(self.array_argv(specs))

    def script(self, spec: RunSpec, submit_argv: list[str] | None = None) -> str:
        """The batch script of one run: what the job executes, every config string quoted."""
        q = shlex.quote
        run_dir = spec.run_dir
        lines = [
            "#!/bin/bash",
            _comment(f"olmix run {spec.run} of group {spec.group}, written by olmix for the slurm backend."),
        ]
        if submit_argv:
            lines.append(_comment("submitted with: " + shlex.join(submit_argv)))
        lines += [
            "set -u",
            f"run_dir={q(str(run_dir))}",
            'job_id="${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}"',
            'job_id="${job_id:-$SLURM_JOB_ID}"',
        ]
        for key, value in spec.env.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise BackendError(f"env name {key!r} cannot be exported by a shell script")
            lines.append(f"export {key}={q(value)}")
        for name in spec.secrets:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise BackendError(f"secret name {name!r} cannot be read by a shell script")
            lines.append(
                f'if [ -z "${{{name}+set}}" ]; then echo {q(f"olmix: secret {name} is not in the job environment")}'
                " >&2; exit 78; fi"
            )
        lines.append(
            _json_record(
                run_dir / "started.json",
                {
                    "job_id": ('"%s"', "$job_id"),
                    "raw_job_id": ('"%s"', "$SLURM_JOB_ID"),
                    "restarts": ("%d", "${SLURM_RESTART_COUNT:-0}"),
                    "started_at": ("%d", "$(date +%s)"),
                },
            )
        )
        # An earlier attempt's exit record (a requeued job runs this script again) answers nothing now.
        lines.append(f"rm -f {shlex.quote(str(run_dir / 'exit.json'))}")
        launch, trainer = self.trainer_lines(spec.command)
        lines += launch
        log = q(str(run_dir / "train.log"))
        if spec.secrets:
            mask = shlex.join([self.python, "-u", "-c", MASK, *spec.secrets])
            lines += ["set -o pipefail", f"{trainer} 2>&1 | {mask} >> {log}", "code=${PIPESTATUS[0]}"]
        else:
            lines += [f"{trainer} >> {log} 2>&1", "code=$?"]
        lines.append(
            _json_record(
                run_dir / "exit.json",
                {"job_id": ('"%s"', "$job_id"), "exit_code": ("%d", "$code"), "finished_at": ("%d", "$(date +%s)")},
            )
        )
        lines.append('exit "$code"')
        return "\n".join(lines) + "\n"

    @property
    def distributed(self) -> bool:
        return self.nodes > 1 or self.processes_per_node > 1

    def trainer_command(self, command: list[str]) -> list[str]:
        """The run's command, with `--checkpoint-interval` added for olmix.train unless it sets one."""
        from olmix.training.olmocore import runs_olmix_train

        if not runs_olmix_train(command) or any(a.split("=")[0] == "--checkpoint-interval" for a in command):
            return list(command)
        return [*command, "--checkpoint-interval", str(self.checkpoint_interval)]

    def trainer_lines(self, command: list[str]) -> tuple[list[str], str]:
        """Shell lines to run first, and the trainer's line (without its redirections).

        One process: `srun` starts the command as one task. More (nodes or processes per node): `srun`
        starts one torchrun agent per node, agents meet at the first node and each starts its processes.
        """
        command = self.trainer_command(command)
        if not self.distributed:
            return [], "srun --ntasks=1 --nodes=1 --kill-on-bad-exit=1 " + shlex.join(command)
        if len(command) >= 3 and command[1] == "-m":  # a Python running a module: torchrun runs the module
            python, target = command[0], command[1:]
        else:  # any other program: torchrun starts it as it is
            python, target = self.python, ["--no-python", *command]
        setup = [
            "# torchrun (python -m torch.distributed.run): one agent per node, meeting at the job's first node",
            'head_node="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
            f'rdzv_port="$(( {RDZV_PORT_BASE} + SLURM_JOB_ID % {RDZV_PORT_SPAN} ))"',
        ]
        line = (
            'srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 --kill-on-bad-exit=1 '
            f"{shlex.quote(python)} -m torch.distributed.run "
            f'--nnodes="$SLURM_JOB_NUM_NODES" --nproc-per-node={self.processes_per_node} '
            '--rdzv-backend=c10d --rdzv-endpoint="$head_node:$rdzv_port" --rdzv-id="$SLURM_JOB_ID" '
            + shlex.join(target)
        )
        return setup, line

    def submit_argv(self, spec: RunSpec) -> list[str]:
        """The sbatch command that submits one run on its own (job name: olmix-<its whole token>)."""
        self._name(spec.token)
        name = NAME_PREFIX + spec.token
        return self._submit_argv(name, _pattern(spec.run_dir, "slurm-%j.out"), spec.run_dir / SCRIPT)

    def write_script(self, spec: RunSpec, argv: list[str] | None) -> Path:
        path = spec.run_dir / SCRIPT
        write_atomic(path, self.script(spec, argv).encode())
        path.chmod(0o755)
        return path

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
        flags = SlurmBackend._sacct_flags
        out = self._run([*base, *(flags or [])], check=False)
        if out.returncode != 0 and flags is None and "accounting storage is disabled" in out.stderr + out.stdout:
            # No accounting database: read the job-completion log instead (and remember that).
            SlurmBackend._sacct_flags = flags = ["-c"]
            out = self._run([*base, *flags], check=False)
        if out.returncode != 0:
            raise BackendError(f"sacct failed (exit {out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
        if flags is None:
            SlurmBackend._sacct_flags = []
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

    def check_command(self, command: list[str]) -> None:
        """Nothing to check here: the trainer starts on a compute node, whose PATH and files are not this
        machine's (a program that is missing there fails its job, with the reason in the run's log)."""

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

    def cancel(self, job_id: str, run_dir: Path) -> None:
        self.cancel_many([(job_id, run_dir)])

    def cancel_many(self, jobs: list[tuple[str, Path]]) -> None:
        """One scancel for all; a job that already ended is not an error."""
        job_ids = [job_id for job_id, _ in jobs]
        if job_ids:
            out = self._run(["scancel", *job_ids], check=False)
            if out.returncode != 0 and "already completed" not in out.stderr and "Invalid job id" not in out.stderr:
                raise BackendError(f"scancel failed (exit {out.returncode}): {out.stderr.strip()}")


def _array_of(job_id: str) -> str:
    """The array job id of an array task's id (`123_4` → `123`); any other id itself."""
    return job_id.split("_")[0]


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
