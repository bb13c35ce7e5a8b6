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
from tests.test_swarm_evidence import make_run
from tests.tokenfiles import write_tokens

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
