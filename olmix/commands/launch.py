"""`olmix launch run | preview | status | cancel | list`.

`run` and `preview` share one builder (olmix.plan.build_plan): what a dry run
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
from olmix.cli import reports_errors, set_option
from olmix.commands import launch_ops
from olmix.terminal import Lines, escape, escape_lines

BACKEND_NAMES = ["local", "slurm", "beaker"]
BACKEND_HELP = (
    "Where runs go: local (this machine), slurm (sbatch; settings from the config's `slurm`) or beaker "
    "(one experiment per run; settings from the config's `beaker`, cluster, workspace, budget, priority)."
)
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


PLAN_HEADER = ("leaf", "ratio", "available", "needed", "repetition", "cap")


def _tokens(n: int) -> str:
    return f"{n:,}"


def render_plan(plan: Any, echo: Callable[[str], None] = safe_echo) -> None:
    """A table per run: leaf, ratio, tokens available, tokens needed, repetition (and cap), then totals."""
    from olmix.listing import listing_note
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


def _build(config: tuple[str, ...], path_map: tuple[str, ...], no_cache: bool, overrides: tuple[str, ...]) -> Any:
    from olmix.plan import build_plan
    from olmix.resolve import parse_path_map, path_map_from_env

    mapping = [*parse_path_map(path_map), *path_map_from_env()]
    bar = ProgressBar()
    try:
        return build_plan(config, path_map=mapping, use_cache=not no_cache, progress=bar, overrides=overrides)
    finally:
        bar.close()


def _show(plan: Any, plan_out: str | None, as_json: bool) -> None:
    from olmix.planfile import plan_json, write_plan

    if plan_out:
        write_plan(plan, plan_out)
    if as_json:
        click.echo(plan_json(plan))
    else:
        render_plan(plan)
        if plan_out:
            safe_echo("")
            safe_echo(f"plan written to {plan_out}")


def _dry_run(
    plan: Any, plan_out: str | None, as_json: bool, settings: Any, runs_dir: Path, command_given: bool = False
) -> None:
    """The plan, then (as text) what each run would execute: what a launch would show before asking."""
    from olmix import launcher, runpaths

    _show(plan, plan_out, as_json)
    if as_json:
        return
    safe_echo("")
    group_dir = runpaths.group_dir(runs_dir.resolve(), plan.group)
    command, kept = settings.command, False
    if not command_given and (group_dir / launcher.RECORD).exists():  # a resume keeps the recorded command
        command, kept = list(launcher.read_record(group_dir).trainer_command), True
    runs = launcher.run_launches(group_dir, [r.name for r in plan.runs], command)
    render_commands(runs, settings, [], kept=kept)


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option(
            "--config",
            "config",
            required=True,
            multiple=True,
            type=click.Path(),
            help="Mixture config, or a folder of them (repeatable): one run each, in one group.",
        ),
        click.option("--path-map", "path_map", multiple=True, metavar="PREFIX=REPLACEMENT", help=PATH_MAP_HELP),
        click.option("--no-cache", is_flag=True, help="List the data store again; a launch always does."),
        click.option("--plan-out", type=click.Path(dir_okay=False), help="Write the plan (JSON) to this file."),
        click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON instead of a table."),
        set_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
def launch() -> None:
    """Plan and launch the runs of a mixture config."""


@launch.command()
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
@launch_ops.runs_dir_option
@click.option("--group", "group", help="Resume this group: submit its runs not yet submitted.")
@click.option("--trainer-command", help="Command each run executes (placeholders {python} {plan} {run_dir} {run}).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="After submitting, wait until every run has finished and show their states.")
@reports_errors
def run(
    config: tuple[str, ...],
    path_map: tuple[str, ...],
    no_cache: bool,
    plan_out: str | None,
    as_json: bool,
    overrides: tuple[str, ...],
    dry_run: bool,
    backend: str,
    max_parallel: int | None,
    output: Path,
    group: str | None,
    trainer_command: str | None,
    yes: bool,
    wait: bool,
) -> None:
    """Resolve every leaf, plan the runs and launch them (with --dry-run: only show the plan).

    Asks `Launch N run(s) of group G on BACKEND? [y/N]` on stdin (`yes | olmix
    launch run ...` works; an empty or closed stdin submits nothing). Launching
    a group again submits only its runs not yet submitted. Exit status 1 with
    every problem listed when the config is invalid or a leaf cannot be
    resolved or is short of tokens.
    """
    from olmix import backends, launcher, runpaths
    from olmix.planfile import plan_data

    if group is not None:
        runpaths.check_component(group, "--group")
    plan = _build(config, path_map, no_cache or not dry_run, overrides)  # a launch lists the store itself
    settings = launcher.run_settings(plan, overrides, trainer_command)
    if dry_run:
        _dry_run(plan, plan_out, as_json, settings, output, command_given=trainer_command is not None)
        if not as_json:
            _describe_runs(backend, plan, output, settings, max_parallel)
        return
    options = _backend_options(backend, settings.configs[0], max_parallel)
    engine = backends.get(backend, **options)
    notes = sorted({note for one in settings.configs for note in engine.check(one)})
    if backend not in ("local", "slurm") and max_parallel is not None:
        notes.append(f"--max-parallel is for the local backend; {backend} schedules the runs itself")
    request = launcher.prepare(
        plan_data(plan),
        settings.config_path,
        engine,
        output,
        options=options,
        command=settings.command if trainer_command is not None else None,
        default_command=settings.command,
        env=settings.env,
        secrets=settings.secrets,
        group=group,
    )
    if plan_out:
        from olmix.planfile import write_plan

        write_plan(plan, plan_out)
    echo = (lambda text: safe_echo(text, err=True)) if as_json else safe_echo
    render_plan(plan, echo)
    echo("")
    render_commands(request.runs, settings, request.changes, echo, kept=request.command_kept)
    for note in notes:
        echo(f"note: {note}")
    count = len(plan.runs)
    if not yes:
        click.confirm(
            escape(f"Launch {count} run(s) of group {plan.group} on {backend}?"), default=False, abort=True, err=True
        )
    results = launcher.submit(
        request,
        engine,
        on_submit=lambda s: echo(
            f"submitted {s.run}: job {s.job_id}" if s.new else f"already submitted {s.run}: job {s.job_id}"
        ),
    )
    if as_json:
        from olmix.render import to_json

        runs = [{"run": r.run, "job_id": r.job_id, "new": r.new} for r in results]
        click.echo(to_json({"group": plan.group, "output": str(output / plan.group), "runs": runs}))
    else:
        safe_echo(f"group {plan.group}: {sum(r.new for r in results)} submitted now, {count} in all")
    if wait:
        launch_ops.wait_and_show(output / plan.group, engine, as_json)
        safe_echo(
            f"watch it:  olmix launch status --group {plan.group}"
            + ("" if str(output) == "runs" else f" --runs-dir {output}")
        )


def _backend_options(backend: str, config: Any, max_parallel: int | None) -> dict[str, Any]:
    if backend == "slurm":
        from olmix.backends.slurm import options_from_config

        return options_from_config(config, max_parallel)
    if backend == "beaker":
        from olmix.backends.beakerspec import settings_from_config

        return settings_from_config(config)
    return {"max_parallel": max_parallel or 1}


def _describe_runs(backend: str, plan: Any, output: Path, settings: Any, max_parallel: int | None) -> None:
    """The backend's notes, then what it would submit for each run (a batch script, a spec), where it has a
    description, and what submits runs sent together (a job array); offline: the submission token is only
    drawn at launch and shows as TOKEN."""
    from olmix import backends, launcher
    from olmix.backends import RunSpec

    engine = backends.get(backend, **_backend_options(backend, settings.configs[0], max_parallel))
    for note in sorted({note for one in settings.configs for note in engine.check(one)}):
        safe_echo(f"note: {note}")
    together = len(plan.runs) > 1 and hasattr(engine, "submit_many")
    specs = []
    for i, run in enumerate(plan.runs):
        run_dir = output.resolve() / plan.group / run.name
        specs.append(
            RunSpec(
                group=plan.group,
                run=run.name,
                run_dir=run_dir,
                plan_file=run_dir / "plan.json",
                command=launcher.render_command(
                    settings.command, plan=run_dir / "plan.json", run_dir=run_dir, run=run.name
                ),
                token=f"TOKEN.{i}" if together else "TOKEN",
                env=settings.env,
                secrets=settings.secrets,
            )
        )
    texts, trailer = backends.describe_all(engine, specs)
    for spec, text in zip(specs, texts, strict=True):
        if text is not None:
            safe_echo("")
            safe_echo(f"--- run {spec.run} on {backend}")
            # the exact text a backend submits, indented under its header: a newline inside a value it quotes
            # for a shell (a folder's name) then starts an indented line, never one that passes for olmix's own
            safe_echo(Lines("\n".join(f"  {line}" for line in escape_lines(text.rstrip("\n")).split("\n"))))
    if trailer is not None:
        safe_echo("")
        what, _, command = trailer.rstrip().partition("\n")  # what it is, then the command that submits them
        safe_echo(f"--- {what}")
        if command:
            safe_echo(command)


@launch.command()
@_options
@click.option("--backend", default="local", show_default=True, type=click.Choice(BACKEND_NAMES), help=BACKEND_HELP)
@reports_errors
def preview(
    config: tuple[str, ...],
    path_map: tuple[str, ...],
    no_cache: bool,
    plan_out: str | None,
    as_json: bool,
    overrides: tuple[str, ...],
    backend: str,
) -> None:
    """Show the plan a launch would submit (the same as `launch run --dry-run`)."""
    import os

    from olmix import launcher

    plan = _build(config, path_map, no_cache, overrides)
    settings = launcher.run_settings(plan, overrides, None)
    output = Path(os.environ.get("OLMIX_RUNS_DIR") or "runs")
    _dry_run(plan, plan_out, as_json, settings, output)
    if not as_json:
        _describe_runs(backend, plan, output, settings, None)


launch.add_command(launch_ops.status)
launch.add_command(launch_ops.cancel)
launch.add_command(launch_ops.list_groups)
