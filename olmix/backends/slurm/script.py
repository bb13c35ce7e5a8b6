"""The Slurm batch script of a run: what it runs (srun, torchrun across nodes), what it records (started.json,
exit.json) and the sbatch arguments that submit it; shell-quoted throughout."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from olmix.backends.types import BackendError, RunSpec
from olmix.fileio import write_atomic

SCRIPT = "slurm.sh"


CHECKPOINT_INTERVAL = 100  # steps; what a requeue may lose at most


RDZV_PORT_BASE = 29500  # torchrun's rendezvous port: this plus the job id modulo RDZV_PORT_SPAN


RDZV_PORT_SPAN = 10000


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


NAME_PREFIX = "olmix-"
TOKEN = re.compile(r"^([A-Za-z0-9_-]+)(?:\.(\d+))?$")


class ScriptMixin:
    """The batch-script half of the Slurm backend (SlurmBackend sets these in its __init__)."""

    settings: dict[str, str | None]
    gpus_per_node: int | None
    sbatch_args: list[str]
    nodes: int
    processes_per_node: int
    max_parallel: int | None
    checkpoint_interval: int
    python: str

    def array_argv(self, specs: Sequence[RunSpec]) -> list[str]:
        raise NotImplementedError

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
