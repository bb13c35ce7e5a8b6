"""The in-process way of running olmix (tests/support/olmixcli.py) reports what a real process would show."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import olmixcli


def test_an_exception_olmix_lets_through_fails_the_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: Path) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("olmix.loading.validation.validate_file", broken)
    (tmp_path / "c.yaml").write_text("name: t\n")
    with pytest.raises(AssertionError, match="ended in a traceback"):
        olmixcli.in_process("validate", "c.yaml", cwd=tmp_path)


def test_exit_status_streams_folder_and_environment(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("name: t\nsources: []\n")
    done = olmixcli.in_process("validate", "c.yaml", cwd=tmp_path, env={"OLMIX_MAX_CONFIG_BYTES": "5"})
    assert done.returncode == 1
    assert done.stdout == "0 valid, 1 invalid (1 files)\n"
    # the environment reached the command (a 20-byte file over a 5-byte cap), and the folder named the file
    assert done.stderr.startswith("c.yaml: 20 bytes, over the 5-byte limit")


def test_a_cap_set_for_one_command_does_not_outlive_it(tmp_path: Path) -> None:
    from olmix.loading import inputs

    olmixcli.in_process("--max-config-bytes", "5", "validate", "c.yaml", cwd=tmp_path)
    assert inputs.max_config_bytes() == inputs.MAX_CONFIG_BYTES
