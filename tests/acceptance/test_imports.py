"""Importing olmix as a library changes nothing process-wide; its programs make their own choices."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

IMPORT_ALL = """
import importlib, json, os, pkgutil, sys
before = dict(os.environ)
import olmix, olmix_generated
names = [m.name for pkg in (olmix, olmix_generated) for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
for name in names:
    importlib.import_module(name)
from olmix_generated.launch_plan import LaunchPlan
LaunchPlan.model_json_schema()
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
print(json.dumps({"imported": len(names), "changed": changed}))
"""

PROGRAM = """
import os, sys
from olmix.cli import main
try:
    main(["schema"], standalone_mode=False)
finally:
    print(os.environ.get("PYDANTIC_DISABLE_PLUGINS"), file=sys.stderr)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    return env


def test_importing_every_olmix_module_changes_no_environment_variable() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["imported"] > 30
    assert report["changed"] == []


def test_the_olmix_program_skips_the_pydantic_plugin_search_unless_the_user_chose() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "__all__"
    chosen = {**_env(), "PYDANTIC_DISABLE_PLUGINS": "logfire"}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=REPO, env=chosen, capture_output=True, text=True, timeout=60
    )
    assert done.stderr.strip() == "logfire"
