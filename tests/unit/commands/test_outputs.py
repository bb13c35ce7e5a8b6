"""Outputs that cannot be written: one message naming the path and why, exit status 1, nothing half-written.

Most cases put the output under a regular file (ENOTDIR), which fails for every user, root included.
Read-only folders stop only other users, so those cases are skipped when the tests run as root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from olmix import fileio, train
from olmix.cli import main
from tests.conftest import REPO
from tests.support.groups import write_group
from tests.support.tokenfiles import run_plan, write_tokens

STUDY = REPO / "config" / "studies" / "quality_thresholds.yaml"
as_root = pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; run as another user")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    path = tmp_path / "afile"
    path.write_text("a regular file\n")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    write_tokens(tmp_path / "data" / "a" / "part-0.npy", 200_000)
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: t\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.001\nsources:\n"
        f"  - name: a\n    paths: ['{tmp_path}/data/a/*.npy']\n"
    )
    return path


def assert_one_message(result: Result, *parts: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()[-1:]
    for part in parts:
        assert part in line, line


def test_plan_out_under_a_file(config: Path, afile: Path) -> None:
    result = invoke("launch", "run", "--config", str(config), "--dry-run", "--plan-out", str(afile / "plan.json"))
    assert_one_message(result, f"cannot create folder {afile}", f"{afile} is a file, not a folder")


def test_plan_out_or_plot_naming_a_folder_is_a_usage_error(config: Path, tmp_path: Path) -> None:
    write_group(tmp_path / "runs")
    for args in (
        ["launch", "run", "--config", str(config), "--dry-run", "--plan-out", str(tmp_path)],
        ["results", "--runs-dir", str(tmp_path / "runs"), "--group", "study", "--plot", str(tmp_path)],
    ):
        result = invoke(*args)
        assert result.exit_code == 2
        assert f"'{tmp_path}' is a directory" in result.stderr


def test_launch_output_under_a_file_submits_nothing(config: Path, afile: Path, tmp_path: Path) -> None:
    marker = tmp_path / "trainer-ran"
    result = invoke(
        "launch", "run", "--config", str(config), "--runs-dir", str(afile / "runs"), "--yes",
        "--trainer-command", f"touch {marker}",
    )  # fmt: skip
    assert_one_message(result, f"cannot create folder {afile / 'runs'}", f"{afile} is a file, not a folder")
    assert not marker.exists()
    assert afile.read_text() == "a regular file\n"


def test_generate_out_under_a_file_writes_nothing(afile: Path) -> None:
    result = invoke("generate", "quality-thresholds", str(STUDY), "--out", str(afile / "configs"))
    assert_one_message(result, f"cannot write into {afile / 'configs'}", f"{afile} is a file, not a folder")


def test_demo_data_under_a_file(afile: Path) -> None:
    result = invoke("demo-data", str(afile / "demo"), "--tokens-per-bucket", "1024")
    assert_one_message(result, f"cannot create folder {afile / 'demo'}", f"{afile} is a file, not a folder")


def test_results_plot_under_a_file_fails_before_the_table(tmp_path: Path, afile: Path) -> None:
    write_group(tmp_path / "runs")
    result = invoke("results", "--runs-dir", str(tmp_path / "runs"), "--group", "study", "--plot", str(afile / "x.png"))
    assert_one_message(result, f"cannot write into {afile}", f"{afile} is a file, not a folder")
    assert "quality-top10pct" not in result.stdout


def test_results_plot_into_a_missing_folder_creates_it(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="needs the olmix[plot] extra (matplotlib)")
    write_group(tmp_path / "runs")
    png = tmp_path / "missing" / "dir" / "x.png"
    result = invoke("results", "--runs-dir", str(tmp_path / "runs"), "--group", "study", "--plot", str(png))
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text("old\n")
    with pytest.raises(fileio.OutputError, match="Out of range float"):
        fileio.write_json_atomic(target, {"x": float("nan")})
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_an_output_error_is_still_an_os_error_for_callers_that_expect_one(afile: Path) -> None:
    with pytest.raises(OSError, match="is a file, not a folder"):
        fileio.write_atomic(afile / "x" / "y.json", b"{}")


@as_root
@pytest.mark.parametrize("command", ["plan-out", "generate", "demo-data"])
def test_read_only_folders(command: str, config: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        args = {
            "plan-out": ["launch", "run", "--config", str(config), "--dry-run", "--plan-out", str(locked / "p.json")],
            "generate": ["generate", "quality-thresholds", str(STUDY), "--out", str(locked / "out")],
            "demo-data": ["demo-data", str(locked / "demo"), "--tokens-per-bucket", "1024"],
        }[command]
        result = invoke(*args)
        assert_one_message(result, str(locked))
        assert not list(locked.iterdir())
    finally:
        locked.chmod(0o755)


def test_trainer_out_under_a_file(tmp_path: Path, afile: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(run_plan(tmp_path / "data", [("a", 1.0, [4096])], requested_tokens=1024)))
    result = CliRunner().invoke(train.main, ["--plan", str(plan), "--out", str(afile / "run"), "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert f"cannot create folder {afile / 'run'}: {afile} is a file, not a folder" in result.stderr
    assert "Traceback" not in result.output
