"""slurm.sbatch_args read as sbatch reads them: held against the installed sbatch's own option parser.

The real sbatch is asked without a cluster: a throwaway slurm.conf lets it start, and every probe ends
with an option no sbatch has, so it stops at its option parser (getopt_long) and never submits.
What getopt says (unrecognized, ambiguous with its list of possibilities, takes no argument) is
sbatch's table; anything else means the option was read.
"""

from __future__ import annotations

import os
import re
import shutil
import string
import subprocess
from functools import cache
from pathlib import Path

import pytest

from olmix.backends import BackendError
from olmix.backends.sbatchopts import ALIASES, LONG, OWNED, SHORT, check, parse
from olmix.backends.slurm import SlurmBackend
from olmix.errors import ConfigError
from olmix.loading.config import load_config
from tests.conftest import REPO

BOGUS = "--zzz-no-such-option"
_needs_sbatch = pytest.mark.skipif(shutil.which("sbatch") is None, reason="sbatch is not installed")


@pytest.fixture(scope="module")
def sbatch_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    conf = tmp_path_factory.mktemp("slurmconf") / "slurm.conf"
    conf.write_text(
        "ClusterName=probe\nSlurmctldHost=localhost\nNodeName=localhost CPUs=1\nPartitionName=p Nodes=localhost\n"
    )
    return {**os.environ, "SLURM_CONF": str(conf)}


def _sbatch(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        ["sbatch", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=60
    )
    return out.stdout + out.stderr


def _verdict(env: dict[str, str], arg: str) -> tuple[str, list[str]]:
    """What the real sbatch makes of one option: ("unknown" | "ambiguous" | "read", its possibilities)."""
    out = _sbatch(env, arg, BOGUS)
    if ("unrecognized option" in out and BOGUS not in out) or "invalid option" in out:
        return "unknown", []
    if match := re.search(r"is ambiguous; possibilities:(.*)", out):
        return "ambiguous", re.findall(r"'--([^']+)'", match.group(1))
    return "read", []


def _installed_long_options(env: dict[str, str]) -> dict[str, str]:
    """Every long option of the installed sbatch, found letter by letter, and the kind of value it takes."""
    names: set[str] = set()

    def explore(prefix: str) -> None:
        verdict, possible = _verdict(env, f"--{prefix}=x")
        if verdict == "ambiguous":
            names.update(possible)  # getopt lists every option the prefix may name
        elif verdict == "read":
            longer = [
                c
                for c in string.ascii_lowercase + string.digits + "-"
                if _verdict(env, f"--{prefix}{c}=x")[0] != "unknown"
            ]
            if not longer:
                names.add(prefix)
            for c in longer:
                explore(prefix + c)

    for letter in string.ascii_lowercase:
        explore(letter)
    return {name: _long_kind(env, name) for name in names}


def _long_kind(env: dict[str, str], name: str) -> str:
    if "doesn't allow an argument" in _sbatch(env, f"--{name}=x", BOGUS):
        return "none"
    # A required value takes the next word (--version here); an optional one only `=value`.
    return "optional" if re.search(r"slurm\S* \d", _sbatch(env, f"--{name}", "--version", BOGUS)) else "required"


def _short_kind(env: dict[str, str], letter: str) -> str | None:
    out = _sbatch(env, f"-{letter}", "--version", BOGUS)
    if f"invalid option -- '{letter}'" in out:
        return None
    if not re.search(r"slurm\S* \d|Usage:", out):  # the next word (--version) was taken as its value
        return "required"
    attached = _sbatch(env, f"-{letter}%", BOGUS)
    if re.search(r"slurm\S* \d|Usage:", attached):
        return "none"  # -h and -V answer at once, whatever follows; --help shows they take no value
    return "none" if "invalid option -- '%'" in attached else "optional"


@cache
def _installed(env_conf: str) -> dict[str, str]:
    return _installed_long_options({**os.environ, "SLURM_CONF": env_conf})


@_needs_sbatch
@pytest.mark.slow
def test_the_option_table_is_the_installed_sbatchs(sbatch_env: dict[str, str]) -> None:
    assert _installed(sbatch_env["SLURM_CONF"]) == LONG
    shorts = {c: kind for c in string.ascii_letters + string.digits if (kind := _short_kind(sbatch_env, c))}
    assert shorts == {letter: LONG[name] for letter, name in SHORT.items()}
    # which long option each letter is: sbatch --help pairs them ("  -J, --job-name=jobname ...")
    helped = dict(re.findall(r"^\s+-(\w),?\s+--([a-z-]+)", _sbatch(sbatch_env, "--help"), re.M))
    assert helped == SHORT
    listed = set(re.findall(r"--([a-z][a-z-]*[a-z])", _sbatch(sbatch_env, "--help") + _sbatch(sbatch_env, "--usage")))
    assert listed <= set(LONG)


@_needs_sbatch
@pytest.mark.slow
def test_every_spelling_sbatch_reads_as_an_owned_option_is_refused(sbatch_env: dict[str, str]) -> None:
    owned = {name for name in LONG if ALIASES.get(name, name) in OWNED}
    checked = 0
    for name in sorted(owned):
        value = "" if LONG[name] == "none" else "=x"
        for end in range(1, len(name) + 1):
            spelling = f"--{name[:end]}{value}"
            verdict, _ = _verdict(sbatch_env, spelling)
            problems = check([spelling])
            if verdict == "unknown":
                continue
            assert problems, f"{spelling}: sbatch reads it ({verdict}), olmix lets it through"
            if verdict == "read" and _resolves_to_owned(spelling):
                checked += 1
                assert "is refused" in problems[0].message, (spelling, problems)
            else:
                assert "ambiguous" in problems[0].message, (spelling, problems)
    assert checked >= len(owned)  # each name itself at least
    for letter, name in SHORT.items():
        if ALIASES.get(name, name) in OWNED:
            forms = (
                [[f"-{letter}"]] if LONG[name] == "none" else [[f"-{letter}x"], [f"-H{letter}x"], [f"-{letter}", "-x"]]
            )
            for form in forms:
                assert any("is refused" in p.message for p in check(form)), form


def _resolves_to_owned(spelling: str) -> bool:
    options, _ = parse([spelling])
    return bool(options) and ALIASES.get(options[0].name, options[0].name) in OWNED


@_needs_sbatch
@pytest.mark.slow
def test_harmless_options_pass_and_sbatch_reads_them_too(sbatch_env: dict[str, str]) -> None:
    for args in (
        ["--mem=1G"],
        ["--time=10"],
        ["-c", "2"],
        ["-c2"],
        ["--qos=x"],
        ["--mail-type=END"],
        ["-H"],
        ["--cpus-per-t=2"],
    ):
        assert check(args) == [], args
        out = _sbatch(sbatch_env, *args, BOGUS)
        assert "unrecognized option '" + BOGUS in out, (args, out)  # sbatch read them all and reached the end


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["--arr=0-3"], "--array"),
        (["--job=name"], "--job-name"),
        (["-Jname"], "-J"),
        (["--out=/elsewhere/%j.out"], "--output"),
        (["-e/elsewhere"], "-e"),
        (["-a0-3"], "-a"),
        (["-HJname"], "-J"),
        (["-vW"], "-W"),
        (["--clu=other"], "ambiguous"),
        (["--clusters=other"], "--clusters"),
        (["--cluster=other"], "--clusters"),
        (["--tasks-per=4"], "--ntasks-per-node"),
        (["--chdir=/tmp"], "--chdir"),
        (["--open=truncate"], "--open-mode"),
        (["--pars"], "--parsable"),
        (["--wr=rm -rf /"], "--wrap"),
        (["--exp=NONE"], "ambiguous"),
        (["--export=NONE"], "--export"),
        (["--no-req"], "--no-requeue"),
        (["--test"], "--test-only"),
        (["--mem"], "needs a value"),
        (["--hold=1"], "takes no value"),
        (["--bogus"], "no option --bogus"),
        (["-P"], "no option -P"),
        (["--comment", "--job-name=x"], None),  # the value of --comment, as sbatch reads it
        (["--comment"], "needs a value"),
        (["--", "-x"], "ends sbatch's options"),
        (["-"], "is not an option"),
    ],
)
def test_an_owned_option_is_refused_however_it_is_spelled(args: list[str], refused: str | None) -> None:
    problems = check(args)
    if refused is None:
        assert problems == []
    else:
        assert problems and refused in problems[0].message, problems


def test_an_option_a_slurm_setting_sets_is_refused_only_where_that_setting_is_set() -> None:
    assert check(["--part=debug"]) == []
    assert "slurm.partition sets it" in check(["--part=debug"], ["partition"])[0].message
    assert "slurm.time_limit sets it" in check(["-t10"], ["time_limit"])[0].message
    with pytest.raises(BackendError, match=r"slurm\.time_limit sets it"):
        SlurmBackend(time_limit="10", sbatch_args=["--time=20"])
    with pytest.raises(BackendError, match="--job-name"):
        SlurmBackend(sbatch_args=["--job=x"])


def test_sbatch_args_are_refused_in_the_config_at_their_line(tmp_path: Path) -> None:
    base = (REPO / "config/examples/minimal.yaml").read_text()
    config = tmp_path / "c.yaml"
    config.write_text(
        base + "slurm:\n  partition: debug\n  sbatch_args:\n    - --mem=1G\n    - -Jmine\n    - --part=x\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    line = len(base.splitlines()) + 5  # the `- -Jmine` line
    found = [(p.line, p.column, p.path, p.message) for p in caught.value.problems]
    assert [(f[0], f[1], f[2]) for f in found] == [
        (line, 7, ("slurm", "sbatch_args", 1)),
        (line + 1, 7, ("slurm", "sbatch_args", 2)),
    ]
    assert "--job-name" in found[0][3] and "slurm.partition" in found[1][3]
