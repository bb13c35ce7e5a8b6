"""Collect a group's metrics into one table: held-out loss against quality threshold.

Runs live at `<runs-dir>/<group>/<run>/metrics.json`, each with its plan
beside it as `plan.json`. A run's threshold is the fraction of data kept, as
its plan records what the study varied (`varied.quality_threshold`); a plan
from a config written by hand records none, and then the share of the 20
vigintiles its leaves keep stands in.

Replicates of one mixture (runs whose plan records the same `replicate.mixture`)
are summarised as the mean and standard error of each metric; a difference
between two mixtures is within noise when it is under twice the standard error
of the difference (the two standard errors combined in quadrature).
"""

from __future__ import annotations

import dataclasses
import math
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
NOISE_SE = 2.0  # a difference under this many standard errors is within noise
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
    mixture: str = ""  # the mixture this run replicates; "" when the run is its own mixture
    downstream: dict[str, Score] = field(default_factory=dict)  # task -> its scores at the last evaluation

    @property
    def mixture_name(self) -> str:
        return self.mixture or self.run

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "mixture": self.mixture_name,
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


def replicated_mixture(plan: LaunchPlan, run: str) -> str:
    """The mixture the plan's run replicates, "" when it is no replicate."""
    for entry in plan.runs:
        if entry.name == run and entry.replicate is not None:
            return entry.replicate.mixture
    return ""


def read_run(folder: Path) -> RunResult:
    """One run's result from its folder; MetricsError (PlanError) when its metrics.json (plan.json) is not valid."""
    metrics = read_metrics(folder / METRICS_FILE)
    name = metrics.run
    threshold, mixture = None, ""
    if (folder / PLAN_FILE).is_file():
        from olmix.planning.planfile import read_plan

        plan = read_plan(folder / PLAN_FILE)
        threshold, mixture = threshold_from_plan(plan, name), replicated_mixture(plan, name)
    # fixed evaluation sets (the same for every run) when the runs had them, else each run's own held-out data
    sources = metrics.eval or metrics.heldout.sources
    return RunResult(
        run=name,
        threshold=threshold,
        tokens_trained=metrics.tokens_trained,
        steps=metrics.steps,
        final_train_loss=metrics.final_train_loss,
        heldout={source: value.loss for source, value in sources.items()},
        mixture=mixture,
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


def has_results(runs_dir: str | Path, group: str) -> bool:
    """Whether any run of the group has written its metrics."""
    folder = Path(runs_dir) / group
    return folder.is_dir() and any((run / METRICS_FILE).is_file() for run in folder.iterdir())


def latest_group(runs_dir: str | Path) -> str:
    """The most recently launched group under runs_dir that has results (a run with metrics): by its record's
    creation time, which no status or cancel changes (they rewrite the record); a record that is not valid is
    passed over."""
    from olmix.launch.launcher import list_records

    records, _ = list_records(Path(runs_dir))
    if not records:
        raise ResultsError(f"no launched groups under {runs_dir}; name one with --group")
    for record in records:
        if has_results(runs_dir, record.group):
            return record.group
    raise ResultsError(
        f"no launched group under {runs_dir} has results yet (no run has a {METRICS_FILE}; "
        f"the latest launched is {records[0].group}); see `olmix launch status`"
    )


def collect(runs_dir: str | Path, group: str, skipped: list[str] | None = None) -> list[RunResult]:
    """Every finished run of the group (those with a metrics.json), widest threshold last.

    Runs whose metrics their backend keeps elsewhere are fetched first (olmix.results.fetch); a run without
    metrics there is named in a line appended to `skipped`. A run whose metrics.json or plan.json is not valid
    (or too big to read) is left out, and a line naming the file and its first problem is appended to
    `skipped`; when every run is left out, that is an error listing them.
    """
    from olmix.results.fetch import fetch_group

    folder = Path(runs_dir) / group
    if not folder.is_dir():
        raise ResultsError(f"no group {group!r} under {runs_dir}")
    notes = fetch_group(folder)  # metrics a backend keeps elsewhere (Beaker's result datasets), brought home
    results, bad = [], []
    for run in sorted(folder.iterdir()):
        if (run / METRICS_FILE).is_file():
            try:
                results.append(read_run(run))
            except ConfigError as exc:  # the metrics or the plan beside them
                bad.append(records.skipped_line(exc))
    if not results:
        if bad:
            raise ResultsError(f"no run of group {group!r} has valid metrics:\n  " + "\n  ".join([*bad, *notes]))
        raise ResultsError(
            "\n  ".join([f"no run of group {group!r} has a {METRICS_FILE} yet (looked in {folder})", *notes])
        )
    if skipped is not None:
        skipped.extend([*notes, *bad])
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


# -- replicates: mean ± standard error per mixture ---------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    """A metric over a mixture's replicates: mean, standard error of the mean (None under 2 values), count."""

    mean: float
    se: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "se": self.se, "n": self.n}


@dataclass(frozen=True)
class Difference:
    """a − b with the standard error of the difference (None when either side has none) and the verdict."""

    diff: float
    se: float | None

    @property
    def within_noise(self) -> bool:
        return self.se is not None and abs(self.diff) < NOISE_SE * self.se

    def as_dict(self) -> dict[str, Any]:
        return {"diff": self.diff, "se": self.se, "within_noise": self.within_noise}


def stat(values: Sequence[float | None]) -> Stat | None:
    """Mean and standard error of the values that are known; None when none is."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    n = len(known)
    mean = math.fsum(known) / n
    if n < 2:
        return Stat(mean, None, n)
    variance = math.fsum((v - mean) ** 2 for v in known) / (n - 1)
    return Stat(mean, math.sqrt(variance / n), n)


def difference(a: Stat | None, b: Stat | None) -> Difference | None:
    if a is None or b is None:
        return None
    se = None if a.se is None or b.se is None else math.hypot(a.se, b.se)
    return Difference(a.mean - b.mean, se)


@dataclass(frozen=True)
class MixtureResult:
    """A mixture's replicates summarised; a run that replicates nothing is a mixture of one."""

    mixture: str
    runs: list[str]
    threshold: float | None
    tokens_trained: int
    steps: int
    final_train_loss: Stat | None
    heldout: dict[str, Stat | None]
    change_vs_widest: dict[str, Difference | None] = field(default_factory=dict)
    downstream: dict[str, Stat | None] = field(default_factory=dict)  # "<task> acc" / "<task> bpb" -> over runs

    @property
    def n(self) -> int:
        return len(self.runs)

    def as_dict(self) -> dict[str, Any]:
        def out(value: Stat | Difference | None) -> dict[str, Any] | None:
            return None if value is None else value.as_dict()

        return {
            "mixture": self.mixture,
            "runs": self.runs,
            "n": self.n,
            "threshold": self.threshold,
            "tokens_trained": self.tokens_trained,
            "steps": self.steps,
            "final_train_loss": out(self.final_train_loss),
            "heldout_loss": {source: out(v) for source, v in self.heldout.items()},
            "change_vs_widest": {source: out(v) for source, v in self.change_vs_widest.items()},
            "downstream": {column: out(v) for column, v in self.downstream.items()},
        }


def mixtures(results: Sequence[RunResult]) -> list[MixtureResult]:
    """The runs pooled by mixture, widest threshold last, each with its change against the widest's mixture."""
    pooled: dict[str, list[RunResult]] = {}
    for result in results:
        pooled.setdefault(result.mixture_name, []).append(result)
    names, evaluated = sources(results), tasks(results)
    summaries = []
    for name, runs in pooled.items():
        summaries.append(
            MixtureResult(
                mixture=name,
                runs=[r.run for r in runs],
                threshold=runs[0].threshold,
                tokens_trained=max(r.tokens_trained for r in runs),
                steps=max(r.steps for r in runs),
                final_train_loss=stat([r.final_train_loss for r in runs]),
                heldout={s: stat([r.heldout.get(s) for r in runs]) for s in names},
                downstream={
                    column: stat([downstream_cells(r, evaluated)[column] for r in runs])
                    for column in downstream_cells(runs[0], evaluated)
                },
            )
        )
    ordered = sorted(summaries, key=lambda m: (m.threshold is None, m.threshold or 0.0, m.mixture))
    known = [m for m in ordered if m.threshold is not None]
    if not known:
        return ordered
    widest = max(known, key=lambda m: m.threshold or 0.0)
    out = []
    for m in ordered:
        if m is widest:
            change = {s: None if v is None else Difference(0.0, None) for s, v in m.heldout.items()}
        else:
            change = {s: difference(v, widest.heldout.get(s)) for s, v in m.heldout.items()}
        out.append(dataclasses.replace(m, change_vs_widest=change))
    return out


def replicated(found: Sequence[MixtureResult]) -> bool:
    """Whether any mixture has more than one run."""
    return any(m.n > 1 for m in found)


def mixture_rows(found: Sequence[MixtureResult]) -> list[dict[str, Any]]:
    """Flat rows for CSV, one per mixture: each metric's mean, its standard error and n; each change, its standard
    error and whether it is within noise."""
    names = list(dict.fromkeys(s for m in found for s in m.heldout))
    out = []
    for m in found:
        final = m.final_train_loss
        row: dict[str, Any] = {
            "run": m.mixture,
            "n": m.n,
            "threshold": m.threshold,
            "tokens_trained": m.tokens_trained,
            "steps": m.steps,
            "final_train_loss": None if final is None else final.mean,
            "final_train_loss_se": None if final is None else final.se,
        }
        for source in names:
            value, change = m.heldout.get(source), m.change_vs_widest.get(source)
            row[f"heldout_{source}"] = None if value is None else value.mean
            row[f"heldout_{source}_se"] = None if value is None else value.se
            row[f"change_{source}"] = None if change is None else change.diff
            row[f"change_{source}_se"] = None if change is None else change.se
            row[f"change_{source}_within_noise"] = None if change is None else change.within_noise
        for column, value in m.downstream.items():
            row[column] = None if value is None else value.mean
            row[f"{column}_se"] = None if value is None else value.se
        out.append(row)
    return out


def mixture_series(found: Sequence[MixtureResult]) -> Mapping[str, list[tuple[float, float, float | None]]]:
    """Per source, (threshold, mean held-out loss, its standard error) points for a plot."""
    out: dict[str, list[tuple[float, float, float | None]]] = {}
    for m in found:
        if m.threshold is None:
            continue
        for source, value in m.heldout.items():
            if value is not None:
                out.setdefault(source, []).append((m.threshold, value.mean, value.se))
    return {source: sorted(points, key=lambda p: p[0]) for source, points in out.items()}


# -- groups side by side -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One metric of one mixture in every group, and each group's difference from the first."""

    mixture: str
    metric: str
    values: dict[str, Stat | None]  # group -> its value
    differences: dict[str, Difference | None]  # group (but the first) -> its value − the first group's

    def as_dict(self) -> dict[str, Any]:
        return {
            "mixture": self.mixture,
            "metric": self.metric,
            "values": {g: None if v is None else v.as_dict() for g, v in self.values.items()},
            "differences": {g: None if d is None else d.as_dict() for g, d in self.differences.items()},
        }


def compare(groups: Sequence[tuple[str, Sequence[MixtureResult]]]) -> list[Comparison]:
    """Each metric of each mixture across the groups, matched by mixture name (when every group holds one mixture,
    those are compared whatever their names), in the first group's order."""
    if all(len(found) == 1 for _, found in groups):
        label = " vs ".join(dict.fromkeys(found[0].mixture for _, found in groups))
        keyed = [(group, {label: found[0]}) for group, found in groups]
    else:
        keyed = [(group, {m.mixture: m for m in found}) for group, found in groups]
    names = list(dict.fromkeys(name for _, by_name in keyed for name in by_name))
    metrics = list(dict.fromkeys(s for _, found in groups for m in found for s in m.heldout))
    first = keyed[0][0]
    out = []
    for name in names:
        for metric in ["final loss", *(f"held-out {s}" for s in metrics)]:
            values: dict[str, Stat | None] = {}
            for group, by_name in keyed:
                m = by_name.get(name)
                if m is None:
                    values[group] = None
                elif metric == "final loss":
                    values[group] = m.final_train_loss
                else:
                    values[group] = m.heldout.get(metric.removeprefix("held-out "))
            if all(v is None for v in values.values()):
                continue
            diffs = {group: difference(values[group], values[first]) for group, _ in keyed[1:]}
            out.append(Comparison(name, metric, values, diffs))
    return out
