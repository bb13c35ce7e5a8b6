"""Hostile names from a config or a flag reach the terminal as visible escapes, through the CLI (support.olmixcli)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from olmix.terminal import Lines, error_text, escape, escape_lines, shown
from tests.conftest import REPO
from tests.support.olmixcli import Run

Olmix = Callable[..., subprocess.CompletedProcess[str]]
# Control bytes a terminal acts on: ESC (CSI, OSC), BEL, NUL, CR, DEL, the C1 CSI, a bidi override.
RAW = ["\x1b", "\x07", "\x00", "\r", "\x7f", "\x9b", "\u202e"]
FORGED = "note: all checks passed"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
        ("\x1b[2J", "\\x1b[2J"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("\x9b31m", "\\x9b31m"),
        ("abc\u202edef", "abc\\u202edef"),
        ("line\u2028sep", "line\\u2028sep"),
        ("undecodable \udcff byte", "undecodable \\udcff byte"),
        ("wikipédia 中文 ok: 100%", "wikipédia 中文 ok: 100%"),
    ],
)
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown


def test_escape_lines_keeps_only_the_line_breaks() -> None:
    assert escape_lines("first \x1b[2J\nsecond\r") == "first \\x1b[2J\nsecond\\r"


def test_a_message_is_one_line_unless_olmix_laid_it_out() -> None:
    assert shown(f"wrote /x\n{FORGED}") == f"wrote /x\\n{FORGED}"
    assert shown(Lines("a\nb")) == "a\nb"
    assert Lines.of("a", f"b\n{FORGED}") == f"a\nb\\n{FORGED}"
    # an error keeps the indented lines of a list under it, and only those
    assert error_text(f"cannot:\n  a\n{FORGED}\n  b") == f"cannot:\n  a\\n{FORGED}\n  b"


def hostile_config(tmp_path: Path) -> Path:
    """A config whose data folders are named with control characters (a name cannot hold them: the schema
    refuses them there), so they reach the leaves table's paths and every listing message."""
    data = tmp_path / "data"
    folders = {"a": "\x1b]0;pwned\x07", "b": "two\nlines\x1b[2J"}
    for folder in folders.values():
        (data / folder).mkdir(parents=True)
        with open(data / folder / "part-0.npy", "wb") as f:
            f.truncate(4_000_000)  # a sparse file of a million uint32 tokens
    config = tmp_path / "hostile.yaml"
    config.write_text(
        "name: hostile\n"
        "proxy_model_id: olmo3_1m\n"
        "chinchilla_multiple: 0.001\n"
        "sources:\n"
        "  - name: a\n"
        f"    paths: [{json.dumps(str(data / folders['a']) + '/*.npy')}]\n"
        "  - name: b\n"
        f"    paths: [{json.dumps(str(data / folders['b']) + '/*.npy')}]\n"
    )
    return config


@pytest.fixture
def olmix(run_olmix: Run) -> Olmix:
    """`olmix ARGS` with a cache folder it cannot create: nothing is cached, every listing is fresh."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_olmix(*args, env={"XDG_CACHE_HOME": "/nonexistent-cache"})

    return run


def assert_no_raw_controls(text: str) -> None:
    assert [c for c in RAW if c in text] == []


def test_the_leaves_table(tmp_path: Path, olmix: Olmix) -> None:
    proc = olmix("leaves", str(hostile_config(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert_no_raw_controls(proc.stdout)
    lines = proc.stdout.splitlines()
    assert len(lines) == 4  # header, two leaves, count: the newline in a path forges no line
    assert lines[1].startswith("a ") and lines[1].endswith("/data/\\x1b]0;pwned\\x07/*.npy")
    assert lines[2].startswith("b ") and lines[2].endswith("/data/two\\nlines\\x1b[2J/*.npy")


def test_the_plan_of_a_dry_run(tmp_path: Path, olmix: Olmix) -> None:
    folder = tmp_path / "\x1b]0;pwned\x07 two\nlines"
    folder.mkdir()
    config = hostile_config(folder)
    proc = olmix("launch", "run", "--config", str(config), "--dry-run", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert_no_raw_controls(proc.stdout)
    header = proc.stdout.splitlines()[0]
    assert header.startswith("group hostile-") and "/\\x1b]0;pwned\\x07 two\\nlines/hostile.yaml" in header


def test_every_problem_on_its_own_line_with_its_values_escaped(tmp_path: Path, olmix: Olmix) -> None:
    config = hostile_config(tmp_path)
    text = config.read_text().replace("name: hostile", "name: hostile\nweight_typo: 1")
    config.write_text(text + '    "\\e]0;pwned\\a\\nforged": 1\n')
    for args in (["validate", str(config)], ["launch", "run", "--config", str(config), "--dry-run"]):
        proc = olmix(*args)
        assert proc.returncode == 1
        assert_no_raw_controls(proc.stderr)
        problems = [line for line in proc.stderr.splitlines() if line.startswith(str(config))]
        assert [p.split(": ", 1)[0].rsplit(":", 2)[1:] for p in problems] == [["2", "1"], ["10", "5"]]
        assert "unknown key '\\x1b]0;pwned\\x07\\nforged'" in problems[1]


def test_a_hostile_flag_value_in_an_error(tmp_path: Path, olmix: Olmix) -> None:
    proc = olmix("launch", "status", "--group", "\x1b]0;pwned\x07\nforged", "--runs-dir", str(tmp_path))
    assert proc.returncode == 1
    assert_no_raw_controls(proc.stderr)
    assert "\\x1b]0;pwned\\x07" in proc.stderr


def test_a_hostile_flag_in_a_usage_error(olmix: Olmix) -> None:
    # click shows the value with repr(); this keeps it so
    proc = olmix("launch", "--bogus\x1b[2J")
    assert proc.returncode == 2
    assert_no_raw_controls(proc.stderr)
    assert "No such option '--bogus\\x1b[2J'" in proc.stderr


def test_launch_status_and_list_tables(tmp_path: Path, olmix: Olmix) -> None:
    # A group folder another tool wrote, with a record naming hostile runs.
    group = tmp_path / "runs" / "g-1"
    group.mkdir(parents=True)
    record = (
        '{"record_version": 1, "group": "g-1\\u001b[2J", "backend": "local", "created_at": 0, "updated_at": 0,'
        ' "config": {"path": "c\\u001b]8;;http://evil\\u0007.yaml", "sha256": "' + "0" * 64 + '"},'
        ' "secrets": [], "env": {}, "git_commit": null, "olmix_version": "0", "backend_options": {},'
        ' "trainer_command": ["true"], "plan_file": "plan.json",'
        ' "runs": [{"name": "r\\u001b[31m", "state": "planned", "token": null, "job_id": null,'
        ' "submitted_at": null, "status": null}]}'
    )
    (group / "launch.json").write_text(record)
    listed = olmix("launch", "list", "--runs-dir", str(tmp_path / "runs"))
    status = olmix("launch", "status", "--group", "g-1", "--runs-dir", str(tmp_path / "runs"))
    for proc in (listed, status):
        assert proc.returncode == 0, proc.stderr
        assert_no_raw_controls(proc.stdout + proc.stderr)
    assert "g-1\\x1b[2J" in listed.stdout and "c\\x1b]8;;http://evil\\x07.yaml" in listed.stdout
    assert "r\\x1b[31m" in status.stdout


def test_the_trainer_run_by_hand(tmp_path: Path) -> None:
    from tests.support.tokenfiles import run_plan

    plan = tmp_path / "plan.json"
    document = run_plan(tmp_path / "data", [("arxiv", 1.0, [100])], requested_tokens=50, name="a\x1b[2J")
    document["runs"].append({**document["runs"][0], "name": "b"})
    plan.write_text(json.dumps(document))
    proc = subprocess.run([sys.executable, "-m", "olmix.train", "--plan", str(plan)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert_no_raw_controls(proc.stderr)
    assert "choose one with --run (a\\x1b[2J, b)" in proc.stderr


@pytest.mark.parametrize("command", ["results", "fit"])
def test_results_and_fit_take_a_group_as_one_folder_name(tmp_path: Path, command: str, olmix: Olmix) -> None:
    runs = tmp_path / "runs"
    (tmp_path / "outside" / "r").mkdir(parents=True)
    runs.mkdir()
    extra = ["--out", str(tmp_path / "fit")] if command == "fit" else []
    proc = olmix(command, "--group", "../outside", "--runs-dir", str(runs), *extra)
    assert proc.returncode == 1, proc.stderr
    assert "--group" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "fit").exists()


def test_a_file_name_forges_no_line_in_any_command(tmp_path: Path, olmix: Olmix) -> None:
    # A folder whose name holds a newline and a line of olmix's own: every command that names a path under it
    # (headers, notes, errors, "wrote" lines, tables, a dry run's script) shows the newline as \n.
    folder = tmp_path / f"x\n{FORGED}"
    config = hostile_config(folder)
    bad = folder / "bad.yaml"
    bad.write_text(config.read_text() + "chinchila: 1\n")
    runs = folder / "runs"
    runs_csv = [(f"r{i}", 0.1 + 0.1 * i) for i in range(8)]
    (folder / "ratios.csv").write_text("run,a,b\n" + "".join(f"{r},{w:.1f},{1 - w:.1f}\n" for r, w in runs_csv))
    (folder / "metrics.csv").write_text("run,loss\n" + "".join(f"{r},{3 + w * w - w:.4f}\n" for r, w in runs_csv))
    commands = [
        ["validate", str(bad)],
        ["validate", str(folder / "missing.yaml")],
        ["leaves", str(config)],
        ["launch", "preview", "--config", str(config), "--no-cache", "--plan-out", str(folder / "plan.json")],
        ["launch", "run", "--config", str(config), "--dry-run", "--backend", "slurm", "--runs-dir", str(runs)],
        ["launch", "list", "--runs-dir", str(runs)],
        ["results", "--runs-dir", str(runs)],
        ["demo-data", str(folder / "demo")],
        ["generate", "quality-thresholds", str(REPO / "config/studies/quality_thresholds.yaml"), "--out", str(folder)],
        ["fit", "--ratios", str(folder / "ratios.csv"), "--metrics", str(folder / "metrics.csv"), "--out", str(folder)],
    ]
    silent, forged = [], []
    for args in commands:
        proc = olmix(*args)
        output = proc.stdout + proc.stderr
        if "\\n" + FORGED not in output:
            silent.append(args[:2])  # did not name the folder, as the test means it to
        if any(line.startswith(FORGED) for line in output.splitlines()):
            forged.append(args[:2])
    assert (silent, forged) == ([], [])
