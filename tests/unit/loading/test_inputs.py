"""Inputs olmix will not read: FIFOs and devices (they block or never end), configs over the size cap,
folders that cannot be searched. Each is refused up front, by path and reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from olmix import demodata
from olmix.cli import main
from olmix.loading import inputs

GOOD = "name: t\nsources:\n  - name: a\n    paths: ['s3://b/a/*.npy']\n"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def olmix_process(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # A separate process, so a read that blocks fails the test at the timeout instead of hanging the suite.
    cmd = [sys.executable, "-c", "from olmix.cli import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command", [["validate"], ["launch", "preview", "--config"], ["leaves"]])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, command: list[str]) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    done = olmix_process(*command, str(fifo), timeout=120)
    assert done.returncode == 1, done.stderr
    assert f"{fifo}: is a FIFO (named pipe), not a config file" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_device_is_refused(tmp_path: Path) -> None:
    result = invoke("validate", "/dev/zero")
    assert result.exit_code == 1
    assert "/dev/zero: is a character device, not a config file" in result.stderr


def test_a_fifo_inside_a_folder_is_not_a_config_of_it(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    os.mkfifo(tmp_path / "b.yaml")
    done = olmix_process("validate", str(tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 valid, 0 invalid (1 files)" in done.stdout


def test_a_config_over_the_default_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:  # sparse: the size is checked before a byte is read
        f.truncate(inputs.MAX_CONFIG_BYTES + 1)
    result = invoke("validate", str(big))
    assert result.exit_code == 1
    assert f"{big}: {inputs.MAX_CONFIG_BYTES + 1:,} bytes, over the 10,485,760-byte limit" in result.stderr
    assert "olmix --max-config-bytes N" in result.stderr


def test_the_cap_is_raised_by_flag_or_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(GOOD + "#" * 2000 + "\n")
    size = config.stat().st_size
    assert invoke("--max-config-bytes", "1000", "validate", str(config)).exit_code == 1
    assert invoke("--max-config-bytes", str(size), "validate", str(config)).exit_code == 0
    refused = invoke("validate", str(config), env={"OLMIX_MAX_CONFIG_BYTES": "1000"})
    assert refused.exit_code == 1
    assert f"{size:,} bytes, over the 1,000-byte limit for a config file" in refused.stderr
    assert invoke("validate", str(config), env={"OLMIX_MAX_CONFIG_BYTES": str(size)}).exit_code == 0


def test_a_cap_given_to_one_command_does_not_outlive_it(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(GOOD)
    assert invoke("--max-config-bytes", "10", "validate", str(config)).exit_code == 1
    assert invoke("validate", str(config)).exit_code == 0
    assert inputs.max_config_bytes() == inputs.MAX_CONFIG_BYTES


def test_a_bad_cap_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("--max-config-bytes", "0", "validate", str(tmp_path))
    assert result.exit_code == 2
    assert "--max-config-bytes" in result.stderr


def test_a_file_that_grows_past_the_cap_while_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"x" * 100)
    assert inputs.read_limited(path, 100) == b"x" * 100
    with pytest.raises(inputs.InputError, match="over the 99-byte limit"):
        inputs.read_limited(path, 99)


def test_a_folder_below_that_cannot_be_searched_is_an_error_not_a_silent_skip(tmp_path: Path) -> None:
    # A path longer than the system allows cannot be listed by anyone, root included.
    (tmp_path / "a.yaml").write_text(GOOD)
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        for _ in range(20):
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.rstrip().endswith(": cannot search this folder: File name too long")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can list a folder without permissions; run as another user")
def test_a_folder_without_permissions_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "b.yaml").write_text(GOOD)
    locked.chmod(0)
    try:
        result = invoke("validate", str(tmp_path))
    finally:
        locked.chmod(0o755)
    assert result.exit_code == 1
    assert f"{locked}: cannot search this folder: Permission denied" in result.stderr


@pytest.mark.parametrize("tokens", [demodata.MIN_TOKENS_PER_BUCKET - 1, demodata.MAX_TOKENS_PER_BUCKET + 1])
def test_demo_data_size_is_bounded(tmp_path: Path, tokens: int) -> None:
    with pytest.raises(demodata.DemoDataError, match="tokens per bucket must be between 1,024 and 1,048,576"):
        demodata.write_corpus(tmp_path / "d", tokens_per_bucket=tokens)
    assert not (tmp_path / "d").exists()
    result = invoke("demo-data", str(tmp_path / "d"), "--tokens-per-bucket", str(10**20))
    assert result.exit_code == 2
    assert "1024<=x<=1048576" in result.stderr


def test_demo_data_reports_progress_per_folder(tmp_path: Path) -> None:
    steps: list[int] = []
    demodata.write_corpus(tmp_path, tokens_per_bucket=1024, progress=steps.append)
    files = sorted(tmp_path.rglob("*.npy"))
    assert len(steps) == len(files) // 2  # one call per training folder, its held-out file included
    assert sum(steps) == sum(f.stat().st_size for f in files) // 4
    assert sum(steps) >= demodata.corpus_tokens(1024)  # whole documents: at least what was asked


@pytest.mark.parametrize(
    ("reader", "what"),
    [("olmix.planning.planfile:read_plan", "a plan"), ("olmix.training.metrics:read_metrics", "a metrics file")],
)
def test_records_are_read_only_from_regular_files(tmp_path: Path, reader: str, what: str) -> None:
    fifo = tmp_path / "record.json"
    os.mkfifo(fifo)
    module, name = reader.split(":")
    code = f"import sys; from {module} import {name}\ntry:\n {name}(sys.argv[1])\nexcept Exception as e:\n print(e)"
    done = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == f"{fifo}: is a FIFO (named pipe), not {what}"
