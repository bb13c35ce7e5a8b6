"""Finished runs written as olmix writes them, for the results, fit, output and record-size tests."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from olmix.cli import main
from tests.support.records import metrics_doc
from tests.support.tokenfiles import run_plan

# run name, held-out loss per source, the quality threshold its plan records
Run = tuple[str, dict[str, float], float | None]


RUNS: list[Run] = [
    ("quality-top10pct", {"all_dressed": 6.0, "arxiv": 5.0}, 0.1),
    ("quality-top50pct", {"all_dressed": 6.5, "arxiv": 5.4}, 0.5),
    ("quality-top30pct", {"all_dressed": 6.2, "arxiv": 5.1}, 0.3),
]


def write_plan(
    folder: Path, name: str, *, varied: dict[str, Any] | None = None, leaves: Sequence[str] = ("arxiv",)
) -> None:
    plan = run_plan(folder / "data", [(leaf, 1 / len(leaves), [10]) for leaf in leaves], requested_tokens=5, name=name)
    if varied is not None:
        plan["runs"][0]["varied"] = varied
    (folder / "plan.json").write_text(json.dumps(plan, indent=2))


def write_group(root: Path, runs: Sequence[Run] = RUNS, group: str = "study") -> Path:
    for index, (name, losses, threshold) in enumerate(runs):
        folder = root / group / name
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(metrics_doc(name, losses, index)))
        if threshold is not None:
            write_plan(folder, name, varied={"quality_threshold": threshold})
    return root


def invoke_results(root: Path, *flags: str) -> Result:
    return CliRunner().invoke(main, ["results", "--group", "study", "--runs-dir", str(root), *flags])


def make_run(
    group: Path, name: str, ratios: dict[str, float], loss: dict[str, float], files: dict[str, dict[str, int]] | None
) -> None:
    """A finished run as the trainer leaves it: a valid plan.json (leaves with these ratios over these files) and a
    valid metrics.json (held-out loss per source, and one evaluation set)."""
    folder = group / name.replace("/", "_")
    folder.mkdir(parents=True)
    plan = run_plan(folder / "data", [("unused", 1.0, [10])], requested_tokens=1000, name=name)
    template = plan["runs"][0]["leaves"][0]
    leaves = []
    for leaf, ratio in ratios.items():
        held = (files or {}).get(leaf, {f"/data/{leaf}.npy": 1000})
        need = math.ceil(1000 * ratio)
        available = sum(held.values())
        leaves.append(
            {
                **template,
                "name": leaf,
                "ratio": ratio,
                "files": held,
                "tokens_available": available,
                "tokens_needed": need,
                "repetition": need / available,
            }
        )
    plan["runs"][0]["leaves"] = leaves
    (folder / "plan.json").write_text(json.dumps(plan))
    metrics = metrics_doc(name, loss)
    metrics["eval"] = {"wiki": {"loss": sum(loss.values()), "tokens": 100, "bits_per_byte": None}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
