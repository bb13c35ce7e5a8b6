"""`olmix launch run | preview | status | cancel | list`.

`run` and `preview` share one builder (olmix.planning.plan.build_plan): what a dry run
shows is what a launch submits. Nothing is submitted before every run of the
group has planned cleanly and the launch was confirmed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from olmix.cli import echo as safe_echo
from olmix.cli import reports_errors
from olmix.commands import launch_ops
from olmix.commands.launch_render import ProgressBar, render_launch, render_plan, show_plan, submitted_line
from olmix.commands.options import (
    configs_argument,
    examples,
    format_option,
    path_map_option,
    runs_dir_option,
    set_option,
)
from olmix.terminal import Lines, escape

BACKEND_NAMES = ["local", "slurm", "beaker"]
BACKEND_HELP = (
    "Where runs go: local (this machine), slurm (sbatch; settings from the config's `slurm`) or beaker "
    "(one experiment per run; settings from the config's `beaker`, cluster, workspace, budget, priority)."
)


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
        show_plan(plan, plan_out, as_json)
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
        on_submit=lambda s: echo(submitted_line(s)),
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
    show_plan(built.plan, plan_out, as_json)
    if not as_json:
        render_launch(prepared, descriptions=True)


launch.add_command(launch_ops.status)
launch.add_command(launch_ops.cancel)
launch.add_command(launch_ops.retry)
launch.add_command(launch_ops.list_groups)
