"""Collect a group's metrics into one table: held-out loss against quality threshold.

Runs live at `<runs-dir>/<group>/<run>/metrics.json`, each with its plan
beside it as `plan.json`. A run's threshold is the fraction of data kept, as
its plan records what the study varied (`varied.quality_threshold`); a plan
from a config written by hand records none, and then the share of the 20
vigintiles its leaves keep stands in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix import records
from olmix.errors import ConfigError, OlmixError
from olmix.training.metrics import METRICS_FILE, read_metrics

if TYPE_CHECKING:
    from olmix_generated.launch_plan import LaunchPlan

PLAN_FILE = "plan.json"
VIGINTILES = 20
_VIGINTILE = re.compile(r"(?:^|:)vigintile_(\d{4})$")


class ResultsError(OlmixError):
    """No runs to show, or a metrics file that cannot be read."""


@dataclass(frozen=True)
class Score:
    """A downstream task's accuracy and bits per byte; None where the task's metric gives none."""

    accuracy: float | None
    bpb: float | None


# a task's columns in the table and CSV: its name, then the metric
DOWNSTREAM_COLUMNS = (("acc", "accuracy"), ("bpb", "bpb"))


@dataclass(frozen=True)
class RunResult:
    run: str
    threshold: float | None
    tokens_trained: int
    steps: int
    final_train_loss: float | None
    heldout: dict[str, float | None]
    change_vs_widest: dict[str, float | None] = field(default_factory=dict)
    downstream: dict[str, Score] = field(default_factory=dict)  # task -> its scores at the last evaluation

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "threshold": self.threshold,
            "tokens_trained": self.tokens_trained,
            "steps": self.steps,
            "final_train_loss": self.final_train_loss,
            "heldout_loss": self.heldout,
            "change_vs_widest": self.change_vs_widest,
            "downstream": {
                task: {"accuracy": s.accuracy, "bits_per_byte": s.bpb} for task, s in self.downstream.items()
            },
        }


def threshold_from_leaves(leaf_names: Iterable[str]) -> float | None:
    """Share of the vigintiles kept, when the leaves are vigintile buckets."""
    kept = {m.group(1) for name in leaf_names if (m := _VIGINTILE.search(name))}
    return len(kept) / VIGINTILES if kept else None


def threshold_from_plan(plan: LaunchPlan, run: str) -> float | None:
    """The quality threshold the plan's run records, else the share of vigintiles its leaves keep."""
    chosen = [entry for entry in plan.runs if entry.name == run] or (plan.runs if len(plan.runs) == 1 else [])
    for entry in chosen:
        if entry.varied is not None and entry.varied.quality_threshold is not None:
            return entry.varied.quality_threshold
    return threshold_from_leaves(leaf.name for entry in chosen for leaf in entry.leaves)


def read_run(folder: Path) -> RunResult:
    """One run's result from its folder; MetricsError (PlanError) when its metrics.json (plan.json) is not valid."""
    metrics = read_metrics(folder / METRICS_FILE)
    name = metrics.run
    threshold = None
    if (folder / PLAN_FILE).is_file():
        from olmix.planning.planfile import read_plan

        threshold = threshold_from_plan(read_plan(folder / PLAN_FILE), name)
    # fixed evaluation sets (the same for every run) when the runs had them, else each run's own held-out data
    sources = metrics.eval or metrics.heldout.sources
    return RunResult(
        run=name,
        threshold=threshold,
        tokens_trained=metrics.tokens_trained,
        steps=metrics.steps,
        final_train_loss=metrics.final_train_loss,
        heldout={source: value.loss for source, value in sources.items()},
        downstream={task: Score(v.accuracy, v.bits_per_byte) for task, v in metrics.downstream.items()},
    )


def with_changes(results: Sequence[RunResult]) -> list[RunResult]:
    """Sorted by threshold (widest last), each with its held-out change against the widest threshold's run."""
    ordered = sorted(results, key=lambda r: (r.threshold is None, r.threshold or 0.0, r.run))
    known = [r for r in ordered if r.threshold is not None]
    if not known:
        return ordered
    widest = max(known, key=lambda r: r.threshold or 0.0)
    out = []
    for result in ordered:
        change = {source: _difference(loss, widest.heldout.get(source)) for source, loss in result.heldout.items()}
        out.append(replace(result, change_vs_widest=change))
    return out


def _difference(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def latest_group(runs_dir: str | Path) -> str:
    """The most recently launched group under runs_dir: by its record's creation time, which no status or cancel
    changes (they rewrite the record); a record that is not valid is passed over."""
    from olmix.launch.launcher import list_records

    records, _ = list_records(Path(runs_dir))
    if not records:
        raise ResultsError(f"no launched groups under {runs_dir}; name one with --group")
    return records[0].group


def collect(runs_dir: str | Path, group: str, skipped: list[str] | None = None) -> list[RunResult]:
    """Every finished run of the group (those with a metrics.json), widest threshold last.

    A run whose metrics.json or plan.json is not valid (or too big to read) is left out, and a line naming the
    file and its first problem is appended to `skipped`; when every run is left out, that is an error listing
    them.
    """
    folder = Path(runs_dir) / group
    if not folder.is_dir():
        raise ResultsError(f"no group {group!r} under {runs_dir}")
    results, bad = [], []
    for run in sorted(folder.iterdir()):
        if (run / METRICS_FILE).is_file():
            try:
                results.append(read_run(run))
            except ConfigError as exc:  # the metrics or the plan beside them
                bad.append(records.skipped_line(exc))
    if not results:
        if bad:
            raise ResultsError(f"no run of group {group!r} has valid metrics:\n" + "\n".join(bad))
        raise ResultsError(f"no run of group {group!r} has a {METRICS_FILE} yet (looked in {folder})")
    if skipped is not None:
        skipped.extend(bad)
    return with_changes(results)


def sources(results: Sequence[RunResult]) -> list[str]:
    """Sources with a held-out loss in any run, in first-seen order."""
    seen: dict[str, None] = {}
    for result in results:
        seen.update(dict.fromkeys(result.heldout))
    return list(seen)


def tasks(results: Sequence[RunResult]) -> list[str]:
    """Downstream tasks evaluated in any run, in first-seen order."""
    seen: dict[str, None] = {}
    for result in results:
        seen.update(dict.fromkeys(result.downstream))
    return list(seen)


def downstream_cells(result: RunResult, names: Sequence[str]) -> dict[str, float | None]:
    """`<task> acc` and `<task> bpb` of each task named, None where the run has no such score."""
    out: dict[str, float | None] = {}
    for task in names:
        score = result.downstream.get(task)
        for column, attribute in DOWNSTREAM_COLUMNS:
            out[f"{task} {column}"] = None if score is None else getattr(score, attribute)
    return out


def rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """Flat rows for CSV: one column per source's held-out loss and its change, then per downstream task metric."""
    names = sources(results)
    evaluated = tasks(results)
    out = []
    for r in results:
        row: dict[str, Any] = {
            "run": r.run,
            "threshold": r.threshold,
            "tokens_trained": r.tokens_trained,
            "steps": r.steps,
            "final_train_loss": r.final_train_loss,
        }
        for source in names:
            row[f"heldout_{source}"] = r.heldout.get(source)
            row[f"change_{source}"] = r.change_vs_widest.get(source)
        row.update(downstream_cells(r, evaluated))
        out.append(row)
    return out


def series(results: Sequence[RunResult]) -> Mapping[str, list[tuple[float, float]]]:
    """Per source, (threshold, held-out loss) points for a plot."""
    out: dict[str, list[tuple[float, float]]] = {}
    for r in results:
        if r.threshold is None:
            continue
        for source, loss in r.heldout.items():
            if loss is not None:
                out.setdefault(source, []).append((r.threshold, loss))
    return {source: sorted(points) for source, points in out.items()}
