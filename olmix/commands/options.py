"""The options every command that takes a concept spells the same way: one name, one environment variable.

| concept              | option                      | environment      |
| -------------------- | --------------------------- | ---------------- |
| the runs folder      | --runs-dir DIR              | OLMIX_RUNS_DIR   |
| output for scripts   | --format text|json[|csv]    |                  |
|                      | (--json, --csv: short forms)|                  |
| mirrors of the store | --path-map PREFIX=REPL      | OLMIX_PATH_MAP   |
| config overrides     | --set KEY=VALUE             |                  |
| the configs          | CONFIG... (argument)        |                  |

tests/unit/commands/test_cli_vocabulary.py walks every command and holds them to this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any

import click

RUNS_DIR_ENV = "OLMIX_RUNS_DIR"
PATH_MAP_ENV = "OLMIX_PATH_MAP"
DEFAULT_RUNS_DIR = "runs"
PATH_MAP_HELP = (
    "Point a URL prefix at a mirror: PREFIX=REPLACEMENT, e.g. s3://ai2-llm/preprocessed/=/data/ai2-llm/. "
    f"Repeatable; the first matching prefix wins. Also read from ${PATH_MAP_ENV} "
    "(entries separated by ';'), after the flags."
)

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def runs_dir_option(dest: str = "runs_dir") -> Decorator:
    """`--runs-dir DIR` (env OLMIX_RUNS_DIR, default ./runs) passed as `dest`, a Path; `--output` is its hidden,
    deprecated old name."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(func)
        def merged(*args: Any, **kwargs: Any) -> Any:
            given, alias = kwargs.pop(dest), kwargs.pop("output_alias")
            if alias is not None:
                from olmix.cli import echo

                echo("note: --output is deprecated; it is called --runs-dir now", err=True)
                given = alias
            return func(*args, **{dest: Path(given or DEFAULT_RUNS_DIR)}, **kwargs)

        folder = click.Path(file_okay=False, path_type=Path)
        alias = click.option("--output", "output_alias", type=folder, hidden=True, help="Deprecated: --runs-dir.")
        option = click.option(
            "--runs-dir",
            dest,
            type=folder,
            envvar=RUNS_DIR_ENV,
            show_envvar=True,
            show_default=DEFAULT_RUNS_DIR,
            help="Folder holding launched groups, <group>/<run>/.",
        )
        return option(alias(merged))

    return decorate


def format_option(*choices: str) -> Decorator:
    """`--format` among `choices` (text first, the default), passed as `fmt`; `--json` (and `--csv`, where CSV is a
    choice) are its short forms."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(func)
        def merged(*args: Any, fmt: str | None, as_json: bool, as_csv: bool = False, **kwargs: Any) -> Any:
            asked = {name for name, flag in (("json", as_json), ("csv", as_csv)) if flag}
            if fmt is not None:
                asked.add(fmt)
            if len(asked) > 1:
                raise click.UsageError(f"choose one output format, not {' and '.join(sorted(asked))}")
            return func(*args, fmt=asked.pop() if asked else choices[0], **kwargs)

        options = [
            click.option(
                "--format",
                "fmt",
                type=click.Choice(list(choices)),
                help=f"Output: {', '.join(choices)} [default: {choices[0]}].",
            ),
            click.option("--json", "as_json", is_flag=True, help="Same as --format json."),
        ]
        if "csv" in choices:
            options.append(click.option("--csv", "as_csv", is_flag=True, help="Same as --format csv."))
        out: Callable[..., Any] = merged
        for option in reversed(options):
            out = option(out)
        return out

    return decorate


def path_map_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--path-map PREFIX=REPLACEMENT` (repeatable), passed as `path_map`: the flags' entries, then
    OLMIX_PATH_MAP's."""

    @wraps(func)
    def merged(*args: Any, path_map: Sequence[str], **kwargs: Any) -> Any:
        from olmix.cli import reports_errors

        entries = reports_errors(path_map_entries)(path_map)  # a malformed entry is a message, not a traceback
        return func(*args, path_map=entries, **kwargs)

    option = click.option("--path-map", "path_map", multiple=True, metavar="PREFIX=REPLACEMENT", help=PATH_MAP_HELP)
    return option(merged)


def path_map_entries(flags: Sequence[str]) -> list[tuple[str, str]]:
    from olmix.planning.resolve import parse_path_map, path_map_from_env

    return [*parse_path_map(flags), *path_map_from_env()]


def set_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--set KEY=VALUE` (repeatable), passed as `overrides`: a config field, before validation."""
    return click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a config field before validation, e.g. --set chinchilla_multiple=0.002 "
        "or --set sources[0].weight=2 (repeatable; VALUE is YAML).",
    )(func)


def configs_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    """`CONFIG...` (files or folders of them), passed as `config`; `--config` (repeatable) is its long form."""

    @wraps(func)
    def merged(*args: Any, config: tuple[str, ...], config_option: tuple[str, ...], **kwargs: Any) -> Any:
        given = (*config, *config_option)
        if not given:
            raise click.UsageError("name at least one CONFIG (a file, or a folder of them)")
        return func(*args, config=given, **kwargs)

    argument = click.argument("config", nargs=-1, type=click.Path(), metavar="CONFIG...")
    option = click.option(
        "--config",
        "config_option",
        multiple=True,
        type=click.Path(),
        help="Mixture config, or a folder of them (repeatable; the same as naming them as arguments).",
    )
    return argument(option(merged))


def examples(*lines: str) -> str:
    """An `Examples:` epilog for a command's --help, laid out as written."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
