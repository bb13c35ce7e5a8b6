"""The pre-commit hooks: the published olmix-validate hook really runs, and this repository's hooks exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # runs the published pre-commit hooks in subprocesses

GOOD = "name: x\nsources:\n  - name: a\n    paths: [p]\n"
BAD = "name: x\nsources:\n  - name: a\n    paths: [p]\n    quality:\n      - {name: h, paths: [q]}\n"


def _hooks(name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((REPO / name).read_text(encoding="utf-8"))
    hooks: list[dict[str, Any]] = data if isinstance(data, list) else [h for r in data["repos"] for h in r["hooks"]]
    return hooks


def _published() -> dict[str, Any]:
    return next(h for h in _hooks(".pre-commit-hooks.yaml") if h["id"] == "olmix-validate")


def _run_entry(files: list[Path]) -> subprocess.CompletedProcess[str]:
    # pre-commit installs the repository into the hook's environment; here that is this interpreter's.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [*shlex.split(_published()["entry"]), *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)


def test_published_hook_selects_yaml_files() -> None:
    pattern = re.compile(_published()["files"])
    assert pattern.search("configs/a.yaml") and pattern.search("b.yml")
    assert not pattern.search("README.md")


def test_published_hook_passes_good_files(write: Callable[[str, str], Path]) -> None:
    result = _run_entry([write("good.yaml", GOOD), write("also.yml", GOOD)])
    assert result.returncode == 0, result.stderr


def test_published_hook_fails_bad_files_naming_the_line(write: Callable[[str, str], Path]) -> None:
    good, bad = write("good.yaml", GOOD), write("bad.yaml", BAD)
    result = _run_entry([good, bad])
    assert result.returncode == 1
    assert f"{bad}:3:5: $.sources[0]: a source has exactly one of" in result.stderr
    assert str(good) not in result.stderr


@pytest.mark.parametrize("hook", ["check-jsonschema", "check-metaschema", "olmix-validate", "ruff", "check-generated"])
def test_repository_hooks(hook: str) -> None:
    found = {h["id"]: h for h in _hooks(".pre-commit-config.yaml")}
    assert hook in found
    program = shlex.split(found[hook]["entry"])[0]
    assert program == "make" or (REPO / program).is_file(), program
