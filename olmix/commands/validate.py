"""`olmix validate` and `olmix schema`."""

from __future__ import annotations

import sys

import click

from olmix.cli import echo, reports_errors
from olmix.commands.options import examples, format_option
from olmix.terminal import escape


@click.command(
    epilog=examples("olmix validate config/", "olmix validate my.yaml --format json", "olmix validate a.yaml b.yaml")
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(), metavar="CONFIG...")
@format_option("text", "json")
@reports_errors
def validate(paths: tuple[str, ...], fmt: str) -> None:
    """Check config files, or folders of them, against their schema and olmix's rules.

    Each file's schema is the one its modeline names, else the mixture schema.
    Exit status 0 when every file is valid, 1 otherwise.
    """
    from olmix.loading.configfiles import config_files
    from olmix.loading.validation import validate_file
    from olmix.render import to_json

    results = [validate_file(path) for path in config_files(paths, recursive=True)]
    bad = [r for r in results if r.problems]
    if fmt == "json":
        report = {"valid": bool(results) and not bad, "files": [r.as_dict() for r in results]}
        echo(to_json(report))
    else:
        for result in bad:
            for problem in result.problems:
                echo(escape(str(problem)), err=True)
        echo(f"{len(results) - len(bad)} valid, {len(bad)} invalid ({len(results)} files)")
    sys.exit(1 if bad or not results else 0)


@click.command(epilog=examples("olmix schema", "olmix schema --name launch-plan"))
@click.option(
    "--name", default="mixture", show_default=True, help="Which schema: mixture, study, launch-plan, metrics."
)
def schema(name: str) -> None:
    """Print the path of a JSON Schema olmix ships (for editor set-up)."""
    from olmix import schemas

    path = schemas.path(name)
    if not path.exists():
        raise click.BadParameter(f"no schema named {name!r}", param_hint="--name")
    echo(str(path))
