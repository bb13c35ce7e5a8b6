"""How `olmix launch run` and `launch preview` show a launch: the plan table per run, what each run executes, the
backend's notes, what it would submit, the cost, and a progress bar while the store is listed. Rendering only:
what is shown comes from olmix.launch.operation's Launch."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from olmix.cli import echo as safe_echo
from olmix.terminal import Lines, escape, escape_lines


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


def show_plan(plan: Any, plan_out: str | None, as_json: bool) -> None:
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


def submitted_line(s: Any) -> str:
    if not s.job_id:
        return f"not submitted {s.run}: cancelled before it was submitted"
    line = f"submitted {s.run}: job {s.job_id}" if s.new else f"already submitted {s.run}: job {s.job_id}"
    return line + (" (cancelled)" if s.cancelled else "")
