"""Evidence for a fit: each run's leaf weights and metrics, and the data behind each leaf.

A run's folder holds its plan (`plan.json`: every leaf's ratio and its files
with their token counts) and `metrics.json`. Metrics are named
`heldout:<source>` (held-out loss per source), `eval:<set>` (loss on a
fixed evaluation set), and for each downstream task (`eval_tasks`)
`downstream:<task>:bpb` (bits per byte of the correct answers) and
`downstream:<task>:error` (1 - accuracy). Every metric is lower-is-better,
as the fit minimises its objective: a fit that targets accuracy targets its
error. Every leaf of every run carries a fingerprint of its
files (path and tokens): two runs whose same-named leaf held different data
(re-partitioned, deduplicated or relabelled buckets) are never pooled; the
upstream tools key evidence by name only and it goes stale silently.

CSV in the upstream olmix layout moves evidence both ways: `ratios.csv` (a
`run` column, then one per leaf) and `metrics.csv` (a `run` column, then one
per metric), joined on `run`. `fingerprints.csv` (same shape as ratios.csv)
rides along so an imported swarm can still be checked before pooling.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix import records, render
from olmix.errors import OlmixError

RATIOS_FILE = "ratios.csv"
METRICS_CSV = "metrics.csv"
FINGERPRINTS_FILE = "fingerprints.csv"
RATIO_SUM_TOLERANCE = 0.01  # upstream's: each ratios row sums to 1 ± 0.01
DOWNSTREAM = "downstream"  # metrics `downstream:<task>:bpb` and `downstream:<task>:error`


if TYPE_CHECKING:
    from olmix_generated.metrics import Metrics


class EvidenceError(OlmixError):
    """Evidence that cannot be read or must not be pooled."""


@dataclass(frozen=True)
class Run:
    name: str
    ratios: dict[str, float]  # leaf -> ratio (leaves left out of the run have no entry)
    metrics: dict[str, float]  # metric -> value (metrics the run lacks have no entry)
    fingerprints: dict[str, str]  # leaf -> digest of its files
    tokens: dict[str, int] = field(default_factory=dict)  # leaf -> tokens available, when the plan says
    config: str = ""  # the config the run was planned from, when the plan says


@dataclass(frozen=True)
class Evidence:
    runs: list[Run]
    leaves: list[str]  # every leaf of any run, in first-seen order
    metrics: list[str]  # metrics every run has, in first-seen order
    notes: list[str] = field(default_factory=list)  # what was read differently from how it was given, and why

    def matrix(self) -> tuple[list[list[float]], list[list[float]]]:
        """(ratios, metrics) as rows per run, columns per leaf / metric."""
        x = [[run.ratios.get(leaf, 0.0) for leaf in self.leaves] for run in self.runs]
        y = [[run.metrics[m] for m in self.metrics] for run in self.runs]
        return x, y


def fingerprint(files: Mapping[str, int]) -> str:
    """The data behind a leaf: sha256 over its (path, tokens) pairs in sorted order, first 16 hex digits."""
    text = "\n".join(f"{path}\t{tokens}" for path, tokens in sorted(files.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _metric_values(metrics: Metrics) -> dict[str, float]:
    out: dict[str, float] = {}
    for prefix, table in (("heldout", metrics.heldout.sources), ("eval", metrics.eval)):
        for name, value in table.items():
            if value.loss is not None:  # the metrics reader lets no NaN or infinity through
                out[f"{prefix}:{name}"] = value.loss
    for task, score in metrics.downstream.items():
        if score.bits_per_byte is not None:
            out[f"{DOWNSTREAM}:{task}:bpb"] = score.bits_per_byte
        if score.accuracy is not None:
            out[f"{DOWNSTREAM}:{task}:error"] = 1.0 - score.accuracy
    return out


def read_run(folder: Path) -> Run:
    """One finished run: its plan's leaves and its metrics, both read through their schemas."""
    from olmix.training.metrics import METRICS_FILE, read_metrics
    from olmix.training.trainer import load_run

    metrics = read_metrics(folder / METRICS_FILE)
    name = metrics.run
    _, run = load_run(folder / "plan.json", name)
    ratios, prints, tokens = {}, {}, {}
    for leaf in run.leaves:
        ratios[leaf.name] = leaf.ratio
        prints[leaf.name] = fingerprint(leaf.files)
        tokens[leaf.name] = leaf.tokens_available
    where = run.config.path if run.config is not None else ""
    return Run(name, ratios, _metric_values(metrics), prints, tokens, where)


def pooled(runs: Sequence[Run]) -> Evidence:
    """The runs as one body of evidence; EvidenceError when a leaf's data differs between runs."""
    if not runs:
        raise EvidenceError("no runs to pool")
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for run in runs:
        for leaf, digest in run.fingerprints.items():
            first = seen.setdefault(leaf, (digest, run.name))
            if first[0] != digest:
                clashes.append(f"leaf '{leaf}' held different files in run '{first[1]}' and run '{run.name}'")
    if clashes:
        raise EvidenceError(
            "these runs must not be pooled: the same leaf name stands for different data\n  " + "\n  ".join(clashes)
        )
    leaves = list(dict.fromkeys(leaf for run in runs for leaf in run.ratios))
    metrics = [m for m in dict.fromkeys(m for run in runs for m in run.metrics) if all(m in r.metrics for r in runs)]
    return Evidence(list(runs), leaves, metrics)


def collect(runs_dir: str | Path, groups: Sequence[str], skipped: list[str] | None = None) -> Evidence:
    """Every finished run (with a metrics.json) of the groups, pooled.

    Runs whose metrics their backend keeps elsewhere are fetched first (olmix.results.fetch); a run without
    metrics there is named in a line appended to `skipped`. A run whose metrics.json or plan.json is not valid
    (or too big to read) is left out, and a line naming the file and its first problem is appended to
    `skipped`; when every run is left out, that is an error listing them. A run is who launched it (its
    submission token), not the folder it sits in: a copied folder is pooled once, and named in a note.
    """
    from olmix.errors import ConfigError
    from olmix.launch.record import RECORD, read_record
    from olmix.results.fetch import fetch_group
    from olmix.training.metrics import METRICS_FILE

    runs, bad = [], []
    notes: list[str] = []  # fetching's
    pooled_notes: list[str] = []
    seen: dict[str, Path] = {}
    for group in groups:
        folder = Path(runs_dir) / group
        if not folder.is_dir():
            raise EvidenceError(f"no group {group!r} under {runs_dir}")
        notes += fetch_group(folder)  # metrics a backend keeps elsewhere (Beaker's result datasets), brought home
        tokens: dict[str, str] = {}
        if (folder / RECORD).is_file():
            try:
                tokens = {r.name: r.token for r in read_record(folder).runs if r.token}
            except ConfigError as exc:
                bad.append(records.skipped_line(exc))
        for path in sorted(folder.iterdir()):
            if not (path / METRICS_FILE).is_file():
                continue
            try:
                run = read_run(path)
            except ConfigError as exc:  # its metrics or its plan
                bad.append(records.skipped_line(exc))
                continue
            key = tokens.get(run.name) or f"{group}/{run.name}"
            if key in seen:
                pooled_notes.append(f"{path}: the same run ({run.name!r}) as {seen[key]}; pooled once")
                continue
            seen[key] = path
            runs.append(run)
    if not runs:
        if bad:
            raise EvidenceError(f"no run of {', '.join(groups)} has valid evidence:\n" + "\n".join([*bad, *notes]))
        raise EvidenceError(
            "\n".join([f"no finished run (with {METRICS_FILE}) in {', '.join(groups)} under {runs_dir}", *notes])
        )
    if skipped is not None:
        skipped.extend([*notes, *bad])
    evidence = pooled(runs)
    return Evidence(evidence.runs, evidence.leaves, evidence.metrics, pooled_notes)


# -- CSV, the upstream layout ------------------------------------------------------------------------------


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    # defused like every CSV olmix writes (a leaf or run called "=HYPERLINK(...)" runs nothing in a spreadsheet);
    # from_csv reads it back through render.read_csv, so a run called "-x" is "-x" again
    return render.to_csv(header, rows).encode("utf-8")


def to_csv(evidence: Evidence) -> dict[str, bytes]:
    """File name -> bytes of ratios.csv, metrics.csv and fingerprints.csv."""
    x, y = evidence.matrix()
    names = [run.name for run in evidence.runs]
    return {
        RATIOS_FILE: _csv(["run", *evidence.leaves], [[n, *row] for n, row in zip(names, x, strict=True)]),
        METRICS_CSV: _csv(["run", *evidence.metrics], [[n, *row] for n, row in zip(names, y, strict=True)]),
        FINGERPRINTS_FILE: _csv(
            ["run", *evidence.leaves],
            [[r.name, *(r.fingerprints.get(leaf, "") for leaf in evidence.leaves)] for r in evidence.runs],
        ),
    }


IDENTITY_COLUMNS = ("run", "run_id", "name", "index", "run_name")  # upstream's: they say which run, not what


def _read_csv(path: Path, notes: list[str] | None = None) -> tuple[list[str], dict[str, tuple[int, list[str]]]]:
    from olmix.errors import ConfigError

    try:
        # bytes, not text mode: a "\r" inside a quoted cell stays a "\r"; spreadsheets save "UTF-8 CSV" with a
        # byte-order mark
        text = records.read_bounded(path, "CSV").decode("utf-8-sig")
    except ConfigError as exc:
        raise EvidenceError(str(exc.problems[0])) from None
    except UnicodeDecodeError as exc:
        raise EvidenceError(f"{path}:1: cannot read: {exc}") from None
    rows = render.read_csv(text)
    if not rows or not rows[0] or rows[0][0] not in ("run", "run_id"):
        raise EvidenceError(f"{path}:1: the first column must be 'run' (or upstream's 'run_id')")
    # upstream writes `run,name,index,<leaves…>` or `run_id,…`: the other identity columns are skipped, as
    # upstream's reader skips them
    skipped = [i for i, name in enumerate(rows[0]) if i > 0 and name in IDENTITY_COLUMNS]
    if skipped:
        if notes is not None:
            named = ", ".join(repr(rows[0][i]) for i in skipped)
            notes.append(f"{path}: identity column(s) {named} skipped; runs are keyed by {rows[0][0]!r}")
        keep = [i for i in range(len(rows[0])) if i not in skipped]
        rows = [[row[i] for i in keep if i < len(row)] if len(row) == len(rows[0]) else row for row in rows]
    header = rows[0][1:]
    if len(set(header)) != len(header):
        raise EvidenceError(f"{path}:1: a column name appears twice")
    out: dict[str, tuple[int, list[str]]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header) + 1:
            raise EvidenceError(f"{path}:{line}: {len(row)} fields, the header has {len(header) + 1}")
        if row[0] in out:
            raise EvidenceError(f"{path}:{line}: run {row[0]!r} appears twice")
        out[row[0]] = (line, row[1:])
    return header, out


def _number(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise EvidenceError(f"{path}:{line}: column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise EvidenceError(f"{path}:{line}: column {column!r}: {text} is not a finite number")
    return value


def from_csv(ratios_path: str | Path, metrics_path: str | Path) -> Evidence:
    """Evidence from ratios.csv and metrics.csv, joined on run; fingerprints.csv beside ratios.csv is checked."""
    rpath, mpath = Path(ratios_path), Path(metrics_path)
    notes: list[str] = []
    leaves, ratio_rows = _read_csv(rpath, notes)
    metrics, metric_rows = _read_csv(mpath, notes)
    for path, rows in ((rpath, ratio_rows), (mpath, metric_rows)):
        if not rows:
            raise EvidenceError(f"{path}: no runs, only a header")
    missing = [run for run in ratio_rows if run not in metric_rows]
    if missing:
        raise EvidenceError(f"{mpath}: no row for run(s) {', '.join(map(repr, missing[:5]))} of {rpath}")
    prints: dict[str, list[str]] = {}
    fpath = rpath.parent / FINGERPRINTS_FILE
    if fpath.is_file():
        fleaves, frows = _read_csv(fpath)
        for run, (_, row) in frows.items():
            prints[run] = [dict(zip(fleaves, row, strict=True)).get(leaf, "") for leaf in leaves]
    runs = []
    for run, (line, row) in ratio_rows.items():
        ratios = {leaf: _number(rpath, line, leaf, v) for leaf, v in zip(leaves, row, strict=True)}
        if any(v < 0 for v in ratios.values()):
            raise EvidenceError(f"{rpath}:{line}: a ratio is negative")
        if abs(sum(ratios.values()) - 1) > RATIO_SUM_TOLERANCE:
            raise EvidenceError(f"{rpath}:{line}: ratios sum to {sum(ratios.values()):.4f}, not 1 ± 0.01")
        mline, mrow = metric_rows[run]
        values = {m: _number(mpath, mline, m, v) for m, v in zip(metrics, mrow, strict=True)}
        fingerprints = {leaf: d for leaf, d in zip(leaves, prints.get(run, []), strict=False) if d}
        runs.append(Run(run, {k: v for k, v in ratios.items() if v > 0}, values, fingerprints))
    evidence = pooled(runs)
    return Evidence(evidence.runs, leaves, evidence.metrics, notes)
