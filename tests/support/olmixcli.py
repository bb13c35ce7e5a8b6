"""The `olmix` command for tests, run two ways: in this process as click runs it, or as a real process.

A test that takes the `run_olmix` fixture (tests/conftest.py) runs both ways
under `make test`, and only in this process under `make test-fast`: what a
real process adds (its own interpreter, its exit status, the raw bytes it
writes) stays checked without each such test starting one in the fast loop.
Both ways give a CompletedProcess: stdout decoded with surrogateescape (a raw
byte survives decoding, so a check for control characters sees it), stderr
decoded strictly.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

OLMIX = str(Path(sys.executable).with_name("olmix"))
Env = Mapping[str, str | None]


class Run(Protocol):
    def __call__(
        self, *args: str, cwd: Path | None = None, env: Env | None = None
    ) -> subprocess.CompletedProcess[str]: ...


def in_process(*args: str, cwd: Path | None = None, env: Env | None = None) -> subprocess.CompletedProcess[str]:
    """`olmix ARGS` through click's test runner; an exception olmix let through is raised, as a user would see it."""
    from click.testing import CliRunner

    from olmix.cli import main
    from olmix.loading import inputs

    try:
        with contextlib.chdir(cwd or Path.cwd()):
            result = CliRunner().invoke(main, list(args), env=dict(env or {}))
    finally:  # what the command set for its own process ends with it, as its process would
        inputs.set_max_config_bytes(None)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"olmix {' '.join(args)} ended in a traceback") from result.exception
    return subprocess.CompletedProcess(
        ["olmix", *args],
        result.exit_code,
        result.stdout_bytes.decode("utf-8", "surrogateescape"),
        result.stderr_bytes.decode(),
    )


def in_subprocess(*args: str, cwd: Path | None = None, env: Env | None = None) -> subprocess.CompletedProcess[str]:
    """`olmix ARGS` as a process of its own, with stdin closed."""
    environ = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    proc = subprocess.run([OLMIX, *args], capture_output=True, cwd=cwd, env=environ, stdin=subprocess.DEVNULL)
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8", "surrogateescape"), proc.stderr.decode()
    )
