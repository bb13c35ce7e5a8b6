"""`olmix launch status | cancel | list`: watch and stop launched groups from any terminal."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from olmix.cli import echo, reports_errors
from olmix.terminal import escape

RUNS_DIR_HELP = "Folder holding launched groups (env OLMIX_RUNS_DIR)."


def runs_dir_option(func: Any) -> Any:
    return click.option(
        "--output",
        "output",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("OLMIX_RUNS_DIR", "runs"),
        show_default="runs",
        help=RUNS_DIR_HELP,
    )(func)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def table(rows: list[list[str]], header: list[str]) -> str:
    rows = [[escape(str(c)) for c in row] for row in rows]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def wait_for(group_dir: Path, backend: Any, poll_s: float = 2.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Block until every submitted run of the group has finished, saying on stderr how the runs move."""
    from olmix import launcher

    shown = ""
    while True:
        record, found = launcher.statuses(group_dir, backend)
        states = [st.state.value if st else "not submitted" for st in found.values()]
        line = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
        if line != shown:
            echo(f"{time.strftime('%H:%M:%S')} {group_dir.name}: {line}", err=True)
            shown = line
        if all(st is None or st.state.finished for st in found.values()):
            return record, found
        time.sleep(poll_s)


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
    from olmix import launcher

    group_dir = output / group
    record = launcher.read_record(group_dir)
    backend = launcher.backend_for(record)
    if wait:
        wait_and_show(group_dir, backend, as_json)
        return
    record, found = launcher.statuses(group_dir, backend)
    _show_status(group_dir, record, found, as_json)


def _show_status(group_dir: Path, record: dict[str, Any], found: dict[str, Any], as_json: bool) -> None:
    group = group_dir.name
    runs = []
    for entry in record["runs"]:
        st = found[entry["name"]]
        runs.append(
            {
                "run": entry["name"],
                "state": st.state.value if st else "not submitted",
                "exit_code": st.exit_code if st else None,
                "duration_s": round(st.duration, 1) if st and st.duration is not None else None,
                "job_id": entry["job_id"],
                "log": str(group_dir / entry["name"] / "train.log"),
                "detail": st.detail if st else "",
            }
        )
    if as_json:
        click.echo(json.dumps({"group": group, "backend": record["backend"], "runs": runs}, indent=2))
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
    echo(f"group {group} on {record['backend']} ({record['config']['path']})")
    click.echo(table(rows, ["run", "state", "exit", "duration", "log"]))
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
    from olmix import launcher

    group_dir = output / group
    record = launcher.read_record(group_dir)
    what = ", ".join(runs) if runs else "every unfinished run"
    if not yes:
        click.confirm(escape(f"Cancel {what} of group {group}?"), default=False, abort=True, err=True)
    done = launcher.cancel(group_dir, launcher.backend_for(record), list(runs) or None)
    echo(f"cancelled: {', '.join(done)}" if done else "nothing to cancel: those runs are finished or not submitted")


@click.command(name="list")
@runs_dir_option
@click.option("--limit", default=20, show_default=True, help="Show at most this many groups, newest first.")
@reports_errors
def list_groups(output: Path, limit: int) -> None:
    """Recently launched groups, newest first."""
    from olmix import launcher

    records = []
    for path in output.glob(f"*/{launcher.RECORD}") if output.is_dir() else []:
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    records.sort(key=lambda r: r.get("created_at", 0), reverse=True)
    if not records:
        echo(f"no launched groups under {output}")
        return
    rows = [
        [
            r["group"],
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])),
            r["backend"],
            str(len(r["runs"])),
            r["config"]["path"],
        ]
        for r in records[:limit]
    ]
    click.echo(table(rows, ["group", "launched", "backend", "runs", "config"]))
