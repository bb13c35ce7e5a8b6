"""`olmix results`: a group's metrics as a table, JSON, CSV or a plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from olmix.cli import echo, reports_errors
from olmix.commands.options import examples, format_option, runs_dir_option
from olmix.render import table, to_csv, to_json

if TYPE_CHECKING:
    from olmix.results.collect import RunResult


@click.command(
    epilog=examples(
        "olmix results",
        "olmix results --group quality-thresholds-1a2b3c4d --plot results.png",
        "olmix results --format csv > results.csv",
        "olmix results --group swarm-1a2b3c4d --export evidence/",
    )
)
@click.option("--group", help="Launch group whose runs to collect [default: the latest under --runs-dir].")
@runs_dir_option()
@format_option("text", "json", "csv")
@click.option(
    "--plot", type=click.Path(dir_okay=False), help="Also draw held-out loss against threshold into this PNG."
)
@click.option("--mixtures", is_flag=True, help="One row per run: its leaf weights and its metrics.")
@click.option(
    "--export",
    type=click.Path(file_okay=False),
    help="Write the group's evidence as ratios.csv, metrics.csv (upstream layout) and fingerprints.csv here.",
)
@click.option("--force", is_flag=True, help="With --export: overwrite files that differ.")
@reports_errors
def results(
    group: str | None,
    runs_dir: Path,
    fmt: str,
    plot: str | None,
    mixtures: bool = False,
    export: str | None = None,
    force: bool = False,
) -> None:
    """Held-out loss per source against quality threshold, for every finished run of a group.

    The change in brackets is against the run with the widest threshold. Runs with eval_tasks add each
    downstream task's accuracy (`TASK acc`) and bits per byte (`TASK bpb`).
    """
    from olmix.results import collect as collected

    as_json, as_csv = fmt == "json", fmt == "csv"

    if plot:  # before the work, so a table is never followed by a plot that cannot be written
        from olmix.fileio import check_dir_writable

        check_dir_writable(Path(plot).parent)
    if group is None:
        group = collected.latest_group(runs_dir)
        echo(f"group {group} (the latest under {runs_dir})", err=True)
    else:
        from olmix import runpaths

        runpaths.check_component(group, "--group")  # a group is one folder under --runs-dir, never a path out
    if mixtures or export:
        _evidence(runs_dir, group, export, force)
        return
    skipped: list[str] = []
    found = collected.collect(runs_dir, group, skipped)
    for line in skipped:
        echo(line, err=True)
    if as_json:
        # the metrics were validated, so a NaN here would be a bug, not output
        echo(to_json({"group": group, "runs": [r.as_dict() for r in found]}))
    elif as_csv:
        rows = collected.rows(found)
        header = list(rows[0])
        # data, like --json: written as it is, but for a run name a spreadsheet would take for a formula
        click.echo(to_csv(header, [[row[key] for key in header] for row in rows]), nl=False)
    else:
        header, cells = _cells(found)
        echo(table(header, cells, rule=True))
    if plot:
        from olmix.results.plot import draw

        draw(collected.series(found), Path(plot), title=f"{group}: held-out loss against quality threshold")
        echo(f"wrote {plot}", err=as_json or as_csv)


def _evidence(runs_dir: Path, group: str, export: str | None, force: bool) -> None:
    from olmix import fileio
    from olmix.swarm import evidence

    skipped: list[str] = []
    found = evidence.collect(runs_dir, [group], skipped)
    for line in skipped:
        echo(line, err=True)
    if export:
        files = [(Path(export) / name, data) for name, data in evidence.to_csv(found).items()]
        for path, what in fileio.write_all(files, force=force):
            echo(f"{what} {path}")
        return
    x, y = found.matrix()
    header = ["run", *found.leaves, *found.metrics]
    cells = [
        [run.name, *(f"{v:.4f}" for v in xs), *(f"{v:.4f}" for v in ys)]
        for run, xs, ys in zip(found.runs, x, y, strict=True)
    ]
    echo(table(header, cells, rule=True))


def _cells(results: Sequence[RunResult]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of text cells: held-out loss per source, its change against the widest threshold in brackets,
    then each downstream task's accuracy and bits per byte."""
    from olmix.results.collect import downstream_cells, sources, tasks

    names, evaluated = sources(results), tasks(results)
    header = ["run", "threshold", "tokens", "final loss", *(f"held-out {s}" for s in names)]
    if results and evaluated:
        header += list(downstream_cells(results[0], evaluated))
    body = []
    for r in results:
        cells = [
            r.run,
            "?" if r.threshold is None else f"{r.threshold:.0%}",
            f"{r.tokens_trained:,}",
            _num(r.final_train_loss),
        ]
        for source in names:
            loss, change = r.heldout.get(source), r.change_vs_widest.get(source)
            cells.append(_num(loss) + ("" if change is None else f" ({change:+.3f})"))
        cells += [_num(value) for value in downstream_cells(r, evaluated).values()]
        body.append(cells)
    return header, body


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
