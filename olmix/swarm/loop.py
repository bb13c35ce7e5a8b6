"""Fit and propose, from evidence to files: fit.json, proposal.yaml and the plots.

The target config is the mixture the proposal is written into (its sources,
paths and settings stay; every node gets the proposed weight), and it sets the
prior (its leaves' tokens), the target tokens (`target_tokens`, else
`target_model_id` × `target_chinchilla_multiple`) and the repetition factor
the caps are computed with. Nothing is cached between fits: each `olmix fit`
reads its evidence afresh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from olmix.errors import ConfigError, ExtraMissing, OlmixError
from olmix.leaves import SEPARATOR, leaves
from olmix.render import to_json
from olmix.swarm import fit as fitting
from olmix.swarm.evidence import Evidence
from olmix.swarm.propose import propose_log_linear, propose_search
from olmix.swarm.sampler import rounded

MIN_RUNS = 4


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
    """METRIC=WEIGHT entries; without any, every metric weighs the same."""
    from olmix.errors import suggest

    if not entries:
        return {m: 1.0 / len(metrics) for m in metrics}
    out = {}
    for entry in entries:
        name, sep, weight = entry.rpartition("=")
        if not sep or name not in metrics:
            near = suggest(name or entry, metrics)
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
    return out


def node_shares(data: dict[str, Any], ratios: Mapping[str, float]) -> dict[str, float]:
    """Each node's share within its parent, from leaf ratios (a node with nothing under it splits evenly)."""
    shares: dict[str, float] = {}

    def walk(items: list[dict[str, Any]], prefix: str) -> float:
        names = [f"{prefix}{item['name']}" for item in items]
        totals = []
        for item, name in zip(items, names, strict=True):
            below = [item[k] for k in ("topics", "quality") if k in item]
            totals.append(walk(below[0], f"{name}{SEPARATOR}") if below else float(ratios.get(name, 0.0)))
        total = sum(totals)
        parts = [t / total for t in totals] if total > 0 else [1.0 / len(items)] * len(items)
        shares.update(zip(names, rounded(parts), strict=True))
        return total

    walk(data["sources"], "")
    return shares


def proposal_config(target: Target, ratios: Mapping[str, float]) -> bytes:
    """The target config with the proposal's weights on every node, validated."""
    from olmix import yamlwrite
    from olmix.loading import config as configs
    from olmix.loading import yamlsource
    from olmix.swarm.configs import with_weights

    data = with_weights(target.data, node_shares(target.data, ratios))
    data["name"] = f"{target.config.name}-proposal"
    data["variants"] = 1
    text = (f"# Proposed by olmix fit from {target.path.name}.\n" + yamlwrite.dump(data)).encode("utf-8")
    _, problems = configs.check(yamlsource.parse(text, "proposal.yaml"), "mixture")
    if problems:
        raise ConfigError(problems)
    return text


def run(
    evidence: Evidence,
    target: Target | None,
    *,
    regression: str = "log-linear",
    objective_entries: Sequence[str] = (),
    kl_reg: float = 0.0,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Fit every metric, check its quality, propose: fit.json's data and the files to write."""
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
    else:
        tokens = np.array([max(r.tokens.get(n, 0) for r in evidence.runs) for n in names], dtype=np.float64)
    prior = tokens / tokens.sum() if tokens.sum() > 0 else np.full(len(names), 1 / len(names))
    if target is not None and target.target_tokens:
        caps = np.minimum(tokens * target.repetition_factor / target.target_tokens, 1.0)
    else:
        caps = np.ones(len(names))

    fit_one = fitting.REGRESSIONS[regression]
    models, report = [], {}
    for j, metric in enumerate(evidence.metrics):
        if metric not in objective:
            continue
        model = fit_one(x, y[:, j])
        quality = fitting.cross_validate(x, y[:, j], regression)
        models.append(model)
        params = model.as_dict(names) if isinstance(model, fitting.LogLinear) else {}
        report[metric] = {"parameters": params, "cv": quality.as_dict()}
    weak = [m for m, r in report.items() if not r["cv"]["beats_mean"] and objective[m] > 0]
    fit_data: dict[str, Any] = {
        "fit_version": 1,
        "regression": regression,
        "runs": [r.name for r in evidence.runs],
        "leaves": names,
        "objective": objective,
        "kl_reg": kl_reg,
        "repetition_factor": target.repetition_factor if target else None,
        "target_tokens": target.target_tokens if target else None,
        "metrics": report,
        "prior": dict(zip(names, prior.tolist(), strict=True)),
        "caps": dict(zip(names, caps.tolist(), strict=True)),
        "proposal": None,
    }
    if weak:
        fit_data["refused"] = f"the fit does not beat predicting the mean for: {', '.join(weak)}"
        return fit_data, {"fit.json": _json(fit_data)}

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
        for m, model in zip(report, models, strict=True):
            observed = y[:, evidence.metrics.index(m)]
            series[m] = (observed.tolist(), model.predict(x).tolist())
        files["predicted_vs_observed.png"] = plots.predicted_vs_observed(series)
        files["proposal_vs_prior.png"] = plots.proposal_vs_prior(names, found.weights.tolist(), prior.tolist())
    else:
        fit_data["plots"] = f"left out: {ExtraMissing('matplotlib is missing', 'plot')}"
    files["fit.json"] = _json(fit_data)
    if target is not None:
        files["proposal.yaml"] = proposal_config(target, proposal)
    return fit_data, files


def _json(data: Any) -> bytes:
    """fit.json's bytes, checked against schema/fit.schema.json first: a record others read is spec."""
    from olmix import schemas

    errors = sorted(schemas.validator("fit").iter_errors(data), key=str)
    if errors:  # a bug here, not the user's: say what broke rather than write a record nobody can trust
        raise FitError(f"fit.json would not match its schema: {errors[0].message}")
    return (to_json(data) + "\n").encode("utf-8")
