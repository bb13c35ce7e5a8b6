"""Evidence of a swarm: rows per run, CSV both ways, and no pooling of different data under one name."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from olmix.cli import main
from olmix.swarm.evidence import EvidenceError, collect, fingerprint, from_csv, to_csv
from tests.support.groups import make_run


def test_collect_rows_have_leaf_weights_and_metrics(tmp_path: Path) -> None:
    make_run(tmp_path / "g", "r1", {"a": 0.25, "b:x": 0.75}, {"a": 3.0, "b": 2.0}, None)
    make_run(tmp_path / "g", "r2", {"a": 1.0}, {"a": 2.5, "b": 2.25}, None)
    ev = collect(tmp_path, ["g"])
    assert ev.leaves == ["a", "b:x"]
    assert ev.metrics == ["heldout:a", "heldout:b", "eval:wiki"]
    assert ev.matrix() == ([[0.25, 0.75], [1.0, 0.0]], [[3.0, 2.0, 5.0], [2.5, 2.25, 4.75]])


def test_runs_whose_leaf_held_different_files_are_not_pooled(tmp_path: Path) -> None:
    make_run(tmp_path / "g", "r1", {"a": 1.0}, {"a": 3.0}, {"a": {"/data/a/part-0.npy": 1000}})
    make_run(tmp_path / "g", "r2", {"a": 1.0}, {"a": 3.0}, {"a": {"/data/a/part-0.npy": 900}})  # re-tokenised
    with pytest.raises(EvidenceError, match=r"leaf 'a' held different files in run 'r1' and run 'r2'"):
        collect(tmp_path, ["g"])


def test_fingerprint_ignores_listing_order_but_not_content() -> None:
    assert fingerprint({"x": 1, "y": 2}) == fingerprint({"y": 2, "x": 1})
    assert fingerprint({"x": 1, "y": 2}) != fingerprint({"x": 1, "z": 2})


def test_csv_round_trip_survives_csv_special_run_names(tmp_path: Path) -> None:
    odd = 'swarm, "quoted"\nline'
    make_run(tmp_path / "g", odd, {"a": 0.1, "b": 0.9}, {"a": 3.125}, None)
    make_run(tmp_path / "g", "plain", {"a": 0.6, "b": 0.4}, {"a": 2.875}, None)
    ev = collect(tmp_path, ["g"])
    for name, data in to_csv(ev).items():
        (tmp_path / name).write_bytes(data)
    back = from_csv(tmp_path / "ratios.csv", tmp_path / "metrics.csv")
    assert [r.name for r in back.runs] == [r.name for r in ev.runs]
    assert back.matrix() == ev.matrix()
    assert [r.fingerprints for r in back.runs] == [r.fingerprints for r in ev.runs]


def test_upstream_csv_imports_and_bad_rows_say_where(tmp_path: Path) -> None:
    (tmp_path / "ratios.csv").write_text("run,web,code\nr1,0.5,0.5\nr2,0.7,0.2\n")
    (tmp_path / "metrics.csv").write_text("run,loss\nr1,3.0\nr2,2.0\n")
    with pytest.raises(EvidenceError, match=r"ratios.csv:3: ratios sum to 0\.9000"):
        from_csv(tmp_path / "ratios.csv", tmp_path / "metrics.csv")
    (tmp_path / "ratios.csv").write_text("run,web,code\nr1,0.5,0.5\nr2,0.7,0.3\n")
    (tmp_path / "metrics.csv").write_text("run,loss\nr1,3.0\nr2,nan\n")
    with pytest.raises(EvidenceError, match=r"metrics.csv:3: column 'loss': nan is not a finite number"):
        from_csv(tmp_path / "ratios.csv", tmp_path / "metrics.csv")


def test_results_export_and_mixtures(tmp_path: Path) -> None:
    make_run(tmp_path / "g", "r1", {"a": 0.25, "b": 0.75}, {"a": 3.0}, None)
    out = tmp_path / "ev"
    args = ["results", "--runs-dir", str(tmp_path), "--group", "g"]
    done = CliRunner().invoke(main, [*args, "--export", str(out)])
    assert done.exit_code == 0, done.output
    assert (out / "ratios.csv").read_text() == "run,a,b\nr1,0.25,0.75\n"
    assert (out / "metrics.csv").read_text() == "run,heldout:a,eval:wiki\nr1,3.0,3.0\n"
    shown = CliRunner().invoke(main, [*args, "--mixtures"])
    assert shown.exit_code == 0 and "0.2500" in shown.output and "heldout:a" in shown.output
