"""A run's progress.json: written by the trainer's reporter, logged with ETAs, shown by `olmix launch status`."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from olmix import schemas
from olmix.backends import RunState
from olmix.backends.local import LocalBackend
from olmix.cli import main
from olmix.launch import launcher
from olmix.training.progress import PROGRESS_FILE, Reporter, read_progress
from tests.support.launches import CONFIG, make_plan
from tests.support.polling import poll


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_training_writes_at_most_once_a_second_and_every_change_of_phase(tmp_path: Path) -> None:
    clock = Clock()
    reporter = Reporter(tmp_path, clock)
    reporter.write("training", 1, 40)
    for step in range(2, 10):  # within the same second: not written
        clock.now += 0.1
        reporter.write("training", step, 40)
    assert read_progress(tmp_path).step == 1  # type: ignore[union-attr]
    clock.now += 0.5
    reporter.write("training", 10, 40)
    assert read_progress(tmp_path).step == 10  # type: ignore[union-attr]
    reporter.write("training", 40, 40)  # the last step always
    reporter.steps("scoring", "held-out", [1.0, 1.0])  # a new phase at once
    doc = json.loads((tmp_path / PROGRESS_FILE).read_text())
    assert not list(schemas.validator("progress").iter_errors(doc))
    assert (doc["phase"], doc["step"], doc["total"], doc["training_step"]) == ("scoring", 0, 2, 40)


def test_each_unit_is_logged_with_elapsed_time_and_an_eta_by_weight(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    caplog.set_level(logging.INFO, logger="olmix.train")
    steps = Reporter(tmp_path, clock).steps("scoring", "held-out", [100.0, 100.0, 200.0])
    steps.next("web")
    clock.now += 10  # 100 tokens in 10 s: 300 left take 30 s
    steps.next("arxiv")
    assert read_progress(tmp_path).step == 2  # type: ignore[union-attr]
    clock.now += 10
    steps.next("--eval wiki")
    clock.now += 20
    assert steps.done() == 40
    assert [r.getMessage() for r in caplog.records] == [
        "[scoring=held-out,step=1/3] web, elapsed 0:00, ETA ?",
        "[scoring=held-out,step=2/3] arxiv, elapsed 0:10, ETA 0:30",
        "[scoring=held-out,step=3/3] --eval wiki, elapsed 0:20, ETA 0:20",
        "[scoring=held-out,step=3/3] done in 0:40",
    ]
    assert read_progress(tmp_path).step == 3  # type: ignore[union-attr]


@pytest.mark.parametrize("text", [None, "{", '{"progress_version": 1, "phase": "sleeping", "step": 0, "total": 1}'])
def test_no_progress_or_progress_that_is_not_valid_reads_as_none(tmp_path: Path, text: str | None) -> None:
    if text is not None:
        (tmp_path / PROGRESS_FILE).write_text(text)
    assert read_progress(tmp_path) is None


def test_launch_status_shows_each_running_runs_phase_and_step(tmp_path: Path) -> None:
    script = tmp_path / "trainer.py"
    script.write_text(
        "import sys, time\nfrom pathlib import Path\nfrom olmix.training.progress import Reporter\n"
        "reporter = Reporter(Path(sys.argv[2]))\n"
        "if sys.argv[1] == 'run-a':\n"
        "    reporter.write('training', 40, 40)\n"
        "    reporter.steps('scoring', 'held-out', [1.0] * 38).next('web')\n"
        "elif sys.argv[1] == 'run-b':\n"
        "    reporter.write('training', 12, 40)\n"
        "time.sleep(60)\n"
    )
    backend = LocalBackend(max_parallel=3)
    command = [sys.executable, str(script), "{run}", "{run_dir}"]
    launcher.launch(make_plan(["run-a", "run-b", "run-c"]), CONFIG, backend, tmp_path / "out", command=command)
    group_dir = tmp_path / "out" / "g-0123abcd"
    try:
        poll(lambda: all((group_dir / run / PROGRESS_FILE).is_file() for run in ("run-a", "run-b")), "progress")
        poll(
            lambda: all(
                s is not None and s.state == RunState.RUNNING for s in launcher.statuses(group_dir, backend)[1].values()
            ),
            "running",
        )
        args = ["launch", "status", "--group", "g-0123abcd", "--runs-dir", str(tmp_path / "out")]
        shown = CliRunner().invoke(main, args)
        assert shown.exit_code == 0, shown.output
        lines = {line.split()[0]: line for line in shown.output.splitlines()}
        assert "progress" in lines["run"].split()
        assert "scoring 1/38 (step 40)" in lines["run-a"]
        assert "training 12/40" in lines["run-b"]
        as_json = json.loads(CliRunner().invoke(main, [*args, "--json"]).output)
        progress = {r["run"]: r["progress"] for r in as_json["runs"]}
        assert progress["run-a"]["phase"] == "scoring" and progress["run-a"]["step"] == 1
        assert progress["run-c"] is None  # a trainer that keeps no progress.json
    finally:
        launcher.cancel(group_dir, backend)
