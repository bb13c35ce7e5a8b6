"""Propose the mixture to train at scale: the minimum of the fitted objective, exactly, with its gap.

Minimise  Σ_k a_k · ŷ_k(w)  +  kl_reg · KL(w ‖ prior)  over the simplex, with
each leaf's weight capped at what its tokens allow in the target run
(tokens × repetition factor / target tokens). For the log-linear law with
non-negative objective weights every term is convex, so a local solver
finds the global minimum; the Frank–Wolfe gap (the largest decrease a
feasible direction promises to first order) bounds how far the answer is
from it, and is reported. Other regressors are searched over the prior's
Dirichlet samples instead, and their gap is unknown (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from olmix.errors import OlmixError
from olmix.swarm.fit import Array, LogLinear, Regressor

FLOOR = 1e-12  # smallest weight when the KL term is on (its gradient is -inf at 0)


class ProposalError(OlmixError):
    """No mixture meets the caps, or the objective is not one the exact proposer can solve."""


@dataclass(frozen=True)
class Proposal:
    weights: Array
    objective: float  # the fitted objective (without the KL term) at the proposal
    gap: float | None  # upper bound on (regularised objective at the proposal) - (its minimum)


def lmo(gradient: Array, caps: Array) -> Array:
    """The vertex of {0 ≤ s ≤ caps, Σs = 1} that minimises gradient · s: fill the cheapest leaves first."""
    out = np.zeros_like(gradient)
    left = 1.0
    for i in np.argsort(gradient, kind="stable"):
        out[i] = min(caps[i], left)
        left -= out[i]
        if left <= 0:
            break
    return out


def onto_caps(w: Array, caps: Array) -> Array:
    """w moved onto {0 ≤ x ≤ caps, Σx = 1}: clip, then scale the leaves under their caps (never above them) until
    the sum is 1. Dividing by the sum instead pushes a leaf at its cap one float step over it."""
    x = np.clip(np.asarray(w, dtype=np.float64), 0.0, caps)
    for _ in range(len(x) + 1):
        room = x < caps
        rest = 1.0 - float(x.sum())
        if abs(rest) <= 1e-15 or not room.any():
            break
        free = float(x[room].sum())
        if free > 0:
            x = np.where(room, np.minimum(x * (1 + rest / free), caps), x)
        else:
            x = np.where(room, np.minimum(rest / int(room.sum()), caps), x)
    return x


def feasible_caps(caps: Array) -> None:
    if float(caps.sum()) < 1 - 1e-12:
        raise ProposalError(
            f"the leaves' caps sum to {float(caps.sum()):.4f} < 1: the target run needs more tokens than the data "
            "holds at this repetition factor (raise --repetition-factor or lower the target tokens)"
        )


def objective(laws: Sequence[LogLinear], weights: Sequence[float], x: Array) -> float:
    return float(sum(a * float(law.predict(x[None, :])[0]) for law, a in zip(laws, weights, strict=True)))


def propose_log_linear(
    laws: Sequence[LogLinear], objective_weights: Sequence[float], prior: Array, caps: Array, kl_reg: float = 0.0
) -> Proposal:
    """The exact minimiser for log-linear laws; ProposalError when no mixture meets the caps."""
    from scipy.optimize import minimize

    if any(a < 0 for a in objective_weights) or kl_reg < 0:
        raise ProposalError("objective weights and kl_reg must be ≥ 0 for the exact (convex) proposer")
    caps = np.minimum(caps, 1.0)
    if kl_reg > 0:
        caps = np.where(prior > 0, caps, 0.0)  # KL(w ‖ prior) is infinite where the prior is 0
    feasible_caps(caps)
    slopes = np.array([law.t for law in laws])
    # divided by e^top, the largest any term can reach on the simplex: laws of metrics near 1e307 neither
    # overflow nor lose their gradient, and the minimiser is the same (the KL weight is divided alike)
    top = float(np.max(slopes)) if slopes.size else 0.0
    top = top if top > 100 else 0.0  # laws of ordinary metrics are solved as they are
    scale = np.asarray(objective_weights, dtype=np.float64)
    kl_reg = kl_reg * float(np.exp(-top)) if kl_reg > 0 else 0.0
    safe_prior = np.where(prior > 0, prior, 1.0)

    def value(w: Array) -> tuple[float, Array]:
        part = scale * np.exp(slopes @ w - top)
        f, g = float(part.sum()), slopes.T @ part
        if kl_reg > 0:
            live = np.maximum(w, FLOOR)
            f += kl_reg * float(np.sum(np.where(caps > 0, live * np.log(live / safe_prior), 0.0)))
            g = g + kl_reg * np.where(caps > 0, np.log(live / safe_prior) + 1, 0.0)
        return f, g

    low = np.where(caps > 0, FLOOR if kl_reg > 0 else 0.0, 0.0)
    start = np.minimum(prior if float(prior.sum()) > 0 else np.full_like(caps, 1 / len(caps)), caps)
    start = lmo(-start, caps) if float(start.sum()) < 1 else start / start.sum()
    best = None
    for x0 in (np.clip(start, low, caps), lmo(value(start)[1], caps)):
        result = minimize(
            value,
            np.clip(x0, low, caps),
            jac=True,
            method="SLSQP",
            bounds=list(zip(low, caps, strict=True)),
            constraints=[{"type": "eq", "fun": lambda w: float(w.sum()) - 1, "jac": lambda w: np.ones_like(w)}],
            options={"maxiter": 1000, "ftol": 1e-16},
        )
        w = onto_caps(result.x, caps)
        f, g = value(w)
        if best is None or f < best[0]:
            best = (f, w, float(g @ (w - lmo(g, caps))))
    assert best is not None
    _, w, gap = best
    return Proposal(w, objective(laws, objective_weights, w), max(gap, 0.0) * float(np.exp(top)))


def propose_search(
    models: Sequence[Regressor], objective_weights: Sequence[float], prior: Array, caps: Array, samples: int = 20000
) -> Proposal:
    """For regressors without a convex form: the best of Dirichlet samples around the prior that meet the caps."""
    feasible_caps(caps)
    rng = np.random.default_rng(0)
    alpha = np.maximum(prior if float(prior.sum()) > 0 else np.ones_like(caps), 1e-3) * len(caps)
    x = rng.dirichlet(alpha, size=samples)
    x = x[(x <= caps + 1e-12).all(axis=1)]
    if len(x) == 0:
        raise ProposalError("no sampled mixture meets the caps; the search proposer needs looser caps")
    scores = sum(a * m.predict(x) for m, a in zip(models, objective_weights, strict=True))
    best = x[int(np.argmin(scores))]
    return Proposal(best, float(np.min(scores)), None)
