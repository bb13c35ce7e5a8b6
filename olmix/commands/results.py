"""`olmix results`: a group's metrics as a table, JSON, CSV or a plot."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path

import click

from olmix.cli import reports_errors
from olmix.errors import OlmixError


@click.command()
@click.option("--group", help="Launch group whose runs to collect [default: the latest under --runs-dir].")
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False),
    default="runs",
    show_default=True,
    help="Folder holding <group>/<run>/metrics.json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the results as CSV.")
@click.option(
    "--plot", type=click.Path(dir_okay=False), help="Also draw held-out loss against threshold into this PNG."
)
@reports_errors
def results(group: str | None, runs_dir: str, as_json: bool, as_csv: bool, plot: str | None) -> None:
    """Held-out loss per source against quality threshold, for every finished run of a group.

    The change in brackets is against the run with the widest threshold.
    """
    from olmix import results as collected

    if group is None:
        group = collected.latest_group(runs_dir)
        click.echo(f"group {group} (the latest under {runs_dir})", err=True)
    found = collected.collect(runs_dir, group)
    if as_json:
        click.echo(json.dumps({"group": group, "runs": [r.as_dict() for r in found]}, indent=2))
    elif as_csv:
        rows = collected.rows(found)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo(render_table(collected.table(found)))
    if plot:
        draw(collected.series(found), Path(plot), title=f"{group}: held-out loss against quality threshold")
        click.echo(f"wrote {plot}", err=as_json or as_csv)


def render_table(cells: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


class PlotExtraMissing(OlmixError):
    """matplotlib is not installed."""


def draw(series: Mapping[str, list[tuple[float, float]]], path: Path, *, title: str) -> None:
    """Held-out loss (y) against the share of data kept (x), one line per source; written atomically."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotExtraMissing("--plot needs matplotlib; install it with: pip install 'olmix[plot]'") from None
    import os
    import tempfile

    if not series:
        raise OlmixError("nothing to plot: no run has both a threshold and a held-out loss")
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for source, points in sorted(series.items()):
        xs = [100 * x for x, _ in points]
        ys = [y for _, y in points]
        ax.plot(xs, ys, marker="o", label=source)
    ax.set_xlabel("quality threshold: % of data kept (top buckets)")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(title="source")
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
