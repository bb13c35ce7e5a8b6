"""A plan of a tiny real run and the trainer's command, for the training, distributed and Slurm tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.support.tokenfiles import run_plan

Leaf = tuple[str, float, list[int]]  # name, ratio, tokens per file


LEAVES: list[Leaf] = [
    ("web:topic:vigintile_0020", 0.5, [20_000]),
    ("web:topic:vigintile_0019", 0.25, [20_000]),
    ("arxiv", 0.25, [20_000]),
]


def olmix_train(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "olmix.train", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_plan(
    tmp_path: Path, leaves: Sequence[Leaf] = LEAVES, requested_tokens: int = 64 * 4 * 30, **kwargs: Any
) -> Path:
    plan = run_plan(tmp_path / "data", leaves, requested_tokens=requested_tokens, heldout_tokens=1024, **kwargs)
    path = tmp_path / "runs" / "g" / "run" / "plan.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(plan))
    return path
