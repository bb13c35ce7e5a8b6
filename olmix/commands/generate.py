"""`olmix generate`: experiment configs written from a study."""

from __future__ import annotations

import sys

import click

from olmix.cli import echo, reports_errors


def _shown(path: object) -> str:
    """A path relative to the working directory when it lies below it."""
    import os

    text = os.path.relpath(str(path))
    return str(path) if text.startswith("..") else text


@click.group()
def generate() -> None:
    """Write experiment configs from a study file."""


@generate.command("quality-thresholds")
@click.argument("study", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--force", is_flag=True, help="Overwrite files that differ from what the study produces.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file is missing, differs or is stale.")
@reports_errors
def quality_thresholds(study: str, out_dir: str, force: bool, check: bool) -> None:
    """One experiment config per threshold (× profile) of STUDY, as OUT/[PROFILE/]quality_top{NN}pct.yaml.

    The output is the same bytes on every run. An existing file that differs is
    not overwritten without --force, so a hand edit is never lost silently.
    """
    from pathlib import Path

    from olmix import config, fileio, studyfiles

    doc, _ = config.load_document(study, "study")
    out = Path(out_dir)
    files = studyfiles.files(doc, out)
    stale = studyfiles.stale(out, [path for path, _ in files])
    if check:
        drift = [(path, fileio.status(path, data)) for path, data in files]
        bad = [(path, "missing" if state == "new" else "differs") for path, state in drift if state != "same"]
        bad += [(path, "stale: the study no longer produces it") for path in stale]
        for path, why in bad:
            echo(f"{_shown(path)}: {why}", err=True)
        if bad:
            echo(
                f"{len(bad)} file(s) out of date; regenerate with: olmix generate quality-thresholds {study} "
                f"--out {out_dir}",
                err=True,
            )
            sys.exit(1)
        echo(f"{len(files)} file(s) match {study}")
        return
    for path, what in fileio.write_all(files, force=force):
        echo(f"{what} {_shown(path)}")
    for path in stale:
        echo(f"note: {_shown(path)} is not produced by the study any more (left in place)", err=True)
