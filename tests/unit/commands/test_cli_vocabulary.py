"""One concept, one option name and one environment variable in every command that takes it (olmix.commands.options).

The walk covers every command `olmix --help` lists, groups included; a command added later is held to the same
table without a change here.
"""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from olmix.cli import COMMANDS, main

# concept -> (the option's one spelling, its environment variable or None); a parameter belongs to a concept by
# the name it is passed as
CONCEPTS = {
    "runs_dir": ("--runs-dir", "OLMIX_RUNS_DIR"),
    "output": ("--runs-dir", "OLMIX_RUNS_DIR"),  # the launch commands pass the runs folder as `output`
    "fmt": ("--format", None),
    "path_map": ("--path-map", None),
    "overrides": ("--set", None),
}
# spellings of those concepts that must not come back as an option of their own
RETIRED = {"--runs", "--runs-folder", "--output-dir", "--out-format", "--csv-out", "--path-mapping", "--override"}


def _commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                yield f"{name} {sub.name}", sub
        else:
            yield name, command


COMMAND_LIST = list(_commands())
IDS = [name for name, _ in COMMAND_LIST]


@pytest.mark.parametrize(("name", "command"), COMMAND_LIST, ids=IDS)
def test_each_concept_has_one_spelling(name: str, command: click.Command) -> None:
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        assert not set(param.opts) & RETIRED, f"olmix {name}: {param.opts} is a retired spelling"
        if (concept := CONCEPTS.get(str(param.name))) is not None:
            flag, env = concept
            assert param.opts[0] == flag, f"olmix {name}: {param.name} is {param.opts[0]}, not {flag}"
            if env is not None:
                assert param.envvar == env, f"olmix {name}: {flag} does not read {env}"


@pytest.mark.parametrize(("name", "command"), COMMAND_LIST, ids=IDS)
def test_json_and_csv_are_only_short_forms_of_format(name: str, command: click.Command) -> None:
    opts = {opt for param in command.params for opt in param.opts}
    if "--json" in opts or "--csv" in opts:
        assert "--format" in opts, f"olmix {name}: --json without --format"


@pytest.mark.parametrize(("name", "command"), COMMAND_LIST, ids=IDS)
def test_every_command_shows_an_example_that_names_it(name: str, command: click.Command) -> None:
    assert command.epilog and "Examples:" in command.epilog, f"olmix {name} --help has no examples"
    assert f"olmix {name}" in command.epilog


@pytest.mark.parametrize(("name", "command"), COMMAND_LIST, ids=IDS)
def test_a_path_map_option_names_its_environment_variable(name: str, command: click.Command) -> None:
    for param in command.params:
        if param.name == "path_map":
            assert isinstance(param, click.Option) and "OLMIX_PATH_MAP" in (param.help or "")


def test_commands_that_print_data_offer_every_format_they_print() -> None:
    has_format = {name for name, command in COMMAND_LIST if any(p.name == "fmt" for p in command.params)}
    assert {"validate", "leaves", "results", "launch run", "launch preview", "launch status", "launch list"} <= (
        has_format
    )
    assert {"generate swarm", "generate quality-thresholds"} <= has_format


def test_the_runs_folder_comes_from_the_environment_in_every_command_that_takes_it(
    tmp_path: click.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    takes = [name for name, command in COMMAND_LIST if any(p.name in ("runs_dir", "output") for p in command.params)]
    assert {"launch run", "launch preview", "launch status", "launch cancel", "launch list", "results", "fit"} <= set(
        takes
    )
    result = CliRunner().invoke(main, ["launch", "list", "--format", "json"], env={"OLMIX_RUNS_DIR": "/nowhere/x"})
    assert result.exit_code == 0 and '"runs_dir": "/nowhere/x"' in result.output


def test_two_formats_at_once_are_refused() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["results", "--json", "--csv"])
    assert result.exit_code == 2 and "choose one output format, not csv and json" in result.output


def test_launch_takes_its_configs_as_arguments_like_every_other_command(tmp_path: click.Path) -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["launch", "run", "no-such-folder/", "--dry-run"])
    assert "Missing option" not in result.output and "no-such-folder" in result.output
    assert CliRunner().invoke(main, ["launch", "run", "--dry-run"]).exit_code == 2
