from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from olmix import results
from olmix.cli import main
from olmix.errors import PlanError
from tests.tokenfiles import run_plan

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
        metrics = {
            "run": name,
            "steps": 10 + index,
            "tokens_trained": 1000 * (index + 1),
            "final_train_loss": 7.0 + index,
            "heldout": {"sources": {s: {"loss": v, "tokens": 100} for s, v in losses.items()}},
        }
        (folder / "metrics.json").write_text(json.dumps(metrics))
        if threshold is not None:
            write_plan(folder, name, varied={"quality_threshold": threshold})
    return root


@pytest.mark.parametrize(
    ("leaves", "threshold"),
    [
        (["a:t:vigintile_0020", "a:t:vigintile_0019", "a:u:vigintile_0020", "arxiv"], 0.1),
        ([f"a:t:vigintile_{i:04d}" for i in range(15, 21)], 0.3),
        (["arxiv", "wikipedia"], None),
    ],
)
def test_threshold_from_leaves_is_the_share_of_vigintiles_kept(leaves: list[str], threshold: float | None) -> None:
    assert results.threshold_from_leaves(leaves) == threshold


def test_the_threshold_is_what_the_plan_records_whatever_the_run_is_called(tmp_path: Path) -> None:
    write_group(tmp_path, [("quality-top30pct", {"arxiv": 5.0}, 0.45), ("baseline", {"arxiv": 5.2}, None)])
    found = {r.run: r.threshold for r in results.collect(tmp_path, "study")}
    assert found == {"quality-top30pct": 0.45, "baseline": None}


def test_a_plan_without_a_recorded_threshold_falls_back_to_its_vigintiles(tmp_path: Path) -> None:
    write_group(tmp_path, [("baseline", {"arxiv": 5.0}, None)])
    write_plan(tmp_path / "study" / "baseline", "baseline", leaves=[f"a:t:vigintile_{i:04d}" for i in range(11, 21)])
    assert results.collect(tmp_path, "study")[0].threshold == 0.5


def test_an_invalid_plan_beside_the_metrics_is_reported_where_it_is_wrong(tmp_path: Path) -> None:
    write_group(tmp_path, [("quality-top10pct", {"arxiv": 5.0}, 0.1)])
    plan = tmp_path / "study" / "quality-top10pct" / "plan.json"
    plan.write_text(plan.read_text().replace('"quality_threshold": 0.1', '"quality_threshold": 10'))
    with pytest.raises(PlanError) as caught:
        results.collect(tmp_path, "study")
    assert f"{plan}:" in str(caught.value)
    assert "$.runs[0].varied.quality_threshold" in str(caught.value)


def test_runs_are_ordered_by_threshold_with_changes_against_the_widest(tmp_path: Path) -> None:
    found = results.collect(write_group(tmp_path), "study")
    assert [r.threshold for r in found] == [0.1, 0.3, 0.5]
    assert found[0].change_vs_widest == pytest.approx({"all_dressed": -0.5, "arxiv": -0.4})
    assert found[2].change_vs_widest == {"all_dressed": 0.0, "arxiv": 0.0}


def test_the_table_shows_threshold_tokens_loss_and_changes(tmp_path: Path) -> None:
    write_group(tmp_path)
    out = CliRunner().invoke(main, ["results", "--group", "study", "--runs-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split() == [
        "run",
        "threshold",
        "tokens",
        "final",
        "loss",
        "held-out",
        "all_dressed",
        "held-out",
        "arxiv",
    ]
    assert lines[2].split() == ["quality-top10pct", "10%", "1,000", "7.000", "6.000", "(-0.500)", "5.000", "(-0.400)"]


def test_json_and_csv(tmp_path: Path) -> None:
    write_group(tmp_path)
    runner = CliRunner()
    as_json = json.loads(
        runner.invoke(main, ["results", "--group", "study", "--runs-dir", str(tmp_path), "--json"]).output
    )
    assert [r["run"] for r in as_json["runs"]] == ["quality-top10pct", "quality-top30pct", "quality-top50pct"]
    assert as_json["runs"][1]["heldout_loss"] == {"all_dressed": 6.2, "arxiv": 5.1}
    text = runner.invoke(main, ["results", "--group", "study", "--runs-dir", str(tmp_path), "--csv"]).output
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["threshold"] == "0.1"
    assert float(rows[0]["change_arxiv"]) == pytest.approx(-0.4)


@pytest.mark.parametrize(
    ("setup", "message"),
    [("nothing", "no group 'study'"), ("empty", "no run of group 'study' has a metrics.json")],
)
def test_nothing_to_show_is_a_clear_error(tmp_path: Path, setup: str, message: str) -> None:
    if setup == "empty":
        (tmp_path / "study" / "run").mkdir(parents=True)
    out = CliRunner().invoke(main, ["results", "--group", "study", "--runs-dir", str(tmp_path)])
    assert out.exit_code == 1
    assert message in out.output


def test_a_missing_plot_extra_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_group(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: importing it fails
    png = tmp_path / "loss.png"
    out = CliRunner().invoke(main, ["results", "--group", "study", "--runs-dir", str(tmp_path), "--plot", str(png)])
    assert out.exit_code == 1
    assert "--plot needs matplotlib; install it with: pip install 'olmix[plot]'" in out.output
    assert not png.exists()


@pytest.mark.slow  # imports matplotlib
def test_the_plot_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="needs the olmix[plot] extra (matplotlib)")
    write_group(tmp_path)
    png = tmp_path / "loss.png"
    out = CliRunner().invoke(main, ["results", "--group", "study", "--runs-dir", str(tmp_path), "--plot", str(png)])
    assert out.exit_code == 0, out.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
