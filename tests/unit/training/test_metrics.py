"""metrics.json: written and read through one schema; no NaN in either direction."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from olmix import schemas
from olmix.training import heldout
from olmix.training.metrics import MetricsError, finite, read_metrics, write_metrics
from tests.support.records import metrics_doc


def test_written_metrics_read_back_typed(tmp_path: Path) -> None:
    doc = metrics_doc("run-a", {"arxiv": 5.5})
    doc["train_loss"] = [[1, 9.0], [2, None]]
    path = tmp_path / "metrics.json"
    write_metrics(doc, path)
    back = read_metrics(path)
    assert back.run == "run-a"
    assert back.heldout.sources["arxiv"].loss == 5.5
    assert back.train_loss == [(1, 9.0), (2, None)]
    assert json.loads(path.read_text()) == doc


def test_the_schema_a_tool_reads_agrees_with_the_writer(tmp_path: Path) -> None:
    doc = metrics_doc("run-a", {"arxiv": 5.5})
    assert not list(schemas.validator("metrics").iter_errors(doc))
    doc["steps"] = -1
    assert [e.json_path for e in schemas.validator("metrics").iter_errors(doc)] == ["$.steps"]
    with pytest.raises(MetricsError, match=r"\$\.steps"):
        write_metrics(doc, tmp_path / "metrics.json")
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_is_never_written(tmp_path: Path, value: float) -> None:
    doc = metrics_doc("run-a", {"arxiv": 5.5})
    doc["final_train_loss"] = value
    with pytest.raises(MetricsError, match="not written: Out of range float values are not JSON compliant"):
        write_metrics(doc, tmp_path / "metrics.json")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_file_holding_nan_is_refused_on_read(tmp_path: Path, constant: str) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(
        json.dumps(metrics_doc("run-a", {"arxiv": 5.5})).replace(
            '"final_train_loss": 7.0', f'"final_train_loss": {constant}'
        )
    )
    with pytest.raises(MetricsError, match=f"{constant} is not a JSON number"):
        read_metrics(path)


def test_an_unreadable_metrics_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(MetricsError, match=rf"{tmp_path}/nope.json: no such file"):
        read_metrics(tmp_path / "nope.json")


@pytest.mark.parametrize(("value", "kept"), [(1.5, 1.5), (0.0, 0.0), (math.nan, None), (math.inf, None), (None, None)])
def test_finite(value: float | None, kept: float | None) -> None:
    assert finite(value) == kept


def test_a_diverged_held_out_loss_is_recorded_as_null() -> None:
    diverged = heldout.HeldoutLoss(tokens=10, loss=math.inf, bytes=40, files=("a.npy",))
    assert diverged.as_dict() == {"tokens": 10, "loss": None, "bits_per_byte": None, "files": ["a.npy"]}
