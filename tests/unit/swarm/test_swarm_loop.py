"""`olmix fit` end to end: evidence in, fit.json and a launchable proposal.yaml out."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from olmix.cli import main
from tests.support.groups import make_run
from tests.support.tokenfiles import write_tokens

np = pytest.importorskip("numpy")
pytest.importorskip("scipy")

SLOPES = {"a": 0.8, "b:x": -0.6, "b:y": 0.3}  # loss falls with b:x: the proposal should lean on it


def target_config(tmp_path: Path, **extra: object) -> Path:
    for leaf, n in (("a", 4000), ("bx", 4000), ("by", 4000)):
        write_tokens(tmp_path / "data" / leaf / "part.npy", n, seed=len(leaf))
    data = {
        "name": "mix",
        "proxy_model_id": "olmo3_1m",
        "chinchilla_multiple": 0.0001,
        "dtype": "uint32",
        "target_tokens": 10_000,
        "repetition_factor": 1.5,  # each leaf may give at most 4000 × 1.5 / 10,000 = 0.6 of the target run
        "sources": [
            {"name": "a", "paths": [str(tmp_path / "data" / "a" / "*.npy")]},
            {
                "name": "b",
                "topics": [
                    {"name": "x", "paths": [str(tmp_path / "data" / "bx" / "*.npy")]},
                    {"name": "y", "paths": [str(tmp_path / "data" / "by" / "*.npy")]},
                ],
            },
        ],
        **extra,
    }
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def law_swarm(runs_dir: Path, n: int = 16, noise: float = 0.0) -> None:
    rng = np.random.default_rng(5)
    for i, w in enumerate(rng.dirichlet(np.ones(3), size=n)):
        ratios = dict(zip(SLOPES, w.tolist(), strict=True))
        loss = 2.0 + float(np.exp(sum(SLOPES[k] * ratios[k] for k in SLOPES)))
        make_run(runs_dir / "g", f"r{i:02d}", ratios, {"web": loss + noise * float(rng.normal())}, None)


def assert_plans_at_target_scale(proposal: Path, tokens: dict[str, int], target: int, factor: float) -> None:
    """The real planner, at the target's budget (olmo3_1m: 20 × 1M tokens per Chinchilla multiple)."""
    from olmix.planning.plan import build_plan

    plan = build_plan(proposal, use_cache=False, overrides=[f"chinchilla_multiple={target / 20_000_000!r}"])
    (run,) = plan.runs
    assert run.requested_tokens == target
    for leaf in run.leaves:
        assert leaf.tokens_needed <= tokens[leaf.name] * factor
    assert sum(leaf.ratio for leaf in run.leaves) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.slow
def test_fit_proposes_a_launchable_mixture_at_the_cap(tmp_path: Path) -> None:
    law_swarm(tmp_path / "runs")
    cfg = target_config(tmp_path)
    out = tmp_path / "fit"
    args = ["fit", "--group", "g", "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--target-config", str(cfg)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "heldout:web: cross-validated R² " in result.output
    fit = json.loads((out / "fit.json").read_text())
    weights = fit["proposal"]["weights"]
    # minimise exp(0.8a - 0.6x + 0.3y) with every leaf ≤ 0.6: x at its cap, the rest on y (slope 0.3 < 0.8)
    assert weights == pytest.approx({"a": 0.0, "b:x": 0.6, "b:y": 0.4}, abs=1e-4)
    assert fit["proposal"]["optimality_gap"] < 1e-6
    assert fit["proposal"]["predicted_objective"] < fit["prior_predicted_objective"]  # the prior meets the caps
    assert (out / "predicted_vs_observed.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "proposal_vs_prior.png").read_bytes()[:4] == b"\x89PNG"
    checked = CliRunner().invoke(main, ["validate", str(out / "proposal.yaml")])
    assert checked.exit_code == 0, checked.output
    assert_plans_at_target_scale(out / "proposal.yaml", {"a": 4000, "b:x": 4000, "b:y": 4000}, 10_000, 1.5)
    again = CliRunner().invoke(main, [*args, "--kl-reg", "0.5"])
    assert again.exit_code == 1 and "--force" in again.output  # a different fit never overwrites silently


def test_fit_from_csv_refuses_a_fit_that_does_not_beat_the_mean(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = rng.dirichlet(np.ones(3), size=12).tolist()
    (tmp_path / "ratios.csv").write_text(
        "run,a,b,c\n" + "".join(f"r{i},{r[0]!r},{r[1]!r},{1 - r[0] - r[1]!r}\n" for i, r in enumerate(rows))
    )
    (tmp_path / "metrics.csv").write_text(
        "run,loss\n" + "".join(f"r{i},{3 + float(rng.normal(0, 0.2))!r}\n" for i in range(12))
    )
    out = tmp_path / "out"
    args = ["fit", "--ratios", str(tmp_path / "ratios.csv"), "--metrics", str(tmp_path / "metrics.csv")]
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 1
    assert "no proposal: the fit does not beat predicting the mean for: loss" in result.output
    assert json.loads((out / "fit.json").read_text())["proposal"] is None
    assert not (out / "proposal.yaml").exists()


# a run, leaf or metric called like this would be a formula in a spreadsheet that opens the CSV
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_every_exported_csv_cell_is_defused_and_fit_reads_the_export_back(tmp_path: Path) -> None:
    # leaves and runs named like formulas; the losses follow the law, so the fit has something to find
    leaves = {"=a": SLOPES["a"], "@b:x": SLOPES["b:x"], "-b:y": SLOPES["b:y"]}
    rng = np.random.default_rng(5)
    names = [f"{FORMULAS[i % len(FORMULAS)]}{i}" for i in range(12)]
    for name, w in zip(names, rng.dirichlet(np.ones(3), size=len(names)), strict=True):
        ratios = dict(zip(leaves, w.tolist(), strict=True))
        loss = 2.0 + float(np.exp(sum(leaves[k] * ratios[k] for k in leaves)))
        make_run(tmp_path / "runs" / "g", name, ratios, {"-web": loss}, None)
    export = tmp_path / "ev"
    done = CliRunner().invoke(
        main, ["results", "--runs-dir", str(tmp_path / "runs"), "--group", "g", "--export", str(export)]
    )
    assert done.exit_code == 0, done.output
    for written in sorted(export.iterdir()):
        with written.open(newline="") as f:
            rows = list(csv.reader(f))
        cells = [cell for row in rows for cell in row]
        assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))], written.name
        if written.name != "metrics.csv":
            assert rows[0][1:] == [f"'{leaf}" for leaf in leaves]
        assert {row[0] for row in rows[1:]} == {f"'{name}" for name in names}
        if written.name != "fingerprints.csv":
            assert all(math.isfinite(float(cell)) for row in rows[1:] for cell in row[1:])  # numbers stay numbers
    out = tmp_path / "fit"
    args = ["fit", "--ratios", str(export / "ratios.csv"), "--metrics", str(export / "metrics.csv"), "--out", str(out)]
    fitted = CliRunner().invoke(main, args)
    assert fitted.exit_code == 0, fitted.output
    fit = json.loads((out / "fit.json").read_text())
    assert sorted(fit["runs"]) == sorted(names)
    assert set(fit["proposal"]["weights"]) == set(leaves)
    assert set(fit["metrics"]) == {"heldout:-web", "eval:wiki"}


def test_fit_needs_one_source_of_evidence() -> None:
    result = CliRunner().invoke(main, ["fit", "--out", "x"])
    assert result.exit_code == 2 and "give --group G, or --ratios" in result.output


def test_fit_without_its_extra_says_which_to_install(tmp_path: Path) -> None:
    blocked = "import sys; sys.modules['scipy'] = None; from olmix.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", blocked, "fit", "--ratios", "r.csv", "--metrics", "m.csv", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "pip install 'olmix[fit]'" in done.stderr and "Traceback" not in done.stderr
    listed = subprocess.run(
        [sys.executable, "-c", blocked, "--help"], capture_output=True, text=True, check=False
    ).stdout
    assert "fit " in listed  # the command never vanishes


def test_unknown_objective_metric_is_named(tmp_path: Path) -> None:
    law_swarm(tmp_path / "runs", n=6)
    result = CliRunner().invoke(
        main,
        [
            "fit",
            "--group",
            "g",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--out",
            str(tmp_path / "o"),
            "--objective",
            "heldout:wbe=1",
        ],
    )
    assert result.exit_code == 1 and "did you mean 'heldout:web'" in result.output


@pytest.mark.slow
def test_refitting_reads_the_evidence_afresh_and_leaves_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    law_swarm(tmp_path / "runs", n=8)
    args = ["fit", "--group", "g", "--runs-dir", "runs", "--out", "fit", "--force"]
    assert CliRunner().invoke(main, args).exit_code == 0
    make_run(tmp_path / "runs" / "g", "late", {"a": 0.2, "b:x": 0.3, "b:y": 0.5}, {"web": 3.0}, None)
    assert CliRunner().invoke(main, args).exit_code == 0
    assert "late" in json.loads((tmp_path / "fit" / "fit.json").read_text())["runs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit", "runs"]
    assert sorted(p.name for p in (tmp_path / "fit").iterdir()) == [
        "fit.json",
        "predicted_vs_observed.png",
        "proposal_vs_prior.png",
    ]


def test_trees_without_their_extra_say_which_to_install(tmp_path: Path) -> None:
    blocked = "import sys; sys.modules['sklearn'] = None; from olmix.cli import main; main()"
    args = ["fit", "--regression", "trees", "--ratios", "r.csv", "--metrics", "m.csv", "--out", str(tmp_path)]
    done = subprocess.run([sys.executable, "-c", blocked, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "pip install 'olmix[fit-trees]'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_trees_fit_and_search_a_proposal_near_the_laws_constrained_optimum(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    law_swarm(tmp_path / "runs", n=48)
    cfg = target_config(tmp_path)
    out = tmp_path / "fit"
    args = ["fit", "--regression", "trees", "--group", "g", "--runs-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--target-config", str(cfg)])
    assert result.exit_code == 0, result.output
    fit = json.loads((out / "fit.json").read_text())
    # the law's optimum under the 0.6 cap per leaf (see test_fit_proposes_a_launchable_mixture_at_the_cap)
    assert fit["proposal"]["weights"] == pytest.approx({"a": 0.0, "b:x": 0.6, "b:y": 0.4}, abs=0.05)
    assert fit["proposal"]["optimality_gap"] is None  # a searched proposal makes no claim of optimality
    assert fit["proposal"]["predicted_objective"] < fit["prior_predicted_objective"]
    checked = CliRunner().invoke(main, ["validate", str(out / "proposal.yaml")])
    assert checked.exit_code == 0, checked.output


def test_fit_json_is_read_back_through_its_model_and_a_broken_one_is_located(tmp_path: Path) -> None:
    from olmix.swarm.fitrecord import FitRecordError, read_fit

    path = tmp_path / "fit.json"
    path.write_text('{"fit_version": 1,\n "regression": "lasso"}\n')
    with pytest.raises(FitRecordError) as caught:
        read_fit(path)
    assert any(p.line == 2 and p.path == ("regression",) for p in caught.value.problems), caught.value.problems


def replicate_csvs(tmp_path: Path, mixtures: int = 8, replicates: int = 3, noise: float = 0.05) -> list[list[float]]:
    """ratios.csv and metrics.csv of a swarm whose every mixture ran `replicates` times; the losses by mixture."""
    rng = np.random.default_rng(3)
    ratios, metrics, losses = ["run,a,b,c\n"], ["run,loss\n"], []
    for m, w in enumerate(rng.dirichlet(np.ones(3), size=mixtures).tolist()):
        law = 2.0 + float(np.exp(0.8 * w[0] - 0.6 * w[1] + 0.3 * w[2]))
        losses.append([law + noise * float(rng.normal()) for _ in range(replicates)])
        for r, loss in enumerate(losses[-1]):
            ratios.append(f"m{m}-r{r},{w[0]!r},{w[1]!r},{w[2]!r}\n")
            metrics.append(f"m{m}-r{r},{loss!r}\n")
    (tmp_path / "ratios.csv").write_text("".join(ratios))
    (tmp_path / "metrics.csv").write_text("".join(metrics))
    return losses


def fit_csvs(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    args = ["fit", "--ratios", str(tmp_path / "ratios.csv"), "--metrics", str(tmp_path / "metrics.csv")]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    return result.output, json.loads((tmp_path / "out" / "fit.json").read_text())


def test_fit_reports_the_noise_floor_its_replicates_measure(tmp_path: Path) -> None:
    import statistics

    losses = replicate_csvs(tmp_path)
    output, fit = fit_csvs(tmp_path)
    within = sum(statistics.variance(runs) * (len(runs) - 1) for runs in losses) / sum(len(r) - 1 for r in losses)
    ceiling = 1 - within / statistics.variance([v for runs in losses for v in runs])
    noise = fit["metrics"]["loss"]["noise"]
    assert noise == {"variance": pytest.approx(within), "replicated_mixtures": 8, "r2_ceiling": pytest.approx(ceiling)}
    assert f"loss: noise floor from 8 replicated mixture(s): SD {within**0.5:.4g}" in output
    assert f"R² ceiling {ceiling:.3f}" in output


def test_cross_validation_keeps_a_mixtures_replicates_in_one_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from olmix.swarm import fit as fitting

    replicate_csvs(tmp_path, mixtures=6, replicates=2)
    made: list[list[Any]] = []
    real = fitting.folds

    def folds(*args: Any, **kwargs: Any) -> list[Any]:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(fitting, "folds", folds)
    fit_csvs(tmp_path)
    assert made
    for split in made:
        # rows 2m and 2m + 1 are the two replicates of mixture m
        where = {int(row): i for i, rows in enumerate(split) for row in rows}
        assert sorted(where) == list(range(12))
        assert all(where[2 * m] == where[2 * m + 1] for m in range(6))


def csv_swarm(tmp_path: Path, scale: float = 1.0, runs: int = 16, header_only: bool = False) -> list[str]:
    """ratios.csv and metrics.csv of a swarm that follows a known law, the metric multiplied by `scale`."""
    rng = np.random.default_rng(3)
    rows = rng.dirichlet(np.ones(3), size=0 if header_only else runs).tolist()
    slopes = np.array([0.8, -0.6, 0.3])
    ratios = "run,a,b,c\n" + "".join(f"r{i},{r[0]!r},{r[1]!r},{r[2]!r}\n" for i, r in enumerate(rows))
    losses = [scale * (2.0 + float(np.exp(np.array(r) @ slopes))) for r in rows]
    metrics = "run,m1,m2\n" + "".join(f"r{i},{v!r},{v / 2!r}\n" for i, v in enumerate(losses))
    (tmp_path / "ratios.csv").write_text(ratios)
    (tmp_path / "metrics.csv").write_text(metrics)
    return ["fit", "--ratios", str(tmp_path / "ratios.csv"), "--metrics", str(tmp_path / "metrics.csv")]


@pytest.mark.parametrize("scale", [1e307, 1e-300])
def test_metrics_of_any_finite_size_fit_like_ordinary_ones(tmp_path: Path, scale: float) -> None:
    args = csv_swarm(tmp_path, scale)
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    fit = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert fit["metrics"]["m1"]["cv"]["r2"] > 0.99
    # the law's minimum on the simplex is the vertex of the steepest negative slope, b
    assert fit["proposal"]["weights"]["b"] == pytest.approx(1.0, abs=1e-3)


def test_a_huge_objective_weight_means_what_a_small_one_does(tmp_path: Path) -> None:
    args = csv_swarm(tmp_path)
    huge = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "h"), "--objective", "m1=1e308"])
    assert huge.exit_code == 0, huge.output
    fit = json.loads((tmp_path / "h" / "fit.json").read_text())
    assert fit["objective"] == {"m1": 1.0}
    both = CliRunner().invoke(
        main, [*args, "--out", str(tmp_path / "b"), "--objective", "m1=1e308", "--objective", "m2=1e308"]
    )
    assert both.exit_code == 0, both.output
    assert json.loads((tmp_path / "b" / "fit.json").read_text())["objective"] == {"m1": 0.5, "m2": 0.5}


def test_fit_error_messages_say_what_is_wrong(tmp_path: Path) -> None:
    args = csv_swarm(tmp_path)
    bare = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o"), "--objective", "m1"])
    assert bare.exit_code == 1 and "--objective 'm1': write METRIC=WEIGHT, e.g. m1=1" in bare.output
    zero = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "z"), "--objective", "m1=0"])
    assert zero.exit_code == 1 and "every weight is 0" in zero.output
    assert not (tmp_path / "z").exists()
    text = (tmp_path / "ratios.csv").read_text()
    (tmp_path / "ratios.csv").write_text("\ufeff" + text)  # as spreadsheet programs save "UTF-8 CSV"
    bom = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "bom")])
    assert bom.exit_code == 0, bom.output
    (tmp_path / "e").mkdir()
    empty = csv_swarm(tmp_path / "e", header_only=True)
    result = CliRunner().invoke(main, [*empty, "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and f"{tmp_path / 'e' / 'ratios.csv'}: no runs, only a header" in result.output


def test_the_fit_plot_of_many_metrics_stays_one_screen(tmp_path: Path) -> None:
    import struct

    pytest.importorskip("matplotlib")
    args = csv_swarm(tmp_path)
    metrics = (tmp_path / "metrics.csv").read_text().splitlines()
    wide = [",".join([row.split(",")[0], *[row.split(",")[1]] * 30]) for row in metrics[1:]]
    header = ",".join(["run", *(f"m{i}" for i in range(30))])
    (tmp_path / "metrics.csv").write_text("\n".join([header, *wide]) + "\n")
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    png = (tmp_path / "out" / "predicted_vs_observed.png").read_bytes()
    width, height = struct.unpack(">II", png[16:24])
    assert width <= 4 * 4 * 100 and height <= 3 * 4 * 100  # 4 panels of 4 in a row, 3 rows, at 100 dpi
    note = json.loads((tmp_path / "out" / "fit.json").read_text())["plots"]
    assert "shows 12 of 30 metrics" in note


# -- fit inputs that cannot lie ------------------------------------------------------------------------------


def test_upstream_csvs_are_read_with_their_identity_columns_skipped_and_named(tmp_path: Path) -> None:
    args = csv_swarm(tmp_path)
    for name in ("ratios.csv", "metrics.csv"):
        lines = (tmp_path / name).read_text().splitlines()
        head, *rows = lines
        upstream = ["run,name,index," + head.split(",", 1)[1]]
        upstream += [f"{r.split(',', 1)[0]},swarm-{i},{i},{r.split(',', 1)[1]}" for i, r in enumerate(rows)]
        (tmp_path / name).write_text("\n".join(upstream) + "\n")
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "identity column(s) 'name', 'index' skipped" in result.output
    assert json.loads((tmp_path / "out" / "fit.json").read_text())["leaves"] == ["a", "b", "c"]


def test_a_csv_fit_without_tokens_says_uncapped_and_refuses_flags_that_cannot_apply(tmp_path: Path) -> None:
    args = csv_swarm(tmp_path)
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "uncapped" in result.output
    assert "no token counts" in json.loads((tmp_path / "out" / "fit.json").read_text())["uncapped"]
    refused = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o2"), "--repetition-factor", "2"])
    assert refused.exit_code == 2 and "--repetition-factor needs the leaves' tokens" in refused.output


def test_a_csv_fit_takes_its_caps_from_a_tokens_file(tmp_path: Path) -> None:
    args = csv_swarm(tmp_path)
    (tmp_path / "tokens.csv").write_text("leaf,tokens\na,1000\nb,300\nc,1000\n")
    extra = ["--tokens", str(tmp_path / "tokens.csv"), "--target-tokens", "1000", "--repetition-factor", "2"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out"), *extra])
    assert result.exit_code == 0, result.output
    fit = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert "uncapped" not in fit
    # the law wants all of b; b holds 300 tokens × 2 of a 1,000-token run
    assert fit["proposal"]["weights"]["b"] == pytest.approx(0.6, abs=1e-6)
    assert fit["proposal"]["weights"]["b"] * 1000 <= 600


def test_a_copied_run_folder_is_pooled_once(tmp_path: Path) -> None:
    import shutil

    from olmix.swarm.evidence import collect

    law_swarm(tmp_path / "runs", n=6)
    shutil.copytree(tmp_path / "runs" / "g" / "r03", tmp_path / "runs" / "g" / "r03-copy")
    found = collect(tmp_path / "runs", ["g"])
    assert sorted(r.name for r in found.runs) == [f"r{i:02d}" for i in range(6)]
    assert any("r03-copy: the same run ('r03')" in note for note in found.notes)


def test_thin_evidence_is_warned_about_and_not_proposed_from_without_force(tmp_path: Path) -> None:
    args = csv_swarm(tmp_path, runs=4)  # 4 runs for a law of 3 slopes and a floor: 4 parameters, no spare
    (tmp_path / "ratios.csv").write_text(
        (tmp_path / "ratios.csv")
        .read_text()
        .replace("run,a,b,c", "run,a,b,c,d")
        .replace("\n", ",0.0\n")
        .replace("run,a,b,c,d,0.0", "run,a,b,c,d")
    )
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "WARNING: thin evidence: 4 runs for a law of 5 parameters" in result.output
    assert "the weight of d varies by less than 0.01" in result.output
    assert not (tmp_path / "out" / "proposal.yaml").exists()
    assert json.loads((tmp_path / "out" / "fit.json").read_text())["proposal"] is None


# -- the loop, closed --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_swarm_to_proposal_plans_at_the_target_scale_with_caps_binding(tmp_path: Path) -> None:
    """swarm → runs (the real planner's plans, metrics through the real writer) → export → fit --ratios →
    proposal.yaml → launch preview at the target scale → validate; caps bind in the swarm and in the proposal."""
    from olmix.planning.plan import build_plan
    from olmix.planning.planfile import write_plan
    from olmix.training.metrics import write_metrics
    from tests.support.records import metrics_doc

    for leaf in ("a", "bx", "by", "c"):
        write_tokens(tmp_path / "data" / leaf / "part.npy", 4000, seed=len(leaf))
    data = {
        "name": "loop",
        "proxy_model_id": "olmo3_1m",
        "chinchilla_multiple": 0.0005,  # 10,000 tokens a proxy run: no leaf (4,000 tokens) may pass 0.4
        "dtype": "uint32",
        "variants": 16,
        "minimum_source_weight": 0.05,
        "target_tokens": 20_000,
        "repetition_factor": 2.0,  # no leaf may pass 4,000 × 2 / 20,000 = 0.4 of the target run either
        "sources": [
            {"name": "a", "paths": [str(tmp_path / "data" / "a" / "*.npy")]},
            {
                "name": "b",
                "topics": [
                    {"name": "x", "paths": [str(tmp_path / "data" / "bx" / "*.npy")]},
                    {"name": "y", "paths": [str(tmp_path / "data" / "by" / "*.npy")]},
                ],
            },
            {"name": "c", "paths": [str(tmp_path / "data" / "c" / "*.npy")]},
        ],
    }
    cfg = tmp_path / "loop.yaml"
    cfg.write_text(yaml.safe_dump(data))
    swarm = tmp_path / "swarm"
    made = CliRunner().invoke(main, ["generate", "swarm", str(cfg), "--out", str(swarm)])
    assert made.exit_code == 0, made.output
    assert "note: repetition cap moved" in made.output  # the caps bind in the swarm

    plan = build_plan(swarm, use_cache=False)
    slopes = {"a": 0.9, "b:x": -1.2, "b:y": -0.8, "c": 0.4}  # the law wants b:x, then b:y: past their caps
    for run in plan.runs:
        folder = tmp_path / "runs" / "g" / run.name
        write_plan(plan, folder / "plan.json")
        ratios = {leaf.name: leaf.ratio for leaf in run.leaves}
        loss = 2.0 + float(np.exp(sum(slopes[k] * v for k, v in ratios.items())))
        write_metrics(metrics_doc(run.name, {"web": loss}), folder / "metrics.json")

    evidence = tmp_path / "evidence"
    exported = CliRunner().invoke(
        main, ["results", "--group", "g", "--runs-dir", str(tmp_path / "runs"), "--export", str(evidence)]
    )
    assert exported.exit_code == 0, exported.output
    out = tmp_path / "fit"
    fitted = CliRunner().invoke(
        main,
        [
            "fit",
            "--ratios",
            str(evidence / "ratios.csv"),
            "--metrics",
            str(evidence / "metrics.csv"),
            "--target-config",
            str(cfg),
            "--out",
            str(out),
        ],
    )
    assert fitted.exit_code == 0, fitted.output
    weights = json.loads((out / "fit.json").read_text())["proposal"]["weights"]
    assert weights["b:x"] == pytest.approx(0.4, abs=1e-6) and weights["b:y"] == pytest.approx(0.4, abs=1e-6)

    target_scale = ["--set", f"chinchilla_multiple={20_000 / 20_000_000!r}"]  # olmo3_1m: 20 × 1M tokens each
    preview = CliRunner().invoke(main, ["launch", "preview", "--config", str(out / "proposal.yaml"), *target_scale])
    assert preview.exit_code == 0, preview.output
    assert_plans_at_target_scale(out / "proposal.yaml", {k: 4000 for k in slopes}, 20_000, 2.0)
    checked = CliRunner().invoke(main, ["validate", str(out / "proposal.yaml")])
    assert checked.exit_code == 0, checked.output


def downstream_swarm(runs_dir: Path, n: int = 16) -> None:
    """A swarm whose metrics.json the trainer's own writer wrote: arc_easy's bits per byte follow the law of
    SLOPES, its accuracy falls as they rise; the held-out loss rises with b:x (the opposite lean)."""
    from olmix.training.metrics import write_metrics

    rng = np.random.default_rng(7)
    for i, w in enumerate(rng.dirichlet(np.ones(3), size=n)):
        ratios = dict(zip(SLOPES, w.tolist(), strict=True))
        bpb = 1.0 + float(np.exp(sum(SLOPES[k] * ratios[k] for k in SLOPES)))
        name = f"r{i:02d}"
        make_run(runs_dir / "g", name, ratios, {"web": 3.0 + ratios["b:x"]}, None)
        doc = json.loads((runs_dir / "g" / name / "metrics.json").read_text())
        doc["downstream"] = {"arc_easy": {"step": 10, "accuracy": 1.0 - bpb / 4, "bits_per_byte": bpb}}
        write_metrics(doc, runs_dir / "g" / name / "metrics.json")


@pytest.mark.slow
def test_fit_targets_a_downstream_task_from_the_groups_runs_and_from_their_export(tmp_path: Path) -> None:
    downstream_swarm(tmp_path / "runs")
    runs = ["--runs-dir", str(tmp_path / "runs")]
    exported = CliRunner().invoke(main, ["results", *runs, "--group", "g", "--export", str(tmp_path / "ev")])
    assert exported.exit_code == 0, exported.output
    header = (tmp_path / "ev" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == ["run", "heldout:web", "eval:wiki", "downstream:arc_easy:bpb", "downstream:arc_easy:error"]
    cfg = target_config(tmp_path)
    sources = {
        "group": ["--group", "g", *runs],
        "export": ["--ratios", str(tmp_path / "ev" / "ratios.csv"), "--metrics", str(tmp_path / "ev" / "metrics.csv")],
    }
    for objective in ("downstream:arc_easy:bpb=1", "downstream:arc_easy:error=1"):
        for how, evidence in sources.items():
            out = tmp_path / f"fit-{how}-{objective.split(':')[-1]}"
            args = ["fit", *evidence, "--objective", objective, "--target-config", str(cfg), "--out", str(out)]
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 0, result.output
            fit = json.loads((out / "fit.json").read_text())
            assert list(fit["objective"]) == [objective.split("=")[0]]
            # the downstream law leans on b:x (slope -0.6), up to its cap; the held-out loss would shun it
            assert fit["proposal"]["weights"]["b:x"] == pytest.approx(0.6, abs=1e-3)


def test_an_accuracy_objective_is_pointed_at_its_error(tmp_path: Path) -> None:
    downstream_swarm(tmp_path / "runs", n=6)
    args = ["fit", "--group", "g", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, [*args, "--objective", "downstream:arc_easy:acc=1"])
    assert result.exit_code == 1
    assert "target accuracy as its error rate, 'downstream:arc_easy:error'" in result.output
