"""The `olmix` command line: a thin layer that parses flags and renders results.

Each command lives in its own module under olmix.commands and is imported
only when needed; command modules import nothing heavy at module level, so
`olmix --help` stays fast. Adding a command is one module and one line here.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from olmix import __version__

COMMANDS = {
    "validate": "olmix.commands.validate:validate",
    "schema": "olmix.commands.validate:schema",
    "leaves": "olmix.commands.leaves:leaves",
    "generate": "olmix.commands.generate:generate",
    "launch": "olmix.commands.launch:launch",
    "demo-data": "olmix.commands.demo_data:demo_data",
    "results": "olmix.commands.results:results",
    "fit": "olmix.commands.fit:fit",
    "migrate": "olmix.commands.migrate:migrate",
}

F = TypeVar("F", bound=Callable[..., Any])


def echo(message: str = "", err: bool = False) -> None:
    """click.echo for any text built from configs, flags or records: control characters escaped.

    A message is one line (a newline a value brought is shown as \\n), unless it
    is a olmix.terminal.Lines: a table or JSON document olmix laid out.
    """
    from olmix.terminal import shown

    click.echo(shown(message), err=err)


def render_error(exc: BaseException) -> str:
    """An error's message for the terminal: one line per problem, each value's control characters escaped."""
    from olmix.terminal import error_text, escape

    parts = getattr(exc, "problems", None) or getattr(exc, "issues", None) or getattr(exc, "lines", None)
    if isinstance(parts, list | tuple) and parts:
        # a problem's own text is one line: a newline in it came from the input, never from olmix
        return "\n".join(escape(str(part)) for part in parts)
    return error_text(str(exc))


def reports_errors(func: F) -> F:
    """Turn olmix's own errors into their message and exit status 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from olmix.errors import OlmixError

        try:
            return func(*args, **kwargs)
        except OlmixError as exc:
            click.echo(render_error(exc), err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


# The first sentence of each command's help: `olmix --help` lists these without importing any
# command module (a test keeps them equal to the commands' own).
SHORT_HELP = {
    "demo-data": "Write a small synthetic corpus in the layout of s3://ai2-llm/preprocessed/ under DIRECTORY.",
    "fit": "Fit how each metric depends on the mixture and propose the mixture that minimises the objective.",
    "generate": "Write experiment configs from a study file.",
    "launch": "Plan and launch the runs of a mixture config.",
    "migrate": "Convert upstream olmix launch, generation and fit configs into mixture configs.",
    "leaves": "The leaves of CONFIG in config order: name, repetition cap, weights along the ancestry, paths.",
    "results": "Held-out loss per source against quality threshold, for every finished run of a group.",
    "schema": "Print the path of a JSON Schema olmix ships (for editor set-up).",
    "validate": "Check config files, or folders of them, against their schema and olmix's rules.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))  # as click.Group lays it out
        rows = [(name, click.Command(name, help=SHORT_HELP[name]).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, package_name="olmix")
@click.option(
    "--max-config-bytes",
    type=click.IntRange(min=1),
    envvar="OLMIX_MAX_CONFIG_BYTES",
    help="Refuse config files larger than this [default: 10 MiB; env OLMIX_MAX_CONFIG_BYTES].",
)
def main(max_config_bytes: int | None) -> None:
    """Pretraining data-mixture experiments from a validated YAML spec."""
    from olmix.loading import inputs

    inputs.set_max_config_bytes(max_config_bytes)  # every invocation: a value never outlives its command
    skip_pydantic_plugins()


def skip_pydantic_plugins() -> None:
    """Tell pydantic, in an olmix program's own process, that there are no plugins to look for.

    olmix uses none, and looking for them reads the entry points of every
    installed distribution (tens of ms with torch installed) when the process
    builds its first model. Programs (this CLI, `python -m olmix.train`) call
    this; importing olmix as a library changes nothing. A value the user set
    is kept.
    """
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
