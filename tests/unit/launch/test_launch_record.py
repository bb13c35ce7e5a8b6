"""The launch record on disk: schema-valid when written, checked when read, and one bad record harms no other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from olmix import schemas
from olmix.backends.local import LocalBackend
from olmix.cli import main
from olmix.launch import launcher
from tests.support.launches import CONFIG, launched, make_plan, wait_finished


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_written_record_is_valid_for_any_json_schema_validator(tmp_path: Path) -> None:
    path = launched(tmp_path, "g-one")
    data = json.loads(path.read_text())
    assert list(schemas.validator("launch-record").iter_errors(data)) == []
    assert data["runs"][0]["state"] == "submitted" and data["runs"][0]["status"]["state"] == "succeeded"


def _edit(record: dict[str, Any], how: str) -> Any:
    if how == "list":
        return []
    if how == "missing":
        return {k: v for k, v in record.items() if k != "backend"}
    if how == "runs-null":
        return {**record, "runs": None}
    if how == "job-id":
        return {**record, "runs": [{**record["runs"][0], "job_id": "../../x"}]}
    if how == "no-job-id":
        return {**record, "runs": [{**record["runs"][0], "job_id": None}]}
    raise AssertionError(how)


BAD = [
    ("list", "a launch record is a JSON object, not a list"),
    ("missing", "$: missing required key 'backend'"),
    ("runs-null", "$.runs: must be a list"),
    ("job-id", "$.runs[0].job_id"),
    ("no-job-id", "$.runs[0].job_id: a submitted run has a job id"),
    ("nan", "NaN is not a JSON number"),
]


@pytest.mark.parametrize(("how", "message"), BAD)
def test_a_bad_record_is_one_clear_message_for_status_and_resume_and_skipped_by_list(
    tmp_path: Path, how: str, message: str
) -> None:
    good = launched(tmp_path, "g-good")
    bad = launched(tmp_path, "g-bad")
    record = json.loads(bad.read_text())
    if how == "nan":
        bad.write_text(bad.read_text().replace(f'"updated_at": {record["updated_at"]}', '"updated_at": NaN'))
        assert "NaN" in bad.read_text()
    else:
        bad.write_text(json.dumps(_edit(record, how)))
    runs = str(tmp_path / "runs")

    code, _, err = invoke("launch", "status", "--group", "g-bad", "--runs-dir", runs)
    assert code == 1 and "Traceback" not in err
    assert err.startswith(str(bad)) and message in err

    plan = {**make_plan(["r"]), "group": "g-bad"}
    with pytest.raises(launcher.RecordError, match=r"launch\.json") as caught:
        launcher.launch(plan, CONFIG, LocalBackend(), tmp_path / "runs", command=["true"])
    assert message in str(caught.value)

    code, out, err = invoke("launch", "list", "--runs-dir", runs)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["g-good"]
    assert err.startswith(f"skipped a bad launch record: {bad}")
    assert json.loads(good.read_text())["group"] == "g-good"


def test_a_job_id_the_backend_cannot_use_is_a_clear_message(tmp_path: Path) -> None:
    path = launched(tmp_path, "g-one")
    record = json.loads(path.read_text())
    record["runs"][0]["job_id"] = "abc"
    path.write_text(json.dumps(record))
    code, _, err = invoke("launch", "status", "--group", "g-one", "--runs-dir", str(tmp_path / "runs"))
    assert (code, err.strip()) == (1, "job id 'abc' is not a process id, as the local backend's job ids are")


def test_a_status_that_learns_nothing_new_leaves_the_record_alone(tmp_path: Path) -> None:
    path = launched(tmp_path, "g-one")  # finished, and its status saved once
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    _, found = launcher.statuses(path.parent, LocalBackend())
    assert found["r"] is not None and found["r"].state.value == "succeeded"
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_a_record_lock_held_too_long_is_a_clear_error(tmp_path: Path) -> None:
    import fcntl

    from olmix.launch import record as launchrecord

    path = launched(tmp_path, "g-one")
    with open(path.parent / launchrecord.RECORD_LOCK, "a") as holder:  # another process, stopped while holding it
        fcntl.flock(holder, fcntl.LOCK_EX)
        with (
            pytest.raises(launchrecord.RecordLockedError, match=r"held the record lock for 0\.2 s"),
            launchrecord.record_lock(path.parent, wait_s=0.2),
        ):
            pass
    with launchrecord.record_lock(path.parent, wait_s=0.2):  # free again
        pass


def test_the_latest_group_is_the_last_launched_not_the_last_record_touched(tmp_path: Path) -> None:
    import os
    import time

    from olmix.results.collect import latest_group

    old = launched(tmp_path, "g-old")
    launched(tmp_path, "g-new")
    bad = tmp_path / "runs" / "g-bad" / "launch.json"
    bad.parent.mkdir()
    bad.write_text("[]")
    for group in ("g-old", "g-new"):  # both have results: the latest launched of them is taken
        (tmp_path / "runs" / group / "r" / "metrics.json").write_text("{}")
    later = time.time() + 3600
    os.utime(old, (later, later))  # a status or cancel of the older group rewrites its record
    os.utime(bad, (later + 1, later + 1))
    assert latest_group(tmp_path / "runs") == "g-new"


def test_launch_list_shows_how_many_runs_are_in_each_state_from_the_record(tmp_path: Path) -> None:
    plan = {**make_plan(["a", "b", "c", "d", "e", "f"]), "group": "g-states"}
    launcher.launch(plan, CONFIG, LocalBackend(), tmp_path / "runs", command=["true"])
    wait_finished(tmp_path / "runs" / "g-states", LocalBackend())
    path = tmp_path / "runs" / "g-states" / "launch.json"
    record = json.loads(path.read_text())
    seen = [("succeeded", 0), ("succeeded", 0), ("failed", 1), ("running", None), ("succeeded", 0)]
    for run, (state, code) in zip(record["runs"], seen, strict=False):
        finished = None if code is None else record["created_at"] + 2
        run["status"] = {
            "state": state,
            "exit_code": code,
            "started_at": record["created_at"] + 1,
            "finished_at": finished,
        }
    record["runs"][5]["status"] = None  # submitted, never looked at since
    path.write_text(json.dumps(record))
    runs = str(tmp_path / "runs")
    code, out, err = invoke("launch", "list", "--runs-dir", runs)
    assert code == 0, err
    assert "3 succeeded, 1 failed, 1 running, 1 submitted" in out.splitlines()[1]
    code, out, _ = invoke("launch", "list", "--runs-dir", runs, "--format", "json")
    (group,) = json.loads(out)["groups"]
    assert group["states"] == {"succeeded": 3, "failed": 1, "running": 1, "submitted": 1}
