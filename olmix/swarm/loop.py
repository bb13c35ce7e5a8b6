"""Fit and propose, from evidence to files: fit.json, proposal.yaml and the plots.

The target config is the mixture the proposal is written into (its sources,
paths and settings stay; every node gets the proposed weight), and it sets the
prior (its leaves' tokens), the target tokens (`target_tokens`, else
`target_model_id` × `target_chinchilla_multiple`) and the repetition factor
the caps are computed with. Nothing is cached between fits: each `olmix fit`
reads its evidence afresh.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from olmix.errors import ConfigError, ExtraMissing, OlmixError
from olmix.leaves import SEPARATOR, leaves
from olmix.swarm import fit as fitting
from olmix.swarm import fitrecord
from olmix.swarm.evidence import Evidence
from olmix.swarm.fitrecord import FIT_FILE
from olmix.swarm.propose import propose_log_linear, propose_search
from olmix.swarm.sampler import rounded

MIN_RUNS = 4
MIN_R2 = 0.5  # cross-validated R² under which a fit is not proposed from without --force
MIN_SPREAD = 0.01  # a leaf whose weight varies less than this across the runs has no measurable effect
DEFAULT_REPETITION_FACTOR = 5.0  # the schema's default for repetition_factor


class FitError(OlmixError):
    """Evidence too thin, an objective that names no metric, or a fit not good enough to propose from."""


@dataclass(frozen=True)
class Target:
    path: Path
    data: dict[str, Any]
    config: Any
    tokens: dict[str, int]  # leaf -> tokens available
    target_tokens: int | None
    repetition_factor: float


def load_target(path: str | Path, repetition_factor: float | None, path_map: Any = ()) -> Target:
    from olmix.loading.config import load_document
    from olmix.planning.budget import requested_tokens
    from olmix.planning.listing import resolve_leaves

    doc, config = load_document(Path(path), "mixture")
    resolved, _ = resolve_leaves(leaves(config), config.dtype, path_map)
    if config.target_tokens is not None:
        wanted: int | None = int(config.target_tokens)
    elif config.target_model_id is not None:
        wanted = requested_tokens(config.target_model_id, config.target_chinchilla_multiple or 1.0)
    else:
        wanted = None
    factor = float(config.repetition_factor) if repetition_factor is None else repetition_factor
    return Target(Path(path), doc.data, config, {r.name: r.tokens for r in resolved}, wanted, factor)


def parse_objective(entries: Sequence[str], metrics: Sequence[str]) -> dict[str, float]:
    """METRIC=WEIGHT entries as weights summing to 1 (the objective is a weighted mean of the metrics, so any
    finite scale means the same); without any, every metric weighs the same."""
    from olmix.hints import nearest

    if not entries:
        return {m: 1.0 / len(metrics) for m in metrics}
    out = {}
    for entry in entries:
        name, sep, weight = entry.rpartition("=")
        if not sep:
            raise FitError(f"--objective {entry!r}: write METRIC=WEIGHT, e.g. {entry}=1")
        if name not in metrics:
            near = nearest(name, metrics)
            hint = f" (did you mean '{near}'?)" if near else f" (metrics: {', '.join(metrics)})"
            task, _, kind = name.rpartition(":")
            if kind in ("acc", "accuracy") and f"{task}:error" in metrics:
                hint = f" (the fit minimises: target accuracy as its error rate, '{task}:error')"
            raise FitError(f"--objective {entry!r}: no metric named {name or entry!r}{hint}")
        try:
            value = float(weight)
        except ValueError:
            raise FitError(f"--objective {entry!r}: {weight!r} is not a number") from None
        if not np.isfinite(value) or value < 0:
            raise FitError(f"--objective {entry!r}: the weight must be a finite number ≥ 0")
        out[name] = value
    top = max(out.values())
    if top <= 0:
        raise FitError("--objective: every weight is 0; the objective would be the same for every mixture")
    scaled = {m: v / top for m, v in out.items()}  # by the largest first: 1e308 + 1e308 would overflow
    total = sum(scaled.values())
    return {m: v / total for m, v in scaled.items()}


def node_shares(
    data: dict[str, Any], ratios: Mapping[str, float], caps: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Each node's share within its parent, from leaf ratios (a node with nothing under it splits evenly),
    rounded as the config is written; with `caps` (leaf -> largest ratio), rounded so no leaf's ratio, as the
    planner multiplies it out, goes over its cap."""
    from olmix.swarm.sampler import ROUNDING, bounded_rounding

    totals: dict[str, float] = {}
    room: dict[str, float] = {}  # node -> the caps under it, less a unit per group below for their rounding
    groups: list[tuple[str, list[str]]] = []

    def collect(items: list[dict[str, Any]], prefix: str) -> None:
        names = [f"{prefix}{item['name']}" for item in items]
        groups.append((prefix.rstrip(SEPARATOR), names))
        for item, name in zip(items, names, strict=True):
            below = [item[k] for k in ("topics", "quality") if k in item]
            if below:
                collect(below[0], f"{name}{SEPARATOR}")
                children = [f"{name}{SEPARATOR}{child['name']}" for child in below[0]]
                totals[name] = sum(totals[c] for c in children)
                room[name] = sum(room[c] for c in children) - 3 * len(children) / ROUNDING  # their slack, and 3 units
            else:
                totals[name] = float(ratios.get(name, 0.0))
                room[name] = math.inf if caps is None else float(caps.get(name, math.inf))

    collect(data["sources"], "")
    shares: dict[str, float] = {}
    placed: dict[str, float] = {"": 1.0}
    for parent, names in groups:
        whole = sum(totals[n] for n in names)
        parts = [totals[n] / whole for n in names] if whole > 0 else [1.0 / len(names)] * len(names)
        above = placed[parent]
        high = [min(1.0, max(room[n], 0.0) / above) if above > 0 else 1.0 for n in names]
        picked = bounded_rounding(parts, [0.0] * len(names), high) if caps is not None else None
        for name, share in zip(names, picked or rounded(parts), strict=True):
            shares[name] = share
            placed[name] = above * share
    return shares


def proposal_config(target: Target, ratios: Mapping[str, float], caps: Mapping[str, float] | None = None) -> bytes:
    """The target config with the proposal's weights on every node, validated. A leaf the proposal repeats more
    than its own max_repetition_factor allows gets the fit's repetition factor, so the proposal plans at the
    target scale as it was proposed."""
    from olmix import yamlwrite
    from olmix.loading import config as configs
    from olmix.loading import yamlsource
    from olmix.swarm.configs import with_weights

    data = with_weights(target.data, node_shares(target.data, ratios, caps))
    raised = []
    if target.target_tokens:
        allowed = {leaf.name: leaf.max_repetition_factor for leaf in leaves(target.config)}
        if not target.config.allow_repetition:
            allowed = dict.fromkeys(allowed, 1.0)
        for name, ratio in ratios.items():
            have = target.tokens.get(name, 0)
            if have > 0 and ratio * target.target_tokens > have * allowed.get(name, 1.0):
                raised.append(name)
        _raise_caps(data, set(raised), target.repetition_factor)
        if raised and not target.config.allow_repetition:
            data["allow_repetition"] = True
    data["name"] = f"{target.config.name}-proposal"
    data["variants"] = 1
    header = f"# Proposed by olmix fit from {target.path.name}.\n"
    if raised:
        header += (
            f"# max_repetition_factor {target.repetition_factor:g} (the fit's repetition factor) set on: "
            f"{', '.join(raised)}.\n"
        )
    text = (header + yamlwrite.dump(data)).encode("utf-8")
    _, problems = configs.check(yamlsource.parse(text, "proposal.yaml"), "mixture")
    if problems:
        raise ConfigError(problems)
    return text


def _raise_caps(data: dict[str, Any], names: set[str], factor: float) -> None:
    def walk(items: list[dict[str, Any]], prefix: str) -> None:
        for item in items:
            name = f"{prefix}{item['name']}"
            if name in names:
                item["max_repetition_factor"] = factor
            for key in ("topics", "quality"):
                if key in item:
                    walk(item[key], f"{name}{SEPARATOR}")

    walk(data["sources"], "")


def run(
    evidence: Evidence,
    target: Target | None,
    *,
    regression: str = "log-linear",
    objective_entries: Sequence[str] = (),
    kl_reg: float = 0.0,
    tokens_of: Mapping[str, int] | None = None,
    target_tokens: int | None = None,
    repetition_factor: float | None = None,
    force: bool = False,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Fit every metric, check its quality, propose: fit.json's data and the files to write.

    Without a target config, the leaves' tokens come from `tokens_of` (a tokens.csv) or the runs' plans, and
    the caps need `target_tokens` as well; without them the proposal is uncapped, and fit.json says so.
    Below the evidence floor (fewer runs than the law has parameters, a cross-validated R² under
    MIN_R2, a leaf whose weight hardly varies) nothing is proposed unless `force`."""
    if len(evidence.runs) < MIN_RUNS:
        raise FitError(f"{len(evidence.runs)} run(s) of evidence; a fit needs at least {MIN_RUNS}")
    if not evidence.metrics:
        raise FitError("no metric is present in every run")
    objective = parse_objective(objective_entries, evidence.metrics)
    x_rows, y_rows = evidence.matrix()
    x, y = np.array(x_rows, dtype=np.float64), np.array(y_rows, dtype=np.float64)
    names = evidence.leaves
    if target is not None:
        planned = [leaf.name for leaf in leaves(target.config)]
        extra, unseen = sorted(set(names) - set(planned)), [n for n in planned if n not in names]
        if extra or unseen:
            raise FitError(
                f"the evidence and {target.path} have different leaves (only in the evidence: "
                f"{', '.join(extra) or 'none'}; only in the config: {', '.join(unseen) or 'none'})"
            )
        tokens = np.array([target.tokens[n] for n in names], dtype=np.float64)
        target_tokens, factor = target.target_tokens, target.repetition_factor
    else:
        if tokens_of is not None:
            missing = [n for n in names if n not in tokens_of]
            if missing:
                raise FitError(f"the tokens file has no row for leaf(s) {', '.join(missing[:5])}")
            tokens = np.array([tokens_of[n] for n in names], dtype=np.float64)
        else:
            tokens = np.array([max(r.tokens.get(n, 0) for r in evidence.runs) for n in names], dtype=np.float64)
        factor = DEFAULT_REPETITION_FACTOR if repetition_factor is None else repetition_factor
    prior = tokens / tokens.sum() if tokens.sum() > 0 else np.full(len(names), 1 / len(names))
    uncapped = None
    if tokens.sum() <= 0:
        uncapped = "no token counts (give --target-config, or --tokens with --target-tokens): the prior is uniform"
    elif not target_tokens:
        uncapped = "no target tokens (the target config's target_tokens or target_model_id, or --target-tokens)"
    if uncapped is None:
        assert target_tokens
        # whole tokens, as the planner counts them: ceil(target × ratio) ≤ tokens × factor
        usable = np.floor(tokens * factor + 1e-9)
        caps = np.minimum(usable / target_tokens * (1 - 1e-9), 1.0)
    else:
        caps = np.ones(len(names))

    fit_one = fitting.REGRESSIONS[regression]
    groups = fitting.mixture_groups(x)  # replicates of a mixture: one fold, and the noise floor
    if len(np.unique(groups)) < MIN_RUNS:
        raise FitError(f"{len(np.unique(groups))} distinct mixture(s) of evidence; a fit needs at least {MIN_RUNS}")
    models, report = [], {}
    for j, metric in enumerate(evidence.metrics):
        if metric not in objective:
            continue
        model = fit_one(x, y[:, j])
        quality = fitting.cross_validate(x, y[:, j], regression, groups=groups)
        models.append(model)
        params = model.as_dict(names) if isinstance(model, fitting.LogLinear) else {}
        report[metric] = {"parameters": params, "cv": quality.as_dict()}
        if (noise := fitting.noise_floor(y[:, j], groups)) is not None:
            report[metric]["noise"] = noise.as_dict()
    weak = [m for m, r in report.items() if not r["cv"]["beats_mean"] and objective[m] > 0]
    fit_data: dict[str, Any] = {
        "fit_version": 1,
        "regression": regression,
        "runs": [r.name for r in evidence.runs],
        "leaves": names,
        "objective": objective,
        "kl_reg": kl_reg,
        "repetition_factor": None if uncapped else factor,
        "target_tokens": None if uncapped else target_tokens,
        "metrics": report,
        "prior": dict(zip(names, prior.tolist(), strict=True)),
        "caps": dict(zip(names, caps.tolist(), strict=True)),
        "proposal": None,
    }
    if uncapped:
        fit_data["uncapped"] = uncapped
    thin = _thin(x, report, objective, names, regression)
    if thin:
        fit_data["warnings"] = thin
    if weak:
        fit_data["refused"] = f"the fit does not beat predicting the mean for: {', '.join(weak)}"
        return fit_data, {FIT_FILE: _json(fit_data)}
    if thin and not force:
        fit_data["refused"] = "the evidence is below the floor (see warnings); --force proposes anyway"
        return fit_data, {FIT_FILE: _json(fit_data)}

    weights = [objective[m] for m in report]
    if regression == "log-linear":
        found = propose_log_linear(models, weights, prior, caps, kl_reg)  # type: ignore[arg-type]
    else:
        found = propose_search(models, weights, prior, caps)

    def predicted(w: Any) -> float:
        return float(sum(a * float(m.predict(np.asarray(w)[None, :])[0]) for m, a in zip(models, weights, strict=True)))

    observed = y[:, [evidence.metrics.index(m) for m in report]] @ np.array(weights)
    best = int(np.argmin(observed))
    proposal = dict(zip(names, found.weights.tolist(), strict=True))
    fit_data["proposal"] = {
        "weights": proposal,
        "predicted_objective": found.objective,
        "optimality_gap": found.gap,
    }
    fit_data["prior_predicted_objective"] = predicted(prior)
    fit_data["best_observed"] = {
        "run": evidence.runs[best].name,
        "observed_objective": float(observed[best]),
        "predicted_objective": predicted(x[best]),
    }
    files: dict[str, bytes] = {}
    from olmix.swarm import plots

    if plots.available():
        series = {}
        ranked = sorted(zip(report, models, strict=True), key=lambda mm: -objective[mm[0]])[: plots.MAX_PANELS]
        if len(report) > plots.MAX_PANELS or len(names) > plots.MAX_BARS:
            fit_data["plots"] = (
                f"predicted_vs_observed.png shows {len(ranked)} of {len(report)} metrics (the largest objective "
                f"weights); proposal_vs_prior.png at most {plots.MAX_BARS} of {len(names)} leaves (the largest)"
            )
        for m, model in ranked:
            observed = y[:, evidence.metrics.index(m)]
            series[m] = (observed.tolist(), model.predict(x).tolist())
        files["predicted_vs_observed.png"] = plots.predicted_vs_observed(series)
        files["proposal_vs_prior.png"] = plots.proposal_vs_prior(names, found.weights.tolist(), prior.tolist())
    else:
        fit_data["plots"] = f"left out: {ExtraMissing('matplotlib is missing', 'plot')}"
    files[FIT_FILE] = _json(fit_data)
    if target is not None:
        files["proposal.yaml"] = proposal_config(target, proposal, dict(zip(names, caps.tolist(), strict=True)))
    return fit_data, files


def _thin(
    x: Any, report: Mapping[str, Any], objective: Mapping[str, float], names: list[str], regression: str
) -> list[str]:
    """Why the evidence is too thin to propose from, one line each; empty when it is not."""
    out = []
    parameters = len(names) + 1  # the law's exp(c) and one slope per leaf
    if regression == "log-linear" and len(x) < parameters:
        out.append(f"{len(x)} runs for a law of {parameters} parameters per metric: it can fit any answer")
    low = [f"{m} ({r['cv']['r2']:.2f})" for m, r in report.items() if objective[m] > 0 and r["cv"]["r2"] < MIN_R2]
    if low:
        out.append(f"cross-validated R² under {MIN_R2} for: {', '.join(low)}")
    flat = [n for n, spread in zip(names, np.ptp(x, axis=0).tolist(), strict=True) if spread < MIN_SPREAD]
    if flat:
        out.append(
            f"the weight of {', '.join(flat[:8])}{' …' if len(flat) > 8 else ''} varies by less than {MIN_SPREAD} "
            "across the runs: the fit cannot tell what it does"
        )
    return out


def load_tokens(path: str | Path) -> dict[str, int]:
    """tokens.csv: a `leaf,tokens` header, then one row per leaf (its full name, its token count)."""
    from olmix import records, render

    file = Path(path)
    try:  # read with a CSV's size cap, as every CSV olmix reads
        rows = render.read_csv(records.read_bounded(file, "CSV").decode("utf-8-sig"))
    except ConfigError as exc:
        raise FitError(str(exc.problems[0])) from None
    except UnicodeDecodeError as exc:
        raise FitError(f"{file}: cannot read: {exc}") from None
    if not rows or [c.strip() for c in rows[0]] != ["leaf", "tokens"]:
        raise FitError(f"{file}:1: the header must be 'leaf,tokens'")
    out: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or not row[1].strip().isdigit():
            raise FitError(f"{file}:{line}: expected a leaf name and a whole number of tokens")
        if row[0] in out:
            raise FitError(f"{file}:{line}: leaf {row[0]!r} appears twice")
        out[row[0]] = int(row[1])
    if not out:
        raise FitError(f"{file}: no leaves, only a header")
    return out


def _json(data: Any) -> bytes:
    """fit.json's bytes, checked against its schema first: a record others read is spec (a mismatch is a bug here,
    said as what broke rather than a record nobody can trust)."""
    kind = fitrecord.kind()
    raw = kind.to_bytes(data, FIT_FILE)
    kind.parse(raw, FIT_FILE)
    return raw
