"""`olmix launch status | cancel | list`: watch and stop launched groups from any terminal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from olmix.cli import echo, reports_errors
from olmix.commands.options import examples, format_option, runs_dir_option
from olmix.render import table, to_json
from olmix.terminal import escape


def _duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:  # unknown
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _runs_dir_flag(runs_dir: Path) -> str:
    """` --runs-dir D` unless D is the default runs folder."""
    import shlex

    return "" if runs_dir.resolve() == Path("runs").resolve() else f" --runs-dir {shlex.quote(str(runs_dir))}"


def wait_for(group_dir: Path, backend: Any, poll_s: float = 2.0) -> tuple[Any, dict[str, Any]]:
    """Block until every submitted run of the group has finished, saying on stderr how the runs move."""
    from olmix.launch import launcher

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


@click.command(
    epilog=examples(
        "olmix launch status --group quality-top30pct-07bc44a5",
        "olmix launch status --group quality-top30pct-07bc44a5 --wait --format json",
    )
)
@click.option("--group", "group", required=True, help="Group id, as printed by `olmix launch run`.")
@runs_dir_option("output")
@format_option("text", "json")
@click.option("--wait", is_flag=True, help="Wait until every run has finished (exit 1 if one did not succeed).")
@reports_errors
def status(group: str, output: Path, fmt: str, wait: bool) -> None:
    """Each run's state, exit code, duration, progress and log of a launched group.

    A running run's progress is its phase (training, evaluating, scoring) and how far it is, from the
    progress.json the trainer keeps in its folder (`-` where there is none, as on Beaker)."""
    as_json = fmt == "json"
    from olmix import runpaths
    from olmix.launch import launcher

    group_dir = runpaths.group_dir(output, group)
    record = launcher.read_record(group_dir)
    backend = launcher.backend_for(record)
    if wait:
        wait_and_show(group_dir, backend, as_json)
        return
    record, found = launcher.statuses(group_dir, backend)
    _show_status(group_dir, record, found, as_json)


def _progress(progress: Any) -> str:
    if progress is None:
        return "-"
    text = f"{progress.phase} {progress.step}/{progress.total}"
    return text if progress.phase == "training" else f"{text} (step {progress.training_step})"


def _show_status(group_dir: Path, record: Any, found: dict[str, Any], as_json: bool) -> None:
    from olmix.launch.failures import failure
    from olmix.training.progress import read_progress

    group = group_dir.name
    runs, shown = [], []
    for entry in record.runs:
        st = found[entry.name]
        running = st is not None and st.state.value == "running"
        progress = read_progress(group_dir / entry.name) if running else None  # where the trainer is
        shown.append(progress)
        why = failure(st, group_dir / entry.name)
        runs.append(
            {
                "run": entry.name,
                "state": st.state.value if st else ("cancelled" if entry.cancel_requested_at else "not submitted"),
                "exit_code": st.exit_code if st else None,
                "duration_s": round(st.duration, 1) if st and st.duration is not None else None,
                "progress": None if progress is None else progress.model_dump(exclude={"progress_version"}),
                "job_id": entry.job_id,
                # a run on a cluster without a shared folder (Beaker) logs to its page, not to train.log here
                "log": entry.url or str(group_dir / entry.name / "train.log"),
                "detail": st.detail
                if st
                else ("cancelled before it was submitted" if entry.cancel_requested_at else ""),
                # why it did not succeed: exit code or signal, the scheduler's reason, the end of its log
                "reason": why.reason if why else None,
                "log_tail": why.log_tail if why else [],
                "attempts": len(entry.attempts) + 1 if entry.state == "submitted" else len(entry.attempts),
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
            _progress(progress),
            r["log"],
        ]
        for r, progress in zip(runs, shown, strict=True)
    ]
    echo(f"group {group} on {record.backend} ({record.config.path})")
    click.echo(table(["run", "state", "exit", "duration", "progress", "log"], rows))
    for r in runs:
        if r["reason"]:
            echo(f"{r['run']} {r['state']}: {r['reason']}")
            if r["log_tail"]:
                echo(f"  last lines of {r['log']}:")
                for line in r["log_tail"]:
                    echo(f"  | {line}")
        elif r["detail"]:
            echo(f"{r['run']}: {r['detail']}")
    if retry := [r["run"] for r in runs if r["state"] in ("failed", "cancelled")]:
        echo(f"retry {', '.join(retry)}:  olmix launch retry --group {group}" + _runs_dir_flag(group_dir.parent))


@click.command(
    epilog=examples(
        "olmix launch cancel --group quality-top30pct-07bc44a5",
        "olmix launch cancel --group quality-top30pct-07bc44a5 --run quality-top30pct --yes",
    )
)
@click.option("--group", "group", required=True, help="Group id, as printed by `olmix launch run`.")
@click.option("--run", "runs", multiple=True, help="Cancel only this run (repeatable); default: every unfinished run.")
@runs_dir_option("output")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@reports_errors
def cancel(group: str, runs: tuple[str, ...], output: Path, yes: bool) -> None:
    """Stop a group's unfinished runs (their whole process groups) and record it."""
    from olmix import runpaths
    from olmix.launch import launcher

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


@click.command(
    epilog=examples(
        "olmix launch retry --group quality-top30pct-07bc44a5",
        "olmix launch retry --group quality-top30pct-07bc44a5 --yes --format json",
    )
)
@click.option("--group", "group", required=True, help="Group id, as printed by `olmix launch run`.")
@runs_dir_option("output")
@format_option("text", "json")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@reports_errors
def retry(group: str, output: Path, fmt: str, yes: bool) -> None:
    """Submit again, once each, the runs of a group that failed or were cancelled.

    Each run's earlier attempt stays in the launch record (`attempts`), its
    logs in the run's `attempts/<n>/` folder. Runs with the group's recorded
    plan, trainer command and environment; a second retry submits nothing
    until a retried run fails again.
    """
    as_json = fmt == "json"
    from olmix import runpaths
    from olmix.launch import launcher

    group_dir = runpaths.group_dir(output, group)
    record = launcher.read_record(group_dir)
    backend = launcher.backend_for(record)
    request = launcher.retry_request(group_dir, backend)
    names = launcher.to_retry(group_dir, backend)
    say = (lambda text: echo(text, err=True)) if as_json else echo
    if not names:
        say(f"nothing to retry: no run of group {group} failed or was cancelled")
        if as_json:
            click.echo(to_json({"group": group, "output": str(group_dir), "runs": []}))
        return
    if not yes:
        click.confirm(
            escape(f"Retry {len(names)} run(s) of group {group} on {record.backend} ({', '.join(names)})?"),
            default=False,
            abort=True,
            err=True,
        )
    results = launcher.submit(request, backend, lambda s: say(_retried_line(s)) if s.new or not s.job_id else None)
    if as_json:
        runs = [{"run": r.run, "job_id": r.job_id or None, "new": r.new, "cancelled": r.cancelled} for r in results]
        click.echo(to_json({"group": group, "output": str(group_dir), "runs": runs}))
    else:
        echo(f"group {group}: {sum(r.new for r in results)} submitted now, {len(results)} in all")


def _retried_line(s: Any) -> str:
    if not s.job_id:
        return f"not submitted {s.run}: cancelled before it was submitted"
    return f"submitted {s.run}: job {s.job_id}" + (" (cancelled)" if s.cancelled else "")


@click.command(name="list", epilog=examples("olmix launch list --limit 5", "olmix launch list --format json"))
@runs_dir_option("output")
@click.option("--limit", default=20, show_default=True, help="Show at most this many groups, newest first.")
@format_option("text", "json")
@reports_errors
def list_groups(output: Path, limit: int, fmt: str) -> None:
    """Recently launched groups, newest first, each with how many of its runs are in each state.

    The states are those the record last saw (`olmix launch status` refreshes them from the backend)."""
    from olmix.launch import launcher
    from olmix.launch.record import run_states, states_line

    records, bad = launcher.list_records(output)
    for error in bad:
        echo(f"skipped a bad launch record: {error}", err=True)
    if fmt == "json":
        groups = [
            {
                "group": r.group,
                "created_at": r.created_at,
                "backend": r.backend,
                "runs": len(r.runs),
                "states": run_states(r),
                "config": r.config.path,
            }
            for r in records[:limit]
        ]
        click.echo(to_json({"runs_dir": str(output), "groups": groups}))
        return
    if not records:
        echo(f"no launched groups under {output}")
        return
    rows = [
        [
            r.group,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
            r.backend,
            str(len(r.runs)),
            states_line(run_states(r)),
            r.config.path,
        ]
        for r in records[:limit]
    ]
    click.echo(table(["group", "launched", "backend", "runs", "states", "config"], rows))
