from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from olmix.cli import main
from olmix.results import collect as results
from tests.conftest import REPO
from tests.support.groups import RUNS, invoke_results, write_group, write_plan
from tests.support.records import metrics_doc
from tests.support.tokenfiles import run_plan


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
    with pytest.raises(results.ResultsError) as caught:  # the group's only run: left out, and named
        results.collect(tmp_path, "study")
    assert f"skipped {plan}:" in str(caught.value)
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


def unrounded(shown: list[float], changes: list[float], widest: int) -> list[float]:
    """Losses that print as `shown` (3 decimals) and whose differences from run `widest` print as `changes`."""
    half, margin = 0.0005, 1e-7
    for step in range(-49, 50):
        base = shown[widest] + step * 1e-5
        spans = [
            (max(s - half, base + c - half) + margin, min(s + half, base + c + half) - margin)
            for s, c in zip(shown, changes, strict=True)
        ]
        if all(lo < hi for lo, hi in spans):
            return [base if i == widest else (lo + hi) / 2 for i, (lo, hi) in enumerate(spans)]
    raise AssertionError(f"no losses print as {shown} with changes {changes}")


def test_the_readme_table_is_what_results_prints_for_its_numbers(tmp_path: Path) -> None:
    # The demo's table in README.md read back as numbers: a group with those numbers prints that very text.
    shown = "run " + (REPO / "README.md").read_text().split("```\nrun ", 1)[1].split("\n```", 1)[0]
    header, _, *body = shown.splitlines()
    sources = [name.strip() for name in header.split("held-out ")[1:]]
    cells = [line.split() for line in body]
    widest = max(range(len(cells)), key=lambda i: int(cells[i][1].rstrip("%")))
    losses: dict[str, list[float]] = {}
    for k, source in enumerate(sources):
        column = [(float(row[4 + 2 * k]), float(row[5 + 2 * k].strip("()"))) for row in cells]
        losses[source] = unrounded([v for v, _ in column], [c for _, c in column], widest)
    for index, (run, threshold, tokens, final, *_) in enumerate(cells):
        folder = tmp_path / "study" / run
        folder.mkdir(parents=True)
        doc = metrics_doc(run, {source: losses[source][index] for source in sources}, index)
        doc.update(tokens_trained=int(tokens.replace(",", "")), final_train_loss=float(final))
        (folder / "metrics.json").write_text(json.dumps(doc))
        write_plan(folder, run, varied={"quality_threshold": int(threshold.rstrip("%")) / 100})
    assert invoke_results(tmp_path).output == shown + "\n"


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


def test_csv_defuses_a_run_name_a_spreadsheet_would_run_and_keeps_numbers(tmp_path: Path) -> None:
    write_group(tmp_path, [("=HYPERLINK(1)", {"arxiv": 5.0}, 0.1), ("-2+3", {"arxiv": 5.5}, 0.2)])
    text = invoke_results(tmp_path, "--csv").output
    rows = list(csv.reader(io.StringIO(text)))
    assert [row[0] for row in rows[1:]] == ["'=HYPERLINK(1)", "'-2+3"]
    assert rows[1][rows[0].index("change_arxiv")] == "-0.5"


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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"run": "x",', "metrics.json:1:13: $: not JSON: Expecting property name"),
        ("[1, 2]", "metrics.json:1:1: $: "),
        ("NAN", "not JSON: NaN is not a JSON number"),
        ("MISSING", "metrics.json:1:1: $: missing required key 'model'"),
        ("STRING_LOSS", ".heldout.sources.arxiv.loss: "),
    ],
)
def test_a_malformed_metrics_file_is_skipped_with_one_line_naming_it(
    tmp_path: Path, content: str, message: str
) -> None:
    write_group(tmp_path)
    bad = tmp_path / "study" / "quality-top20pct" / "metrics.json"
    bad.parent.mkdir()
    doc: dict[str, Any] = metrics_doc("quality-top20pct", {"arxiv": 5.0})
    if content == "NAN":
        doc["heldout"]["sources"]["arxiv"]["loss"] = float("nan")
        content = json.dumps(doc)
    elif content == "MISSING":
        del doc["model"]
        content = json.dumps(doc)
    elif content == "STRING_LOSS":
        doc["heldout"]["sources"]["arxiv"]["loss"] = "5.0"
        content = json.dumps(doc, indent=1)
    bad.write_text(content)
    out = invoke_results(tmp_path, "--json")
    assert out.exit_code == 0, out.output
    assert [r["run"] for r in json.loads(out.stdout)["runs"]] == [
        "quality-top10pct",
        "quality-top30pct",
        "quality-top50pct",
    ]
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"skipped {bad}") and message in line


def test_json_output_is_strict_json_when_a_run_has_nan(tmp_path: Path) -> None:
    doc = metrics_doc("quality-top10pct", {"arxiv": 5.0})
    doc["final_train_loss"] = float("inf")
    write_group(tmp_path, RUNS[1:])
    (tmp_path / "study" / "quality-top10pct").mkdir()
    (tmp_path / "study" / "quality-top10pct" / "metrics.json").write_text(json.dumps(doc))
    out = invoke_results(tmp_path, "--json")
    assert out.exit_code == 0, out.output
    json.loads(out.stdout, parse_constant=lambda name: pytest.fail(f"{name} in --json output"))
    assert "skipped" in out.stderr and "Infinity is not a JSON number" in out.stderr


def test_a_group_whose_every_metrics_file_is_malformed_is_an_error_listing_them(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / "study" / name).mkdir(parents=True)
        (tmp_path / "study" / name / "metrics.json").write_text("{}")
    out = invoke_results(tmp_path)
    assert out.exit_code == 1
    assert "Traceback" not in out.output
    lines = out.stderr.splitlines()
    assert "no run of group 'study' has valid metrics" in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == [
        f"  skipped {tmp_path}/study/a/metrics.json",
        f"  skipped {tmp_path}/study/b/metrics.json",
    ]


# -- replicates ---------------------------------------------------------------------------------------------

# mixture -> its threshold and, per replicate, the held-out loss per source
REPLICATES: dict[str, tuple[float, list[dict[str, float]]]] = {
    "top10": (0.1, [{"web": 5.00, "wiki": 4.00}, {"web": 5.20, "wiki": 4.02}, {"web": 5.10, "wiki": 4.01}]),
    "top100": (1.0, [{"web": 5.15, "wiki": 4.50}, {"web": 5.25, "wiki": 4.52}, {"web": 5.05, "wiki": 4.51}]),
}


def write_replicates(root: Path, group: str = "study", shift: float = 0.0) -> Path:
    for mixture, (threshold, losses) in REPLICATES.items():
        for i, loss in enumerate(losses):
            name = f"{mixture}-r{i}"
            folder = root / group / name
            folder.mkdir(parents=True)
            shifted = {s: v + shift for s, v in loss.items()}
            (folder / "metrics.json").write_text(json.dumps(metrics_doc(name, shifted, i)))
            plan = run_plan(folder / "data", [("arxiv", 1.0, [10])], requested_tokens=5, name=name)
            plan["runs"][0]["varied"] = {"quality_threshold": threshold}
            plan["runs"][0]["replicate"] = {"mixture": mixture, "index": i, "of": len(losses)}
            (folder / "plan.json").write_text(json.dumps(plan))
    return root


def mean_se(values: list[float]) -> tuple[float, float]:
    import statistics

    return statistics.fmean(values), statistics.stdev(values) / len(values) ** 0.5


def test_replicates_show_mean_and_standard_error_and_mark_changes_within_noise(tmp_path: Path) -> None:
    out = invoke_results(write_replicates(tmp_path))
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:2] == ["mixture", "n"]
    rows = {line.split()[0]: line for line in lines[2:4]}
    assert set(rows) == {"top10", "top100"}
    for source in ("web", "wiki"):
        mean, se = mean_se([r[source] for r in REPLICATES["top10"][1]])
        assert f"{mean:.3f} ± {se:.3f}" in rows["top10"]
    # web: top10 − top100 = -0.05 with each SE about 0.058: within noise; wiki: -0.50 with SE 0.006: a real change
    assert "(-0.050 ~)" in rows["top10"]
    assert "(-0.500)" in rows["top10"]
    assert "~ marks a change within noise" in out.output


def test_replicates_in_json_and_csv_carry_mean_se_and_n(tmp_path: Path) -> None:
    write_replicates(tmp_path)
    data = json.loads(invoke_results(tmp_path, "--json").stdout)
    top10 = next(m for m in data["mixtures"] if m["mixture"] == "top10")
    mean, se = mean_se([r["web"] for r in REPLICATES["top10"][1]])
    assert top10["n"] == 3 and top10["runs"] == ["top10-r0", "top10-r1", "top10-r2"]
    assert top10["heldout_loss"]["web"] == pytest.approx({"mean": mean, "se": se, "n": 3})
    assert top10["change_vs_widest"]["web"]["within_noise"] is True
    assert top10["change_vs_widest"]["wiki"]["within_noise"] is False
    assert {r["mixture"] for r in data["runs"]} == {"top10", "top100"}
    rows = list(csv.DictReader(io.StringIO(invoke_results(tmp_path, "--csv").stdout)))
    assert [(r["run"], r["n"]) for r in rows] == [("top10", "3"), ("top100", "3")]
    assert float(rows[0]["heldout_web"]) == pytest.approx(mean)
    assert float(rows[0]["heldout_web_se"]) == pytest.approx(se)
    assert rows[0]["change_web_within_noise"] == "True" and rows[0]["change_wiki_within_noise"] == "False"


def test_a_group_without_replicates_shows_no_noise_columns(tmp_path: Path) -> None:
    out = invoke_results(write_group(tmp_path))
    assert "±" not in out.output and "~" not in out.output and out.output.split()[0] == "run"


def test_two_groups_side_by_side_with_their_differences_and_noise(tmp_path: Path) -> None:
    write_replicates(tmp_path, "base")
    write_replicates(tmp_path, "shifted", shift=1.0)
    args = ["results", "--runs-dir", str(tmp_path), "--group", "base", "--group", "shifted"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split() == ["mixture", "metric", "base", "shifted", "shifted", "−", "base"]
    web = next(line for line in lines if line.startswith("top10") and "held-out web" in line)
    mean, se = mean_se([r["web"] for r in REPLICATES["top10"][1]])
    assert f"{mean:.3f} ± {se:.3f}" in web and f"{mean + 1:.3f} ± {se:.3f}" in web
    assert f"+1.000 ± {(2 * se * se) ** 0.5:.3f}" in web and "~" not in web
    data = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)
    assert data["groups"] == ["base", "shifted"]
    row = next(r for r in data["comparison"] if r["mixture"] == "top10" and r["metric"] == "held-out web")
    assert row["differences"]["shifted"]["diff"] == pytest.approx(1.0)
    assert row["values"]["base"]["n"] == 3


def test_without_group_the_latest_group_with_results_is_taken_and_named(tmp_path: Path) -> None:
    from tests.support.launches import launched

    launched(tmp_path, "g-old")
    launched(tmp_path, "g-new")  # launched later, but no run has finished with metrics
    runs = tmp_path / "runs"
    (runs / "g-old" / "r" / "metrics.json").write_text(json.dumps(metrics_doc("r", {"arxiv": 5.0})))
    write_plan(runs / "g-old" / "r", "r")  # a trained run's plan, in place of the stand-in launch's
    out = CliRunner().invoke(main, ["results", "--runs-dir", str(runs)])
    assert out.exit_code == 0, out.output
    assert "group g-old (the latest with results" in out.stderr
    assert out.stdout.splitlines()[2].split()[0] == "r"


@pytest.mark.slow  # imports matplotlib
def test_the_plot_draws_error_bars_of_one_standard_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib", reason="needs the olmix[plot] extra (matplotlib)")
    from matplotlib.axes import Axes

    drawn: list[tuple[str, list[float]]] = []
    real = Axes.errorbar

    def errorbar(self: Axes, x: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
        drawn.append((kwargs["label"], list(kwargs["yerr"])))
        return real(self, x, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", errorbar)
    png = tmp_path / "loss.png"
    out = invoke_results(write_replicates(tmp_path), "--plot", str(png))
    assert out.exit_code == 0, out.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    expected = {s: [mean_se([r[s] for r in REPLICATES[m][1]])[1] for m in ("top10", "top100")] for s in ("web", "wiki")}
    assert [label for label, _ in sorted(drawn)] == sorted(expected)
    for label, errors in drawn:
        assert errors == pytest.approx(expected[label])


def write_downstream_group(root: Path) -> None:
    """Two runs whose metrics.json the trainer's own writer wrote, with downstream scores; one run lacks a task."""
    from olmix.training.metrics import write_metrics

    scores: dict[str, dict[str, tuple[float, float | None]]] = {
        "quality-top10pct": {"arc_easy": (0.625, 1.25), "hellaswag": (0.5, None)},
        "quality-top30pct": {"arc_easy": (0.375, 1.5)},
    }
    for index, (name, tasks) in enumerate(scores.items()):
        folder = root / "study" / name
        folder.mkdir(parents=True)
        doc = metrics_doc(name, {"arxiv": 5.0 + index}, index)
        doc["downstream"] = {
            task: {"step": 10, "accuracy": acc, "bits_per_byte": bpb, "metrics": {"accuracy": acc}}
            for task, (acc, bpb) in tasks.items()
        }
        write_metrics(doc, folder / "metrics.json")
        write_plan(folder, name, varied={"quality_threshold": 0.1 + 0.2 * index})


def test_downstream_scores_are_columns_in_the_table_json_and_csv(tmp_path: Path) -> None:
    write_downstream_group(tmp_path)
    text = invoke_results(tmp_path)
    assert text.exit_code == 0, text.output
    header, _, first, second = text.output.splitlines()
    assert header.split()[-8:] == ["arc_easy", "acc", "arc_easy", "bpb", "hellaswag", "acc", "hellaswag", "bpb"]
    assert first.split()[-4:] == ["0.625", "1.250", "0.500", "-"]
    assert second.split()[-4:] == ["0.375", "1.500", "-", "-"]

    as_json = json.loads(invoke_results(tmp_path, "--json").output)
    assert as_json["runs"][0]["downstream"]["arc_easy"] == {"accuracy": 0.625, "bits_per_byte": 1.25}
    assert as_json["runs"][1]["downstream"] == {"arc_easy": {"accuracy": 0.375, "bits_per_byte": 1.5}}

    rows = list(csv.DictReader(io.StringIO(invoke_results(tmp_path, "--csv").output)))
    assert [row["arc_easy acc"] for row in rows] == ["0.625", "0.375"]
    assert [row["arc_easy bpb"] for row in rows] == ["1.25", "1.5"]
    assert [row["hellaswag acc"] for row in rows] == ["0.5", ""]
