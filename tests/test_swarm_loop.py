"""`olmix fit` end to end: evidence in, fit.json and a launchable proposal.yaml out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
