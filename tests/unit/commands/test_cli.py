"""The command line's own behaviour: the command list, and what start-up imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from olmix.cli import COMMANDS, SHORT_HELP, main

REPO = Path(__file__).resolve().parents[3]


def test_the_command_list_is_what_click_would_print_from_the_commands() -> None:
    ctx = click.Context(main, info_name="olmix")
    ours = click.HelpFormatter(width=80)
    main.format_commands(ctx, ours)
    theirs = click.HelpFormatter(width=80)
    click.Group.format_commands(main, ctx, theirs)  # imports every command for its docstring
    assert set(SHORT_HELP) == set(COMMANDS)
    assert ours.getvalue() == theirs.getvalue()
    assert "launch     Plan and launch the runs of a mixture config." in CliRunner().invoke(main, ["--help"]).output


def _modules_after(args: list[str]) -> set[str]:
    """The modules loaded by a successful `olmix ARGS`, in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "from olmix.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        "print(json.dumps([status, sorted(sys.modules)]), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    status, modules = json.loads(out.stderr.strip().splitlines()[-1])
    assert status in (0, None), out.stderr
    return set(modules)


def test_help_imports_no_command_and_nothing_heavy() -> None:
    loaded = _modules_after(["--help"])
    assert "olmix.cli" in loaded
    heavy = {"olmix.commands", "pydantic", "yaml", "jsonschema", "fsspec", "torch", "olmo_core", "beaker", "grpc"}
    assert not {m for m in loaded if m.split(".")[0] in heavy or m.startswith("olmix.commands")}


def test_a_dry_run_imports_neither_training_nor_remote_storage(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "a.npy").write_bytes(b"\0" * 4 * 2_000_000)
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: c\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.05\n"
        f"sources:\n  - name: a\n    paths: ['{data}/*.npy']\n"
    )
    loaded = _modules_after(["launch", "run", "--config", str(config), "--dry-run", "--no-cache"])
    assert "olmix.planning.plan" in loaded  # it did plan
    assert not {m for m in loaded if m.split(".")[0] in {"torch", "olmo_core", "fsspec", "s3fs", "jsonschema"}}


def test_the_version_is_written_once_and_every_reader_agrees() -> None:
    import importlib.metadata
    import tomllib

    from click.testing import CliRunner

    from olmix import __version__
    from olmix.cli import main

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]  # pyproject reads olmix.__version__
    assert importlib.metadata.version("olmix") == __version__
    assert CliRunner().invoke(main, ["--version"]).output.split()[-1] == __version__
