"""`olmix migrate`."""

from __future__ import annotations

import sys

import click

from olmix.cli import echo, reports_errors
from olmix.commands.options import examples


@click.command(
    epilog=examples(
        "olmix migrate upstream/configs/examples/launch --out config/migrated",
        "olmix launch preview config/migrated/data_proportions/mix_baseline.yaml",
    )
)
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--force", is_flag=True, help="Overwrite files that differ.")
@reports_errors
def migrate(sources: tuple[str, ...], out_dir: str, force: bool) -> None:
    """Convert upstream olmix launch, generation and fit configs into mixture configs.

    SOURCES are files or folders (their YAML files, recursively). A launch or
    generation config becomes OUT/NAME.yaml, a mixture config that validates;
    a fit config becomes the `olmix fit` command that does the same. Every
    upstream setting that is not carried is named in a note, FILE:LINE:COL:
    FIELD: why. Nothing is written unless every config converts and validates.
    """
    import shlex
    from pathlib import Path

    from olmix import fileio
    from olmix.errors import ConfigError
    from olmix.migrate import migrate as convert
    from olmix.terminal import escape

    outcome = convert(list(sources), Path(out_dir))
    for result in outcome.results:
        for note in result.notes:
            echo(f"note: {escape(str(note))}", err=True)
    if outcome.problems:
        raise ConfigError(outcome.problems)
    for result in outcome.results:
        if result.fit_command is not None:
            command = " ".join(shlex.quote(arg) for arg in result.fit_command)
            echo(f"{result.source}: a fit config; the same fit here:\n  {command}")
    for path, what in fileio.write_all(outcome.files, force=force):
        echo(f"{what} {path}")
    configs = sum(r.config is not None for r in outcome.results)
    notes = sum(len(r.notes) for r in outcome.results)
    echo(
        f"{len(outcome.results)} upstream configs: {configs} as mixture configs, "
        f"{len(outcome.results) - configs} fit configs as commands; {notes} notes"
    )
    sys.exit(0)
