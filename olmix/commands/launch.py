"""`olmix launch run --dry-run` and `olmix launch preview`: the plan a launch would submit."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from olmix.cli import reports_errors

PATH_MAP_HELP = (
    "Point a URL prefix at a mirror: PREFIX=REPLACEMENT, e.g. s3://ai2-llm/=/data/ai2-llm/. "
    "Repeatable; the first matching prefix wins. Also read from $OLMIX_PATH_MAP "
    "(entries separated by ';'), after the flags."
)


class ProgressBar:
    """A one-line progress bar on stderr, shown only on a terminal and only once resolving takes long."""

    def __init__(self, delay: float = 0.5, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.delay = delay
        self.shown = False
        self.enabled = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or time.monotonic() - self.start < self.delay:
            return
        width = 30
        filled = width * done // max(total, 1)
        self.stream.write(f"\rresolving [{'#' * filled}{'.' * (width - filled)}] {done}/{total} folders")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _tokens(n: int) -> str:
    return f"{n:,}"


def render_plan(plan: Any, echo: Callable[[str], None] = click.echo) -> None:
    """A table per run: leaf, ratio, tokens available, tokens needed, repetition (and cap), then totals."""
    echo(f"group {plan.group}  (config {plan.config.path}, sha256 {plan.config.sha256[:12]})")
    for run in plan.runs:
        echo("")
        echo(
            f"run {run.name}: {run.model} ({run.parameters:,} parameters) × {run.chinchilla_multiple} chinchilla "
            f"→ {run.requested_tokens:,} tokens, dtype {run.dtype}, seed {run.seed}"
        )
        header = ("leaf", "ratio", "available", "needed", "repetition", "cap")
        rows = [
            (
                leaf.name,
                f"{leaf.ratio:.4f}",
                _tokens(leaf.tokens_available),
                _tokens(leaf.tokens_needed),
                f"{leaf.repetition:.3f}",
                f"{leaf.max_repetition_factor:g}",
            )
            for leaf in run.leaves
        ]
        total = (
            f"total ({len(run.leaves)} leaves, {sum(len(leaf.files) for leaf in run.leaves):,} files)",
            f"{sum(leaf.ratio for leaf in run.leaves):.4f}",
            _tokens(sum(leaf.tokens_available for leaf in run.leaves)),
            _tokens(sum(leaf.tokens_needed for leaf in run.leaves)),
            "",
            "",
        )
        widths = [max(len(r[i]) for r in (header, *rows, total)) for i in range(len(header))]

        def line(cells: tuple[str, ...], widths: list[int] = widths) -> str:
            first = cells[0].ljust(widths[0])
            return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]).rstrip()

        echo(line(header))
        echo("  ".join("-" * w for w in widths))
        for row in rows:
            echo(line(row))
        echo("  ".join("-" * w for w in widths))
        echo(line(total))


def _plan(config: str, path_map: tuple[str, ...], no_cache: bool, plan_out: str | None, as_json: bool) -> None:
    from olmix.plan import build_plan, plan_json, write_plan
    from olmix.resolve import parse_path_map, path_map_from_env

    mapping = [*parse_path_map(path_map), *path_map_from_env()]
    bar = ProgressBar()
    try:
        plan = build_plan(config, path_map=mapping, use_cache=not no_cache, progress=bar)
    finally:
        bar.close()
    if plan_out:
        write_plan(plan, plan_out)
    if as_json:
        click.echo(plan_json(plan))
    else:
        render_plan(plan)
        if plan_out:
            click.echo(f"\nplan written to {plan_out}")


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--config", "config", required=True, type=click.Path(dir_okay=False), help="Mixture config."),
            click.option("--path-map", "path_map", multiple=True, metavar="PREFIX=REPLACEMENT", help=PATH_MAP_HELP),
            click.option("--no-cache", is_flag=True, help="Re-list the data store instead of using cached listings."),
            click.option("--plan-out", type=click.Path(dir_okay=False), help="Write the plan (JSON) to this file."),
            click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON instead of a table."),
        ]
    ):
        func = option(func)
    return func


@click.group()
def launch() -> None:
    """Plan and launch the runs of a mixture config."""


@launch.command()
@_options
@click.option("--dry-run", is_flag=True, help="Resolve, plan and show the runs; submit nothing.")
@reports_errors
def run(
    config: str, path_map: tuple[str, ...], no_cache: bool, plan_out: str | None, as_json: bool, dry_run: bool
) -> None:
    """Resolve every leaf, plan the runs and launch them (with --dry-run: only show the plan).

    Exit status 1 with every problem listed when the config is invalid or a
    leaf cannot be resolved or is short of tokens.
    """
    if not dry_run:
        raise click.UsageError("only --dry-run is available: launching is not implemented yet")
    _plan(config, path_map, no_cache, plan_out, as_json)


@launch.command()
@_options
@reports_errors
def preview(config: str, path_map: tuple[str, ...], no_cache: bool, plan_out: str | None, as_json: bool) -> None:
    """Show the plan a launch would submit (the same as `launch run --dry-run`)."""
    _plan(config, path_map, no_cache, plan_out, as_json)
