"""Records of any size: each kind is read with its size cap, never whole, and a listing names a bad one and goes on.

A sparse file costs nothing to make and reads as gigabytes of zeros: read whole, it is a MemoryError.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from olmix import records
from olmix.backends import run_file
from olmix.cli import main
from olmix.errors import ConfigError
from olmix.launch.record import RecordError, read_record
from olmix.planning.planfile import read_plan
from olmix.swarm import evidence
from olmix.training.metrics import MetricsError, read_metrics
from tests.support.groups import invoke_results, make_run, write_group
from tests.support.launches import launched

HUGE = 10 * 1024**3  # 10 GiB, sparse


def huge(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(HUGE)
    return path


def _metrics(path: Path) -> Any:
    return read_metrics(path)


def _plan(path: Path) -> Any:
    return read_plan(path)


def _record(path: Path) -> Any:
    return read_record(path.parent)


READERS: dict[str, tuple[str, Callable[[Path], Any], type[ConfigError], str]] = {
    "metrics": ("metrics.json", _metrics, MetricsError, "metrics file"),
    "plan": ("plan.json", _plan, ConfigError, "plan"),
    "launch record": ("launch.json", _record, RecordError, "launch record"),
}


@pytest.mark.parametrize("kind", list(READERS))
def test_a_huge_record_is_refused_by_its_size_naming_the_file_and_the_cap(tmp_path: Path, kind: str) -> None:
    name, read, error, what = READERS[kind]
    path = huge(tmp_path / "g" / name)
    with pytest.raises(error) as caught:
        read(path)
    message = str(caught.value)
    cap = records.MAX_RECORD_BYTES[what]
    assert message.startswith(str(path)) and f"{HUGE:,} bytes" in message
    assert f"over the {cap:,}-byte limit for a {what}" in message and records.MAX_RECORD_ENV in message
    assert cap < HUGE


@pytest.mark.parametrize("kind", list(READERS))
def test_the_cap_can_be_set_and_a_record_over_it_is_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    name, read, error, what = READERS[kind]
    path = tmp_path / "g" / name
    path.parent.mkdir()
    path.write_bytes(b"{" + b" " * 200 + b"}")
    monkeypatch.setenv(records.MAX_RECORD_ENV, "100")
    with pytest.raises(error, match=f"over the 100-byte limit for a {what}"):
        read(path)


def test_launch_list_names_a_huge_record_and_lists_the_others(tmp_path: Path) -> None:
    launched(tmp_path, "g-good")
    bad = huge(launched(tmp_path, "g-bad"))
    result = CliRunner().invoke(main, ["launch", "list", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["g-good"]
    (note,) = result.stderr.splitlines()
    assert note.startswith(f"skipped a bad launch record: {bad}") and "-byte limit for a launch record" in note


def test_results_skip_and_name_a_run_with_a_huge_metrics_or_plan_file(tmp_path: Path) -> None:
    write_group(tmp_path)
    group = tmp_path / "study"
    metrics = huge(group / "quality-top10pct" / "metrics.json")
    plan = huge(group / "quality-top30pct" / "plan.json")
    out = invoke_results(tmp_path, "--json")
    assert out.exit_code == 0, out.output
    assert [r["run"] for r in json.loads(out.stdout)["runs"]] == ["quality-top50pct"]
    assert sorted(out.stderr.splitlines()) == sorted(
        [
            f"skipped {metrics}: {HUGE:,} bytes, over the {records.MAX_RECORD_BYTES['metrics file']:,}-byte limit "
            f"for a metrics file (raise it with {records.MAX_RECORD_ENV}=N)",
            f"skipped {plan}: {HUGE:,} bytes, over the {records.MAX_RECORD_BYTES['plan']:,}-byte limit "
            f"for a plan (raise it with {records.MAX_RECORD_ENV}=N)",
        ]
    )


def test_fit_over_a_group_skips_and_names_a_run_with_a_huge_metrics_or_plan_file(tmp_path: Path) -> None:
    group = tmp_path / "g"
    for i in range(4):
        make_run(group, f"r{i}", {"a": 0.2 * (i + 1), "b": 1 - 0.2 * (i + 1)}, {"a": 3.0 - i / 4, "b": 2.0}, None)
    metrics = huge(group / "r1" / "metrics.json")
    plan = huge(group / "r2" / "plan.json")
    skipped: list[str] = []
    found = evidence.collect(tmp_path, ["g"], skipped)
    assert [run.name for run in found.runs] == ["r0", "r3"]
    assert [line.split(":")[0] for line in skipped] == [f"skipped {metrics}", f"skipped {plan}"]
    # and with every run bad, one error names them all
    huge(group / "r0" / "metrics.json")
    huge(group / "r3" / "metrics.json")
    with pytest.raises(evidence.EvidenceError) as caught:
        evidence.collect(tmp_path, ["g"])
    assert all(str(group / run) in str(caught.value) for run in ("r0", "r1", "r2", "r3"))


def test_results_mixtures_over_a_group_names_the_run_it_skips(tmp_path: Path) -> None:
    group = tmp_path / "study"
    for i in range(3):
        make_run(group, f"r{i}", {"a": 0.5, "b": 0.5}, {"a": 3.0 + i, "b": 2.0}, None)
    metrics = huge(group / "r1" / "metrics.json")
    out = invoke_results(tmp_path, "--mixtures")
    assert out.exit_code == 0, out.output
    (note,) = out.stderr.splitlines()
    assert note.startswith(f"skipped {metrics}: ")


def test_a_huge_runner_state_file_is_no_state(tmp_path: Path) -> None:
    assert run_file(huge(tmp_path / "job.json")) is None


def test_a_huge_csv_for_fit_is_one_error_naming_it(tmp_path: Path) -> None:
    ratios = huge(tmp_path / "ratios.csv")
    (tmp_path / "metrics.csv").write_text("run,m\nr,1\n")
    with pytest.raises(evidence.EvidenceError) as caught:
        evidence.from_csv(ratios, tmp_path / "metrics.csv")
    assert str(caught.value).startswith(f"{ratios}: {HUGE:,} bytes, over the ")
