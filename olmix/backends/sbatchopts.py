"""Read `slurm.sbatch_args` the way sbatch reads its command line, and refuse what olmix owns.

sbatch parses its options with glibc's getopt_long: a long option may be
abbreviated to any prefix that names one option only (`--arr=0-3` is
`--array=0-3`; an exact name wins over longer ones, `--mem` is not
`--mem-per-cpu`), takes its value as `--opt=value` or, when the value is
required, as the next word; short options take a required value attached
(`-Jname`) or as the next word, an optional one only attached (`-kx`), and
cluster (`-HJname` is `-H -J name`). So comparing spellings is not enough:
every entry is resolved against sbatch's own option table here, and an
unknown or ambiguous option is refused too (sbatch would refuse it, or a
newer sbatch might read it as something olmix owns).

The table is Slurm 22.05's; tests/unit/backends/test_sbatchopts.py holds it against the
installed sbatch, option by option.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

Arg = Literal["none", "required", "optional"]

_NONE = (
    "contiguous help hold ignore-pbs no-requeue overcommit oversubscribe parsable quiet reboot requeue spread-job "
    "test-only usage use-min-nodes verbose version wait"
)
_OPTIONAL = "exclusive get-user-env nice no-kill propagate"
_REQUIRED = (
    "account acctg-freq array batch bb bbf begin chdir cluster cluster-constraint clusters comment constraint "
    "container context core-spec cores-per-socket cpu-freq cpus-per-gpu cpus-per-task deadline delay-boot dependency "
    "distribution error exclude export export-file extra-node-info gid gpu-bind gpu-freq gpus gpus-per-node "
    "gpus-per-socket gpus-per-task gres gres-flags hint input job-name kill-on-invalid-dep licenses mail-type "
    "mail-user mcs-label mem mem-bind mem-per-cpu mem-per-gpu mincpus network nodefile nodelist nodes ntasks "
    "ntasks-per-core ntasks-per-gpu ntasks-per-node ntasks-per-socket ntasks-per-tres open-mode output partition "
    "power prefer priority profile qos reservation signal sockets-per-node switches tasks-per-node thread-spec "
    "threads-per-core time time-min tmp uid wait-all-nodes wckey wrap"
)
# sbatch's long options (Slurm 22.05) and whether each takes a value.
LONG: dict[str, Arg] = {
    **dict.fromkeys(_NONE.split(), "none"),
    **dict.fromkeys(_OPTIONAL.split(), "optional"),
    **dict.fromkeys(_REQUIRED.split(), "required"),
}
# sbatch's short options and the long option each one is.
SHORT: dict[str, str] = {
    "a": "array",
    "A": "account",
    "b": "begin",
    "B": "extra-node-info",
    "c": "cpus-per-task",
    "C": "constraint",
    "d": "dependency",
    "D": "chdir",
    "e": "error",
    "F": "nodefile",
    "G": "gpus",
    "h": "help",
    "H": "hold",
    "i": "input",
    "J": "job-name",
    "k": "no-kill",
    "L": "licenses",
    "m": "distribution",
    "M": "clusters",
    "n": "ntasks",
    "N": "nodes",
    "o": "output",
    "O": "overcommit",
    "p": "partition",
    "q": "qos",
    "Q": "quiet",
    "s": "oversubscribe",
    "S": "core-spec",
    "t": "time",
    "v": "verbose",
    "V": "version",
    "w": "nodelist",
    "W": "wait",
    "x": "exclude",
}
# Two names of one option.
ALIASES = {"cluster": "clusters", "tasks-per-node": "ntasks-per-node"}

_JOB = "olmix submits its own batch script, one job per run (a group: one job array)"
_OUT = "olmix writes each job's output in its run folder"
# What olmix decides itself, and why; sbatch_args may not change it.
OWNED: dict[str, str] = {
    "job-name": "olmix names the job olmix-<token>, by which a resumed launch finds it",
    "array": _JOB,
    "wrap": _JOB,
    "output": _OUT,
    "error": _OUT,
    "open-mode": _OUT,
    "chdir": "olmix runs the job from the folder it was launched in",
    "parsable": "olmix reads the job id sbatch answers",
    "export": "olmix passes the environment (--export=ALL) so that secrets reach the job by name",
    "clusters": "olmix asks the default cluster (squeue, sacct, scancel) for its jobs",
    "nodes": "olmix sets --nodes from the config's `nodes`",
    "ntasks": "olmix starts one task per node",
    "ntasks-per-node": "olmix starts one task per node",
    "requeue": "olmix sets --requeue, so that a preempted run resumes from its checkpoint",
    "no-requeue": "olmix sets --requeue, so that a preempted run resumes from its checkpoint",
    "wait": "sbatch must answer as soon as the job is queued",
    "test-only": "it would submit nothing",
    "help": "it would submit nothing",
    "usage": "it would submit nothing",
    "version": "it would submit nothing",
}
# Options a slurm setting of the config sets: refused where that setting is set too.
SETTINGS = {
    "partition": "partition",
    "account": "account",
    "qos": "qos",
    "time_limit": "time",
    "constraint": "constraint",
    "gpus_per_node": "gpus-per-node",
}


@dataclass(frozen=True)
class Option:
    """One option as sbatch reads it: its long name, its value, and the entries (indices) it came from."""

    name: str
    value: str | None
    spelled: str
    entries: tuple[int, ...]


@dataclass(frozen=True)
class ArgProblem:
    """Why an entry of sbatch_args is refused; `index` is the entry's position."""

    index: int
    message: str


def resolve(word: str) -> str:
    """The long option `word` (without `--`) names: an exact name, else the one option it abbreviates.

    Raises ValueError naming what went wrong: no such option, or several it may abbreviate.
    """
    if word in LONG:
        return word
    matches = sorted(name for name in LONG if name.startswith(word))
    if not matches:
        raise ValueError(f"sbatch has no option --{word}")
    if len(matches) > 1:
        raise ValueError(f"--{word} is ambiguous: it abbreviates " + ", ".join(f"--{m}" for m in matches))
    return matches[0]


def parse(args: Sequence[str]) -> tuple[list[Option], list[ArgProblem]]:
    """The options sbatch reads from `args` placed before the batch script, and the entries it cannot read."""
    options: list[Option] = []
    problems: list[ArgProblem] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            what = "ends sbatch's options" if arg == "--" else "is not an option"
            problems.append(ArgProblem(i, f"{arg!r} {what}: sbatch would take what follows as the batch script"))
            i += 1
            continue
        if arg.startswith("--"):
            word, eq, value = arg[2:].partition("=")
            try:
                name = resolve(word)
            except ValueError as exc:
                problems.append(ArgProblem(i, str(exc)))
                i += 1
                continue
            kind = LONG[name]
            if eq and kind == "none":
                problems.append(ArgProblem(i, f"--{name} takes no value"))
            elif not eq and kind == "required":
                if i + 1 == len(args):
                    problems.append(ArgProblem(i, f"--{name} needs a value: write --{name}=VALUE"))
                else:
                    options.append(Option(name, args[i + 1], f"--{word}", (i, i + 1)))
                    i += 1
            else:
                options.append(Option(name, value if eq else None, f"--{word}", (i,)))
            i += 1
            continue
        j = 1  # a cluster of short options: each letter an option, until one takes the rest as its value
        while j < len(arg):
            letter = arg[j]
            if letter not in SHORT:
                problems.append(ArgProblem(i, f"sbatch has no option -{letter} (in {arg!r})"))
                break
            name = SHORT[letter]
            kind, rest = LONG[name], arg[j + 1 :]
            if kind == "none":
                options.append(Option(name, None, f"-{letter}", (i,)))
                j += 1
                continue
            if rest or kind == "optional":
                options.append(Option(name, rest or None, f"-{letter}", (i,)))
            elif i + 1 == len(args):
                problems.append(ArgProblem(i, f"-{letter} (--{name}) needs a value: write -{letter}VALUE"))
            else:
                options.append(Option(name, args[i + 1], f"-{letter}", (i, i + 1)))
                i += 1
            break
        i += 1
    return options, problems


def check(args: Sequence[str], settings: Collection[str] = ()) -> list[ArgProblem]:
    """Every problem of `args` as sbatch_args: unreadable entries, and options olmix owns.

    `settings` are the config's slurm settings that are set (`partition`, `time_limit`, ...): the option
    each one sets is refused in sbatch_args too, so that one value is not overridden by another.
    """
    options, problems = parse(args)
    set_by = {SETTINGS[key]: key for key in settings if key in SETTINGS}
    for option in options:
        name = ALIASES.get(option.name, option.name)
        how = option.spelled if option.spelled.lstrip("-") == name else f"{option.spelled} (sbatch's --{name})"
        if (why := OWNED.get(name)) is not None:
            problems.append(ArgProblem(option.entries[0], f"{how} is refused: {why}"))
        elif (key := set_by.get(name)) is not None:
            problems.append(ArgProblem(option.entries[0], f"{how} is refused: slurm.{key} sets it; set it once"))
    return sorted(problems, key=lambda p: p.index)
