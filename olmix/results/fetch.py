"""Bring a group's metrics home before they are read: each run's metrics.json into its run folder.

Local and Slurm runs write metrics.json into their folders themselves. A
Beaker run writes it into its result dataset, on the service; the backend
the group was launched on (named in its launch record) fetches it through
its `fetch_results` hook, which keeps the copy and fetches again only what
changed. A group without a record (copied folders, a hand-made layout) is
read as it is.
"""

from __future__ import annotations

from pathlib import Path

from olmix.errors import ExtraMissing, OlmixError


def fetch_group(group_dir: Path) -> list[str]:
    """Fetch the metrics of the group's submitted runs where its backend keeps them elsewhere; a note for each run
    that has none, and one for a service that could not be asked (the runs are then read as they are)."""
    from olmix.backends import BackendError
    from olmix.launch.launcher import RECORD, backend_for, read_record

    if not (group_dir / RECORD).is_file():
        return []
    try:
        record = read_record(group_dir)
        runs = [(e.name, str(e.job_id)) for e in record.runs if e.state == "submitted" and e.job_id is not None]
        if not runs:
            return []
        backend = backend_for(record)
    except OlmixError as exc:  # a record that cannot be read: the runs' folders are read as they are
        return [f"{group_dir.name}: metrics not fetched: {exc}"]
    notes: list[str] = []
    for name, job_id in runs:
        try:
            note = backend.fetch_results(group_dir / name, job_id)
        except (BackendError, ExtraMissing) as exc:
            return [*notes, f"{record.group}: metrics not fetched from {record.backend}: {exc}"]
        except OlmixError as exc:  # the run folder cannot be written
            note = str(exc)
        if note:
            notes.append(f"{record.group}/{name}: {note}")
    return notes
