"""`olmix launch run | preview | status | cancel | list`.

`run` and `preview` share one builder (olmix.planning.plan.build_plan): what a dry run
shows is what a launch submits. Nothing is submitted before every run of the
group has planned cleanly and the launch was confirmed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from olmix.cli import echo as safe_echo
from olmix.cli import reports_errors
from olmix.commands import launch_ops
from olmix.commands.options import (
    configs_argument,
    examples,
    format_option,
    path_map_option,
    runs_dir_option,
    set_option,
)
from olmix.terminal import Lines, escape, escape_lines

BACKEND_NAMES = ["local", "slurm", "beaker"]
BACKEND_HELP = (
    "Where runs go: local (this machine), slurm (sbatch; settings from the config's `slurm`) or beaker "
    "(one experiment per run; settings from the config's `beaker`, cluster, workspace, budget, priority)."
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


PLAN_HEADER = ("leaf", "ratio", "available", "needed", "repetition", "cap")


def _tokens(n: int) -> str:
    return f"{n:,}"


def render_plan(plan: Any, echo: Callable[[str], None] = safe_echo) -> None:
    """A table per run: leaf, ratio, tokens available, tokens needed, repetition (and cap), then totals."""
    from olmix.planning.listing import listing_note
    from olmix.render import table

    echo(f"group {plan.group}  (config {plan.config.path}, sha256 {plan.config.sha256[:12]})")
    for run in plan.runs:
        echo("")
        echo(
            f"run {run.name}: {run.model} ({run.parameters:,} parameters) × {run.chinchilla_multiple} chinchilla "
            f"→ {run.requested_tokens:,} tokens, dtype {run.dtype}, seed {run.seed}"
        )
        if note := listing_note(run.listed_at):
            echo(note)
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
        echo(table(PLAN_HEADER, rows, align="lrrrrr", rule=True, footer=total))


def _shown(text: str) -> str:
    """A command-line word as a shell would take it, with control characters made visible."""
    import shlex

    return escape(shlex.quote(text))


def render_commands(
    runs: Any, settings: Any, changes: Any, echo: Callable[[str], None] = safe_echo, kept: bool = False
) -> None:
    """What each run executes, with what environment, and where those come from."""
    where = "as recorded for the group; --trainer-command changes it" if kept else settings.command_from
    echo(f"each run executes (trainer command {where}):")
    for run in runs:
        echo(f"  {run.name}: {' '.join(_shown(part) for part in run.command)}")
    if settings.env:
        echo(f"with environment variables ({settings.env_from}):")
        for key, value in settings.env.items():
            echo(f"  {_shown(key)}={_shown(value)}")
    if settings.secrets:
        echo(f"with secrets from this environment ({settings.env_from}; values not shown):")
        echo("  " + " ".join(_shown(name) for name in settings.secrets))
    for change in changes:
        echo(f"note: the group's {change.setting} changes for runs not yet submitted (was {change.old!r})")


def _build(
    config: tuple[str, ...],
    path_map: Any,
    no_cache: bool,
    overrides: tuple[str, ...],
    verbose: bool = False,
    as_json: bool = False,
) -> Any:
    from olmix.planning.plan import ShortError, build

    bar = ProgressBar()
    try:
        return build(config, path_map=path_map, use_cache=not no_cache, progress=bar, overrides=overrides)
    except ShortError as exc:  # one summary, not a line per leaf
        from olmix.commands import shortage

        bar.close()
        others = [p for p in exc.problems if p not in exc.leaf_problems]
        if as_json:
            from olmix.render import to_json

            click.echo(to_json(shortage.document(exc.summary, others)))
        else:
            safe_echo(Lines.of(*shortage.lines(exc.summary, others, exc.leaf_problems, verbose)), err=True)
        sys.exit(1)
    finally:
        bar.close()


def _show(plan: Any, plan_out: str | None, as_json: bool) -> None:
    from olmix.planning.planfile import plan_json, write_plan

    if plan_out:
        write_plan(plan, plan_out)
    if as_json:
        click.echo(plan_json(plan))
    else:
        render_plan(plan)
        if plan_out:
            safe_echo("")
            safe_echo(f"plan written to {plan_out}")


def render_cost(cost: Any, echo: Callable[[str], None] = safe_echo) -> None:
    """Tokens and FLOPs for the group and, where there are several runs, for each."""
    many = f"{len(cost.runs)} runs, " if len(cost.runs) > 1 else ""
    echo(
        f"cost: {many}{cost.tokens:,} tokens, {cost.flops:.3g} FLOPs (6 × parameters × tokens); GPU-hours not "
        "shown: olmix knows no measured throughput for the hardware"
    )
    if len(cost.runs) > 1:
        for one in cost.runs:
            echo(
                f"  {one.run}: {one.model} ({one.parameters:,} parameters) × {one.tokens:,} tokens "
                f"= {one.flops:.3g} FLOPs"
            )


def render_launch(launch: Any, echo: Callable[[str], None] = safe_echo, *, descriptions: bool = False) -> None:
    """What each run executes, the backend's notes and (for a dry run) what the backend would submit."""
    echo("")
    render_cost(launch.cost, echo)
    render_commands(
        launch.request.runs, launch.settings, launch.request.changes, echo, kept=launch.request.command_kept
    )
    for note in launch.notes:
        echo(f"note: {note}")
    if descriptions:
        backend = launch.backend.name
        for one in launch.descriptions:
            echo("")
            echo(f"--- run {one.run} on {backend}")
            # the exact text a backend submits, indented under its header: a newline inside a value it quotes
            # for a shell (a folder's name) then starts an indented line, never one that passes for olmix's own
            echo(Lines("\n".join(f"  {line}" for line in escape_lines(one.text.rstrip("\n")).split("\n"))))
        if launch.together is not None:
            echo("")
            what, _, command = launch.together.rstrip().partition("\n")  # what it is, then what submits them
            echo(f"--- {what}")
            if command:
                echo(command)


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        configs_argument,
        path_map_option,
        click.option("--no-cache", is_flag=True, help="List the data store again; a launch always does."),
        click.option("--plan-out", type=click.Path(dir_okay=False), help="Write the plan (JSON) to this file."),
        format_option("text", "json"),
        set_option,
        click.option("--verbose", "-v", is_flag=True, help="When leaves are short, list each one."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
def launch() -> None:
    """Plan and launch the runs of a mixture config."""


@launch.command(
    epilog=examples(
        "olmix launch run config/examples/launch/quality_thresholds/ --dry-run",
        "olmix launch run my.yaml --backend slurm --set chinchilla_multiple=0.5 --yes",
        "olmix launch run my.yaml --group my-1a2b3c4d   # resume: submit what is not yet submitted",
        "olmix launch run my.yaml --retry-failed --yes   # submit the failed runs again",
    )
)
@_options
@click.option("--dry-run", is_flag=True, help="Resolve, plan and show the runs; submit nothing.")
@click.option(
    "--backend",
    default="local",
    show_default=True,
    type=click.Choice(BACKEND_NAMES),
    help=BACKEND_HELP,
)
@click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    help="Runs of the group training at once: local backend [default: 1]; slurm: the job array's %N "
    "[default: as many as the cluster allows].",
)
@runs_dir_option("output")
@click.option("--group", "group", help="Resume this group: submit its runs not yet submitted.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Submit again, once each, the group's runs that failed or were cancelled (the record keeps every attempt).",
)
@click.option("--trainer-command", help="Command each run executes (placeholders {python} {plan} {run_dir} {run}).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="After submitting, wait until every run has finished and show their states.")
@reports_errors
def run(
    config: tuple[str, ...],
    path_map: Any,
    no_cache: bool,
    plan_out: str | None,
    fmt: str,
    overrides: tuple[str, ...],
    verbose: bool,
    dry_run: bool,
    backend: str,
    max_parallel: int | None,
    output: Path,
    group: str | None,
    retry_failed: bool,
    trainer_command: str | None,
    yes: bool,
    wait: bool,
) -> None:
    """Resolve every leaf, plan the runs and launch them (with --dry-run: only show the plan).

    Asks `Launch N run(s) of group G on BACKEND? [y/N]` on stdin (`yes | olmix
    launch run ...` works; an empty or closed stdin submits nothing). Launching
    a group again submits only its runs not yet submitted. Exit status 1 with
    every problem listed when the config is invalid or a leaf cannot be
    resolved; when leaves are short of tokens, one summary says what fits.
    """
    as_json = fmt == "json"
    from olmix import runpaths
    from olmix.launch import operation

    if group is not None:
        runpaths.check_component(group, "--group")
    # a launch lists the store itself
    built = _build(config, path_map, no_cache or not dry_run, overrides, verbose, as_json)
    plan = built.plan
    prepared = operation.prepare(
        built,
        backend=backend,
        runs_dir=output,
        trainer_command=trainer_command,
        max_parallel=max_parallel,
        group=group,
        offline=dry_run,
        retry_failed=retry_failed,
    )
    if dry_run:
        _show(plan, plan_out, as_json)
        if not as_json:
            render_launch(prepared, descriptions=True)
        return
    if plan_out:
        from olmix.planning.planfile import write_plan

        write_plan(plan, plan_out)
    echo = (lambda text: safe_echo(text, err=True)) if as_json else safe_echo
    render_plan(plan, echo)
    render_launch(prepared, echo)
    count = len(plan.runs)
    if retry_failed:
        echo(f"to retry (failed or cancelled): {', '.join(prepared.retrying) or 'none'}")
    if not yes:
        question = (
            f"Retry {len(prepared.retrying)} run(s) of group {plan.group} on {backend}?"
            if retry_failed
            else f"Launch {count} run(s) of group {plan.group} on {backend}?"
        )
        click.confirm(escape(question), default=False, abort=True, err=True)
    results = operation.submit(
        prepared,
        on_submit=lambda s: echo(_submitted_line(s)),
    )
    if as_json:
        from olmix.render import to_json

        runs = [{"run": r.run, "job_id": r.job_id or None, "new": r.new, "cancelled": r.cancelled} for r in results]
        click.echo(to_json({"group": plan.group, "output": str(output / plan.group), "runs": runs}))
    else:
        safe_echo(f"group {plan.group}: {sum(r.new for r in results)} submitted now, {count} in all")
    if wait:
        launch_ops.wait_and_show(output / plan.group, prepared.backend, as_json)
        safe_echo(
            f"watch it:  olmix launch status --group {plan.group}"
            + ("" if str(output) == "runs" else f" --runs-dir {output}")
        )


def _submitted_line(s: Any) -> str:
    if not s.job_id:
        return f"not submitted {s.run}: cancelled before it was submitted"
    line = f"submitted {s.run}: job {s.job_id}" if s.new else f"already submitted {s.run}: job {s.job_id}"
    return line + (" (cancelled)" if s.cancelled else "")


@launch.command(
    epilog=examples(
        "olmix launch preview my.yaml --path-map s3://ai2-llm/preprocessed/=$HOME/data/",
        "olmix launch preview swarm/ --backend beaker --format json > plan.json",
    )
)
@_options
@click.option("--backend", default="local", show_default=True, type=click.Choice(BACKEND_NAMES), help=BACKEND_HELP)
@runs_dir_option("output")
@reports_errors
def preview(
    config: tuple[str, ...],
    path_map: Any,
    no_cache: bool,
    plan_out: str | None,
    fmt: str,
    overrides: tuple[str, ...],
    verbose: bool,
    backend: str,
    output: Path,
) -> None:
    """Show the plan a launch would submit (the same as `launch run --dry-run`)."""
    as_json = fmt == "json"
    from olmix.launch import operation

    built = _build(config, path_map, no_cache, overrides, verbose, as_json)
    prepared = operation.prepare(built, backend=backend, runs_dir=output, offline=True)
    _show(built.plan, plan_out, as_json)
    if not as_json:
        render_launch(prepared, descriptions=True)


launch.add_command(launch_ops.status)
launch.add_command(launch_ops.cancel)
launch.add_command(launch_ops.retry)
launch.add_command(launch_ops.list_groups)
