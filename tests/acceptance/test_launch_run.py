"""`olmix launch run` end to end, as a user runs it: a real process, real stdin, the local backend."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.mirror import make_mirror

pytestmark = pytest.mark.slow  # launches and trains through the CLI in subprocesses

OLMIX = str(Path(sys.executable).with_name("olmix"))
CONFIG = """\
name: tiny
proxy_model_id: olmo3_1m
chinchilla_multiple: 0.001
cluster: ai2/jupiter
secrets: [OLMIX_TEST_SECRET]
sources:
  - name: web
    quality:
      - {name: high, paths: ['s3://bucket/web/high/*.npy']}
      - {name: low, paths: ['s3://bucket/web/low/*.npy']}
  - name: code
    paths: ['s3://bucket/code/*.npy']
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, list[str]]:
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG)
    path_map = make_mirror(config, tmp_path / "mirror", files_per_pattern=2, tokens_per_file=1_000_000)
    marker = tmp_path / "trained"
    trainer = (
        f"{sys.executable} -c \"import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\\\n')\" {marker} {{plan}}"
    )
    args = [
        "launch",
        "run",
        "--config",
        str(config),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--no-cache",
        "--trainer-command",
        trainer,
        *[f"--path-map={p}={r}" for p, r in path_map],
    ]
    return tmp_path, args


def olmix(args: list[str], stdin: bytes | None = None, env_secret: bool = True) -> subprocess.CompletedProcess[str]:
    """Run olmix; stdin is closed (as in CI or cron) unless given."""
    import os

    env = {**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache"}
    env.pop("OLMIX_TEST_SECRET", None)
    if env_secret:
        env["OLMIX_TEST_SECRET"] = "hunter2-planted"
    proc = subprocess.run(
        [OLMIX, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env=env,
    )
    return _decoded(proc)


def _decoded(proc: subprocess.CompletedProcess[bytes]) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def wait_for(path: Path, lines: int, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(found := path.read_text().splitlines()) >= lines:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{path} did not get {lines} line(s)")


def test_closed_stdin_aborts_with_nothing_submitted(setup: tuple[Path, list[str]]) -> None:
    tmp, args = setup
    proc = olmix(args)
    assert proc.returncode == 1
    assert "Launch 1 run(s) of group tiny-" in proc.stderr and "on local? [y/N]" in proc.stderr
    assert not (tmp / "runs").exists() and not (tmp / "trained").exists()


def test_piped_yes_launches_and_a_rerun_submits_nothing_again(setup: tuple[Path, list[str]]) -> None:
    tmp, args = setup
    proc = olmix(args, stdin=b"y\n")
    assert proc.returncode == 0, proc.stderr
    assert "note: the local backend ignores cluster" in proc.stdout
    (group,) = [p.name for p in (tmp / "runs").iterdir()]
    assert group.startswith("tiny-")
    plan_file = tmp / "runs" / group / "tiny" / "plan.json"
    assert wait_for(tmp / "trained", 1) == [str(plan_file)]
    plan = json.loads(plan_file.read_text())
    assert [leaf["name"] for leaf in plan["runs"][0]["leaves"]] == ["web:high", "web:low", "code"]
    record_text = (tmp / "runs" / group / "launch.json").read_text()
    assert "OLMIX_TEST_SECRET" in record_text and "hunter2-planted" not in record_text
    first = json.loads(record_text)["runs"][0]

    again = olmix([*args, "--yes", "--group", group])
    assert again.returncode == 0, again.stderr
    assert "already submitted tiny" in again.stdout and "0 submitted now, 1 in all" in again.stdout
    entry = json.loads((tmp / "runs" / group / "launch.json").read_text())["runs"][0]
    assert (entry["job_id"], entry["submitted_at"]) == (first["job_id"], first["submitted_at"])
    status = olmix(["launch", "status", "--group", group, "--runs-dir", str(tmp / "runs"), "--json", "--wait"])
    assert status.returncode == 0, status.stderr
    assert [(r["run"], r["state"]) for r in json.loads(status.stdout)["runs"]] == [("tiny", "succeeded")]
    assert (tmp / "trained").read_text().splitlines() == [str(plan_file)]


def test_dry_run_plans_what_a_launch_submits(setup: tuple[Path, list[str]]) -> None:
    tmp, args = setup
    dry = olmix([*args, "--dry-run", "--json"])
    assert dry.returncode == 0, dry.stderr
    launched = olmix([*args, "--yes", "--json"])
    assert launched.returncode == 0, launched.stderr
    group = json.loads(launched.stdout)["group"]
    submitted = json.loads((tmp / "runs" / group / "plan.json").read_text())
    shown = json.loads(dry.stdout)
    # the same plan, but for when the store was listed: the launch lists it again
    listed = [(a.pop("listed_at"), b.pop("listed_at")) for a, b in zip(shown["runs"], submitted["runs"], strict=True)]
    assert all(dry_at <= launch_at for dry_at, launch_at in listed)
    assert shown == submitted


def test_missing_secret_or_wrong_group_submits_nothing(setup: tuple[Path, list[str]]) -> None:
    tmp, args = setup
    proc = olmix([*args, "--yes"], env_secret=False)
    assert proc.returncode == 1
    assert "secret environment variable(s) not set: OLMIX_TEST_SECRET" in proc.stderr
    wrong = olmix([*args, "--yes", "--group", "tiny-00000000"])
    assert wrong.returncode == 1 and "is not the group of these configs" in wrong.stderr
    assert not (tmp / "runs").exists()


def test_invalid_override_is_a_config_error(setup: tuple[Path, list[str]]) -> None:
    tmp, args = setup
    proc = olmix([*args, "--yes", "--set", "chinchilla_multiple=-1"])
    assert proc.returncode == 1
    assert proc.stderr.strip() == "--set chinchilla_multiple=-1: $.chinchilla_multiple: must be greater than 0, not -1"
    assert "Traceback" not in proc.stderr and not (tmp / "runs").exists()


def test_a_folder_of_configs_is_one_group_of_runs(setup: tuple[Path, list[str]]) -> None:
    tmp, args = setup
    study = tmp / "study"
    study.mkdir()
    (study / "b.yaml").write_text(CONFIG.replace("name: tiny", "name: tiny-b"))
    (study / "a.yaml").write_text(CONFIG.replace("name: tiny", "name: tiny-a"))
    args = [str(study) if a == str(tmp / "tiny.yaml") else a for a in args]
    dry = olmix([*args, "--dry-run", "--json"])
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["group"].startswith("study-")
    assert [(r["name"], Path(r["config"]["path"]).name) for r in plan["runs"]] == [
        ("tiny-a", "a.yaml"),
        ("tiny-b", "b.yaml"),
    ]
    (study / "c.yaml").write_text(CONFIG)
    (study / "d.yaml").write_text(CONFIG)
    clash = olmix([*args, "--dry-run"])
    assert clash.returncode == 1
    assert f"{study / 'd.yaml'}: $.name: run name 'tiny' is also the name in {study / 'c.yaml'}" in clash.stderr


def test_dry_run_and_confirmation_show_each_runs_command_and_environment(setup: tuple[Path, list[str]]) -> None:
    tmp, args = setup
    config = tmp / "tiny.yaml"
    config.write_text(
        CONFIG + "trainer_command: ['{python}', '-c', 'pass', '--plan', '{plan}', '--name', '{run}']\n"
        "env: {WANDB_MODE: offline, NOTE: 'two words'}\n"
    )
    flag = args.index("--trainer-command")
    args = args[:flag] + args[flag + 2 :]
    dry = olmix([*args, "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    group = next(line.split()[1] for line in dry.stdout.splitlines() if line.startswith("group "))
    plan = (tmp / "runs").resolve() / group / "tiny" / "plan.json"
    shown = [
        f"each run executes (trainer command from the config {config}):",
        f"  tiny: {sys.executable} -c pass --plan {plan} --name tiny",
        f"with environment variables (from the config {config}):",
        "  WANDB_MODE=offline",
        "  NOTE='two words'",
        f"with secrets from this environment (from the config {config}; values not shown):",
        "  OLMIX_TEST_SECRET",
    ]
    # then the backend's notes (the local backend ignores cluster)
    assert [line for line in dry.stdout.splitlines() if not line.startswith("note: ")][-len(shown) :] == shown
    assert dry.stdout.splitlines()[-1] == "note: the local backend ignores cluster"
    assert not (tmp / "runs").exists()

    asked = olmix(args)  # stdin closed: shown, asked, nothing launched
    assert asked.returncode == 1 and "Launch 1 run(s)" in asked.stderr
    lines = asked.stdout.splitlines()
    start = lines.index(shown[0])
    assert lines[start : start + len(shown)] == shown
    assert "hunter2-planted" not in asked.stdout + asked.stderr
    assert not (tmp / "runs").exists()


@pytest.mark.parametrize(
    ("command", "message"),
    [("{python} -c pass {plan_file}", "bad placeholder 'plan_file'"), ("no-such-trainer-7f {plan}", "not on PATH")],
)
def test_a_bad_trainer_command_is_refused_before_the_confirmation(
    setup: tuple[Path, list[str]], command: str, message: str
) -> None:
    tmp, args = setup
    args[args.index("--trainer-command") + 1] = command
    proc = olmix(args, stdin=b"y\n")
    assert proc.returncode == 1 and message in proc.stderr
    assert "Launch 1 run(s)" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp / "runs").exists()


@pytest.mark.parametrize("group", ["../x", "/etc", "..", ".lock", "a\nb"])
def test_an_unsafe_group_is_refused_before_anything_is_read_or_written(
    setup: tuple[Path, list[str]], group: str
) -> None:
    tmp, args = setup
    for command in (
        [*args, "--yes", "--group", group],
        ["launch", "status", "--group", group, "--runs-dir", str(tmp / "runs")],
        ["launch", "cancel", "--yes", "--group", group, "--runs-dir", str(tmp / "runs")],
    ):
        proc = olmix(command)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("--group " if command[1] == "run" else "group "), proc.stderr
    assert not (tmp / "runs").exists()


def test_a_secret_too_short_to_mask_submits_nothing(setup: tuple[Path, list[str]]) -> None:
    import os

    tmp, args = setup
    env = {**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache", "OLMIX_TEST_SECRET": "abc"}
    proc = _decoded(subprocess.run([OLMIX, *args, "--yes"], capture_output=True, env=env, stdin=subprocess.DEVNULL))
    assert proc.returncode == 1
    assert "too short to mask" in proc.stderr and "OLMIX_TEST_SECRET (3 bytes)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp / "runs").exists()


def test_a_dry_run_of_a_launched_group_shows_the_command_a_resume_keeps(setup: tuple[Path, list[str]]) -> None:
    tmp, args = setup
    launched = olmix([*args, "--yes", "--json"])
    assert launched.returncode == 0, launched.stderr
    group = json.loads(launched.stdout)["group"]
    recorded = json.loads((tmp / "runs" / group / "launch.json").read_text())["runs"][0]["command"]
    flag = args.index("--trainer-command")
    dry = olmix([*args[:flag], *args[flag + 2 :], "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    start = lines.index("each run executes (trainer command as recorded for the group; --trainer-command changes it):")
    assert lines[start + 1] == "  tiny: " + " ".join(shlex.quote(part) for part in recorded)


def test_a_failed_run_shows_why_and_is_retried_once_keeping_every_attempt(setup: tuple[Path, list[str]]) -> None:
    tmp, args = setup
    flag = tmp / "failed-once"
    script = tmp / "flaky.py"
    script.write_text(
        "import os, sys\n"
        f"if not os.path.exists({str(flag)!r}):\n"
        f"    open({str(flag)!r}, 'w').close()\n"
        "    print('loading shards', flush=True); print('CUDA out of memory', file=sys.stderr); sys.exit(7)\n"
        "print('trained')\n"
    )
    args[args.index("--trainer-command") + 1] = f"{sys.executable} {script}"
    launched = olmix([*args, "--yes", "--json"])
    assert launched.returncode == 0, launched.stderr
    group = json.loads(launched.stdout)["group"]
    runs_dir = ["--runs-dir", str(tmp / "runs")]

    waited = olmix(["launch", "status", "--group", group, *runs_dir, "--json", "--wait"])
    assert waited.returncode == 1
    (run,) = json.loads(waited.stdout)["runs"]
    assert (run["state"], run["exit_code"], run["reason"]) == ("failed", 7, "exit code 7")
    assert run["log_tail"] == ["loading shards", "CUDA out of memory"]
    text = olmix(["launch", "status", "--group", group, *runs_dir])
    assert "tiny failed: exit code 7" in text.stdout
    assert "  | CUDA out of memory" in text.stdout
    assert f"olmix launch retry --group {group} --runs-dir {tmp / 'runs'}" in text.stdout

    refused = olmix(["launch", "retry", "--group", group, *runs_dir])  # closed stdin: no confirmation
    assert refused.returncode == 1 and "Retry 1 run(s) of group" in refused.stderr
    retried = olmix(["launch", "retry", "--group", group, *runs_dir, "--yes"])
    assert retried.returncode == 0, retried.stderr
    assert "submitted tiny: job" in retried.stdout and "1 submitted now" in retried.stdout
    done = olmix(["launch", "status", "--group", group, *runs_dir, "--json", "--wait"])
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert (run["state"], run["reason"], run["attempts"]) == ("succeeded", None, 2)
    # the same attempt is never retried twice: by the retry command or by a launch with --retry-failed
    again = olmix(["launch", "retry", "--group", group, *runs_dir, "--yes"])
    assert again.returncode == 0 and "nothing to retry" in again.stdout
    rerun = olmix([*args, "--retry-failed", "--yes"])
    assert rerun.returncode == 0, rerun.stderr
    assert "to retry (failed or cancelled): none" in rerun.stdout and "0 submitted now" in rerun.stdout
    record = json.loads((tmp / "runs" / group / "launch.json").read_text())
    (entry,) = record["runs"]
    assert [a["status"]["exit_code"] for a in entry["attempts"]] == [7]
    log = tmp / "runs" / group / "tiny" / "attempts" / "1" / "train.log"
    assert log.read_text().splitlines() == ["loading shards", "CUDA out of memory"]


def test_launch_run_retry_failed_submits_the_failed_runs_again(setup: tuple[Path, list[str]]) -> None:
    tmp, args = setup
    args[args.index("--trainer-command") + 1] = "false"
    launched = olmix([*args, "--yes", "--json"])
    assert launched.returncode == 0, launched.stderr
    group = json.loads(launched.stdout)["group"]
    waited = olmix(["launch", "status", "--group", group, "--runs-dir", str(tmp / "runs"), "--json", "--wait"])
    assert waited.returncode == 1
    plain = olmix([*args, "--yes"])
    assert "already submitted tiny" in plain.stdout and "0 submitted now" in plain.stdout
    retried = olmix([*args, "--retry-failed", "--yes"])
    assert retried.returncode == 0, retried.stderr
    assert "to retry (failed or cancelled): tiny" in retried.stdout and "1 submitted now" in retried.stdout
    (entry,) = json.loads((tmp / "runs" / group / "launch.json").read_text())["runs"]
    assert len(entry["attempts"]) == 1 and entry["state"] == "submitted"


def test_moving_a_group_to_another_backend_is_refused_with_the_command_that_launches_a_new_group(
    setup: tuple[Path, list[str]],
) -> None:
    _, args = setup
    launched = olmix([*args, "--set", "seed=3", "--yes", "--json"])
    assert launched.returncode == 0, launched.stderr
    group = json.loads(launched.stdout)["group"]
    moved = olmix([*args, "--set", "seed=3", "--backend", "slurm", "--yes"])
    assert moved.returncode == 1
    assert "Traceback" not in moved.stderr and f"group {group} was launched on backend 'local'" in moved.stderr
    suggested = shlex.split(moved.stderr.split("(any --set makes one): ")[1].strip())
    assert suggested[:3] == ["olmix", "launch", "run"] and "--config" not in suggested
    # the suggested command, with this test's flags, plans the same configs and overrides as a new group
    flags = args[args.index("--runs-dir") :]
    dry = olmix([*suggested[1:], *flags, "--dry-run", "--json"])
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["group"] != group and plan["group"].startswith("tiny-")
    assert plan["config"]["overrides"][0] == "seed=3"
    assert plan["runs"][0]["seed"] == 3
