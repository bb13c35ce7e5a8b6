"""`olmix launch status | cancel | list`: watch and stop launched groups from any terminal."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click

from olmix.cli import echo, reports_errors
from olmix.render import table, to_json
from olmix.terminal import escape

RUNS_DIR_HELP = "Folder holding launched groups (env OLMIX_RUNS_DIR)."


def runs_dir_option(func: Any) -> Any:
    """`--runs-dir` (as in `olmix results`), passed as `output`; `--output` is its hidden, deprecated old name."""
    from functools import wraps

    @wraps(func)
    def merged(*args: Any, output: Path | None, output_alias: Path | None, **kwargs: Any) -> Any:
        if output_alias is not None:
            echo("note: --output is deprecated; it is called --runs-dir now", err=True)
            output = output_alias
        runs_dir = output or Path(os.environ.get("OLMIX_RUNS_DIR") or "runs")
        return func(*args, output=runs_dir, **kwargs)

    folder = click.Path(file_okay=False, path_type=Path)
    alias = click.option("--output", "output_alias", type=folder, hidden=True, help="Deprecated: --runs-dir.")
    option = click.option("--runs-dir", "output", type=folder, show_default="runs", help=RUNS_DIR_HELP)
    return option(alias(merged))


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:  # unknown
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def wait_for(group_dir: Path, backend: Any, poll_s: float = 2.0) -> tuple[Any, dict[str, Any]]:
    """Block until every submitted run of the group has finished, saying on stderr how the runs move."""
    from olmix import launcher

    shown = ""
    last: tuple[Any, dict[str, Any]] = (None, {})
    for last in launcher.watch(group_dir, backend, poll_s):
        found = last[1]
        states = [st.state.value if st else "not submitted" for st in found.values()]
        line = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
        if line != shown:
            echo(f"{time.strftime('%H:%M:%S')} {group_dir.name}: {line}", err=True)
            shown = line
    return last


def wait_and_show(group_dir: Path, backend: Any, as_json: bool = False) -> None:
    """Wait for the group, show its runs, and exit 1 unless every submitted run succeeded."""
    record, found = wait_for(group_dir, backend)
    _show_status(group_dir, record, found, as_json)
    if any(st is not None and st.state.value != "succeeded" for st in found.values()):
        raise SystemExit(1)


@click.command()
@click.option("--group", "group", required=True, help="Group id, as printed by `olmix launch run`.")
@runs_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--wait", is_flag=True, help="Wait until every run has finished (exit 1 if one did not succeed).")
@reports_errors
def status(group: str, output: Path, as_json: bool, wait: bool) -> None:
    """Each run's state, exit code, duration and log of a launched group."""
    from olmix import launcher, runpaths

    group_dir = runpaths.group_dir(output, group)
    record = launcher.read_record(group_dir)
    backend = launcher.backend_for(record)
    if wait:
        wait_and_show(group_dir, backend, as_json)
        return
    record, found = launcher.statuses(group_dir, backend)
    _show_status(group_dir, record, found, as_json)


def _show_status(group_dir: Path, record: Any, found: dict[str, Any], as_json: bool) -> None:
    group = group_dir.name
    runs = []
    for entry in record.runs:
        st = found[entry.name]
        runs.append(
            {
                "run": entry.name,
                "state": st.state.value if st else ("cancelled" if entry.cancel_requested_at else "not submitted"),
                "exit_code": st.exit_code if st else None,
                "duration_s": round(st.duration, 1) if st and st.duration is not None else None,
                "job_id": entry.job_id,
                # a run on a cluster without a shared folder (Beaker) logs to its page, not to train.log here
                "log": entry.url or str(group_dir / entry.name / "train.log"),
                "detail": st.detail
                if st
                else ("cancelled before it was submitted" if entry.cancel_requested_at else ""),
            }
        )
    if as_json:
        click.echo(to_json({"group": group, "backend": record.backend, "runs": runs}))
        return
    rows = [
        [
            r["run"],
            r["state"],
            "-" if r["exit_code"] is None else str(r["exit_code"]),
            _duration(r["duration_s"]),
            r["log"],
        ]
        for r in runs
    ]
    echo(f"group {group} on {record.backend} ({record.config.path})")
    click.echo(table(["run", "state", "exit", "duration", "log"], rows))
    for r in runs:
        if r["detail"]:
            echo(f"{r['run']}: {r['detail']}")


@click.command()
@click.option("--group", "group", required=True)
@click.option("--run", "runs", multiple=True, help="Cancel only this run (repeatable); default: every unfinished run.")
@runs_dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@reports_errors
def cancel(group: str, runs: tuple[str, ...], output: Path, yes: bool) -> None:
    """Stop a group's unfinished runs (their whole process groups) and record it."""
    from olmix import launcher, runpaths

    group_dir = runpaths.group_dir(output, group)
    record = launcher.read_record(group_dir)
    what = ", ".join(runs) if runs else "every unfinished run"
    if not yes:
        click.confirm(escape(f"Cancel {what} of group {group}?"), default=False, abort=True, err=True)
    done = launcher.cancel_runs(group_dir, launcher.backend_for(record), list(runs) or None)
    if done.cancelled:
        echo(f"cancelled: {', '.join(done.cancelled)}")
    if done.not_submitted:
        echo(f"will not be submitted (a launch under way stops any it is submitting): {', '.join(done.not_submitted)}")
    if not done.cancelled and not done.not_submitted:
        echo("nothing to cancel: those runs are finished")


@click.command(name="list")
@runs_dir_option
@click.option("--limit", default=20, show_default=True, help="Show at most this many groups, newest first.")
@reports_errors
def list_groups(output: Path, limit: int) -> None:
    """Recently launched groups, newest first."""
    from olmix import launcher

    records, bad = launcher.list_records(output)
    for error in bad:
        echo(f"skipped a bad launch record: {error}", err=True)
    if not records:
        echo(f"no launched groups under {output}")
        return
    rows = [
        [
            r.group,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
            r.backend,
            str(len(r.runs)),
            r.config.path,
        ]
        for r in records[:limit]
    ]
    click.echo(table(["group", "launched", "backend", "runs", "config"], rows))
