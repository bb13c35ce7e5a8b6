"""Launch helpers the launch, record, secrets and progress tests share: a plan, its group, a finished wait."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from olmix.backends.local import LocalBackend
from olmix.launch import launcher
from tests.conftest import REPO

CONFIG = REPO / "config/examples/minimal.yaml"


RUNS = ["run-a", "run-b", "run-c"]


def make_plan(runs: list[str] = RUNS, config: Path = CONFIG) -> dict[str, Any]:
    return {
        "plan_version": 1,
        "group": "g-0123abcd",
        "config": {"path": str(config), "sha256": launcher.sha256_file(config), "overrides": []},
        "runs": [{"name": name, "leaves": []} for name in runs],
    }


def wait_finished(group_dir: Path, backend: LocalBackend, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, found = launcher.statuses(group_dir, backend)
        if all(s is not None and s.state.finished for s in found.values()):
            return found
        time.sleep(0.1)
    raise AssertionError(f"runs did not finish: {found}")


def launched(tmp_path: Path, group: str) -> Path:
    plan = {**make_plan(["r"]), "group": group}
    launcher.launch(plan, CONFIG, LocalBackend(), tmp_path / "runs", command=["true"])
    wait_finished(tmp_path / "runs" / group, LocalBackend())
    return tmp_path / "runs" / group / "launch.json"
