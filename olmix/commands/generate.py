"""`olmix generate`: experiment configs written from a study."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from olmix.cli import echo, reports_errors
from olmix.commands.options import examples, format_option, path_map_option

if TYPE_CHECKING:
    from pathlib import Path


def _shown(path: object) -> str:
    """A path relative to the working directory when it lies below it."""
    import os

    text = os.path.relpath(str(path))
    return str(path) if text.startswith("..") else text


@click.group()
def generate() -> None:
    """Write experiment configs from a study file."""


@generate.command(
    "quality-thresholds",
    epilog=examples(
        "olmix generate quality-thresholds config/studies/quality_thresholds.yaml "
        "--out config/examples/launch/quality_thresholds",
        "olmix generate quality-thresholds my_study.yaml --out configs/ --check",
    ),
)
@click.argument("study", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--force", is_flag=True, help="Overwrite files that differ from what the study produces.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file is missing, differs or is stale.")
@format_option("text", "json")
@reports_errors
def quality_thresholds(study: str, out_dir: str, force: bool, check: bool, fmt: str) -> None:
    """One experiment config per threshold (× profile) of STUDY, as OUT/[PROFILE/]quality_top{NN}pct.yaml.

    The output is the same bytes on every run. An existing file that differs is
    not overwritten without --force, so a hand edit is never lost silently.
    """
    from pathlib import Path

    from olmix.loading import config
    from olmix.study import files as studyfiles

    doc, _ = config.load_document(study, "study")
    out = Path(out_dir)
    files = studyfiles.files(doc, out)
    stale = studyfiles.stale(out, [path for path, _ in files])
    _check_or_write(
        files,
        stale,
        source=study,
        again=f"olmix generate quality-thresholds {study} --out {out_dir}",
        check=check,
        force=force,
        fmt=fmt,
    )


@generate.command(
    "swarm",
    epilog=examples(
        "olmix generate swarm config/examples/swarm/demo_swarm.yaml --out swarm/ "
        "--path-map s3://ai2-llm/preprocessed/=demo/data/",
        "olmix generate swarm my_swarm.yaml --out swarm/ --variants 64 --seed 1",
    ),
)
@click.argument("config", type=click.Path(dir_okay=False), metavar="CONFIG")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option(
    "--variants", type=click.IntRange(min=2, max=10_000), help="Number of mixtures (default: the config's variants)."
)
@click.option("--seed", type=int, help="Random seed of the sampler (default: the config's seed).")
@click.option("--force", is_flag=True, help="Overwrite files that differ from what the sampler produces.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file is missing or differs.")
@path_map_option
@format_option("text", "json")
@reports_errors
def swarm(
    config: str,
    out_dir: str,
    variants: int | None,
    seed: int | None,
    force: bool,
    check: bool,
    path_map: list[tuple[str, str]],
    fmt: str,
) -> None:
    """Sample a swarm of mixtures around CONFIG: one config per variant, with a weight on every node.

    The same config and seed give the same bytes on every run. An existing file
    that differs is not overwritten without --force.
    """
    from pathlib import Path

    from olmix.swarm.configs import swarm as sample_swarm

    out = Path(out_dir)
    drawn, notes = sample_swarm(config, variants=variants, seed=seed, path_map=path_map, out_dir=out)
    files = [(out / name, data) for name, data in drawn]
    for note in notes:
        echo(f"note: {note}", err=True)
    _check_or_write(
        files,
        [],
        source=config,
        again=f"olmix generate swarm {config} --out {out_dir}",
        check=check,
        force=force,
        fmt=fmt,
    )


def _check_or_write(
    files: list[tuple[Path, bytes]],
    stale: list[Path],
    *,
    source: str,
    again: str,
    check: bool,
    force: bool,
    fmt: str = "text",
) -> None:
    """With `check`, report every file that is missing, differs or is stale and exit 1 if any; else write them."""
    from olmix import fileio

    if check:
        drift = [(path, fileio.status(path, data)) for path, data in files]
        bad = [(path, "missing" if state == "new" else "differs") for path, state in drift if state != "same"]
        bad += [(path, f"stale: {source} no longer produces it") for path in stale]
        for path, why in bad:
            echo(f"{_shown(path)}: {why}", err=True)
        if bad:
            echo(f"{len(bad)} file(s) out of date; regenerate with: {again}", err=True)
            sys.exit(1)
        echo(f"{len(files)} file(s) match {source}")
        return
    written = fileio.write_all(files, force=force)
    if fmt == "json":
        from olmix.render import to_json

        kept = [str(path) for path in stale]
        echo(to_json({"files": [{"path": str(path), "what": what} for path, what in written], "stale": kept}))
        return
    for path, what in written:
        echo(f"{what} {_shown(path)}")
    for path in stale:
        echo(f"note: {_shown(path)} is not produced by {source} any more (left in place)", err=True)
