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
    from olmix.results.collect import Difference, MixtureResult, RunResult, Stat


@click.command(
    epilog=examples(
        "olmix results",
        "olmix results --group quality-thresholds-1a2b3c4d --plot results.png",
        "olmix results --format csv > results.csv",
        "olmix results --group exp-1a2b3c4d --group exp-5e6f7a8b",
        "olmix results --group swarm-1a2b3c4d --export evidence/",
    )
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="Launch group whose runs to collect; twice or more to compare groups side by side "
    "[default: the latest under --runs-dir that has results].",
)
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
    groups: tuple[str, ...],
    runs_dir: Path,
    fmt: str,
    plot: str | None,
    mixtures: bool = False,
    export: str | None = None,
    force: bool = False,
) -> None:
    """Held-out loss per source against quality threshold, for every finished run of a group.

    The change in brackets is against the run with the widest threshold. Replicates of a mixture
    (`replicates: N`) show as mean ± standard error, and a change within noise (under two standard
    errors of the difference) is marked ~. With several --group, each mixture's metrics are shown
    in every group beside their difference from the first group. Runs with eval_tasks add each
    downstream task's accuracy (`TASK acc`) and bits per byte (`TASK bpb`).
    """
    from olmix.results import collect as collected

    if plot:  # before the work, so a table is never followed by a plot that cannot be written
        from olmix.fileio import check_dir_writable

        check_dir_writable(Path(plot).parent)
    if not groups:
        groups = (collected.latest_group(runs_dir),)
        echo(f"group {groups[0]} (the latest with results under {runs_dir})", err=True)
    else:
        from olmix import runpaths

        for group in groups:
            runpaths.check_component(group, "--group")  # a group is one folder under --runs-dir, never a path out
    if mixtures or export:
        _evidence(runs_dir, list(groups), export, force)
        return
    found = []
    for group in dict.fromkeys(groups):
        skipped: list[str] = []
        runs = collected.collect(runs_dir, group, skipped)
        for line in skipped:
            echo(line, err=True)
        found.append((group, runs, collected.mixtures(runs)))
    if len(found) > 1:
        _compare(found, fmt)
    else:
        _one(*found[0], fmt)
    if plot:
        from olmix.results.plot import draw

        if len(found) == 1:
            group, series = found[0][0], dict(collected.mixture_series(found[0][2]))
        else:
            group = " vs ".join(g for g, _, _ in found)
            series = {f"{s} ({g})": p for g, _, m in found for s, p in collected.mixture_series(m).items()}
        draw(series, Path(plot), title=f"{group}: held-out loss against quality threshold")
        echo(f"wrote {plot}", err=fmt != "text")


NOISE_NOTE = "mean ± standard error over each mixture's replicates; ~ marks a change within noise (under 2 SE)"


def _one(group: str, runs: Sequence[RunResult], found: Sequence[MixtureResult], fmt: str) -> None:
    from olmix.results import collect as collected

    if fmt == "json":
        # the metrics were validated, so a NaN here would be a bug, not output
        echo(to_json({"group": group, "runs": [r.as_dict() for r in runs], "mixtures": [m.as_dict() for m in found]}))
    elif fmt == "csv":
        _csv(collected.mixture_rows(found))
    else:
        header, cells = _cells(found)
        echo(table(header, cells, rule=True))
        if collected.replicated(found):
            echo(NOISE_NOTE)


def _csv(rows: list[dict[str, object]]) -> None:
    header = list(rows[0]) if rows else []
    # data, like --json: written as it is, but for a run name a spreadsheet would take for a formula
    click.echo(to_csv(header, [[row[key] for key in header] for row in rows]), nl=False)


def _compare(found: Sequence[tuple[str, Sequence[RunResult], Sequence[MixtureResult]]], fmt: str) -> None:
    from olmix.results import collect as collected

    names = [g for g, _, _ in found]
    rows = collected.compare([(g, m) for g, _, m in found])
    if fmt == "json":
        echo(to_json({"groups": names, "comparison": [r.as_dict() for r in rows]}))
        return
    if fmt == "csv":
        flat: list[dict[str, object]] = []
        for r in rows:
            row: dict[str, object] = {"mixture": r.mixture, "metric": r.metric}
            for g in names:
                value = r.values[g]
                row[f"{g}_mean"], row[f"{g}_se"] = (None, None) if value is None else (value.mean, value.se)
                row[f"{g}_n"] = None if value is None else value.n
            for g, d in r.differences.items():
                row[f"{g}_diff"], row[f"{g}_diff_se"] = (None, None) if d is None else (d.diff, d.se)
                row[f"{g}_within_noise"] = None if d is None else d.within_noise
            flat.append(row)
        _csv(flat)
        return
    first = names[0]
    header = ["mixture", "metric", *names, *(f"{g} − {first}" for g in names[1:])]
    cells = [
        [
            r.mixture,
            r.metric,
            *(_stat(r.values[g]) for g in names),
            *(_change(d, se=True) for d in r.differences.values()),
        ]
        for r in rows
    ]
    echo(table(header, cells, rule=True))
    echo("differences ± their standard error; ~ marks one within noise (under 2 SE)")


def _evidence(runs_dir: Path, groups: list[str], export: str | None, force: bool) -> None:
    from olmix import fileio
    from olmix.swarm import evidence

    skipped: list[str] = []
    found = evidence.collect(runs_dir, groups, skipped)
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


def _cells(found: Sequence[MixtureResult]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of text cells: held-out loss per source, its change against the widest threshold in brackets;
    with replicates, a count column and each value as mean ± standard error."""
    from olmix.results.collect import replicated

    names = list(dict.fromkeys(s for m in found for s in m.heldout))
    counts = replicated(found)
    header = ["mixture" if counts else "run", *(["n"] if counts else []), "threshold", "tokens", "final loss"]
    header += [f"held-out {s}" for s in names]
    columns = list(dict.fromkeys(c for m in found for c in m.downstream))
    header += columns
    body = []
    for m in found:
        cells = [
            m.mixture,
            *([str(m.n)] if counts else []),
            "?" if m.threshold is None else f"{m.threshold:.0%}",
            f"{m.tokens_trained:,}",
            _stat(m.final_train_loss),
        ]
        for source in names:
            change = m.change_vs_widest.get(source)
            cells.append(_stat(m.heldout.get(source)) + ("" if change is None else f" ({_change(change)})"))
        cells += [_stat(m.downstream.get(column)) for column in columns]
        body.append(cells)
    return header, body


def _stat(value: Stat | None) -> str:
    if value is None:
        return "-"
    return f"{value.mean:.3f}" + ("" if value.se is None else f" ± {value.se:.3f}")


def _change(value: Difference | None, *, se: bool = False) -> str:
    if value is None:
        return "-"
    spread = f" ± {value.se:.3f}" if se and value.se is not None else ""
    return f"{value.diff:+.3f}{spread}" + (" ~" if value.within_noise else "")
