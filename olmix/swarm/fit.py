"""Fit how each metric depends on the mixture, and say how well the fit predicts unseen runs.

The log-linear mixing law `y = exp(c) + exp(t · w)` (Data Mixing Laws, upstream
olmix) is fitted per metric under a Huber loss, so one diverged proxy does not
drag the law. Upstream restarts L-BFGS from 300 random points; here the
starts are informed instead: for a few floors exp(c) under the smallest
observation, log(y - exp(c)) is linear in w, so a least-squares solve gives t,
and L-BFGS polishes each start with the exact gradient. Quality is k-fold
cross-validated (out-of-fold R², Spearman, MAE) against predicting the
training folds' mean; a fit that does not beat the mean is not proposed from.
Replicates (runs of the same mixture) fall in one fold together, and their
spread is the noise floor: the variance no fit of the mixture can explain.

numpy and scipy come with the `fit` extra and are imported by the caller
(olmix.commands.fit turns their absence into a message naming the extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

HUBER_DELTA = 0.02  # upstream's
FLOORS = (0.0, 0.5, 0.8, 0.95)  # exp(c) as fractions of the smallest observation, one start each
FOLDS = 5
Array = NDArray[np.float64]


class Regressor(Protocol):
    def predict(self, x: Array) -> Array: ...


@dataclass(frozen=True)
class LogLinear:
    """y = exp(c) + exp(x · t)."""

    c: float
    t: Array

    def predict(self, x: Array) -> Array:
        out: Array = np.exp(self.c) + np.exp(x @ self.t)
        return out

    def as_dict(self, leaves: list[str]) -> dict[str, Any]:
        return {"c": float(self.c), "t": {leaf: float(v) for leaf, v in zip(leaves, self.t, strict=True)}}


def _huber(r: Array, delta: float) -> tuple[float, Array]:
    """Huber loss of residuals r and its derivative."""
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
    return float(loss.sum()), np.where(small, r, delta * np.sign(r))


def scale_of(y: Array) -> float:
    """A power of two near the metric's size when it lies outside [1e-6, 1e6] (else 1): fits run on y / scale,
    so a metric near 1e307 or 1e-300 neither overflows nor vanishes in the loss."""
    top = float(np.max(np.abs(y))) if len(y) else 0.0
    if top == 0 or 1e-6 <= top <= 1e6:
        return 1.0
    return float(2.0 ** round(np.log2(top)))


def fit_log_linear(x: Array, y: Array, delta: float = HUBER_DELTA) -> LogLinear:
    """The log-linear law for one metric: rows of x are mixtures, y the metric. A metric far from 1 is fitted
    scaled (exactly: a mixture sums to 1, so s · exp(x · t) = exp(x · (t + ln s)))."""
    scale = scale_of(y)
    if scale != 1.0:
        law = fit_log_linear(x, y / scale, min(delta / scale, 1e100))
        return LogLinear(law.c + float(np.log(scale)), law.t + float(np.log(scale)))
    from scipy.optimize import minimize

    n, d = x.shape

    def objective(theta: Array) -> tuple[float, Array]:
        c, t = theta[0], theta[1:]
        floor, part = np.exp(c), np.exp(np.clip(x @ t, -700, 700))
        loss, psi = _huber(y - floor - part, delta)
        grad = np.empty(d + 1)
        grad[0] = -float(psi.sum()) * floor
        grad[1:] = -(psi * part) @ x
        return loss / n, grad / n

    low = float(np.min(y))
    best: tuple[float, Array] | None = None
    for fraction in FLOORS:
        floor = fraction * low if low > 0 else 0.0
        rest = np.maximum(y - floor, 1e-12)
        t0, *_ = np.linalg.lstsq(x, np.log(rest), rcond=None)
        c0 = np.log(floor) if floor > 0 else np.log(max(abs(low), 1e-12)) - 20.0
        start = np.concatenate([[c0], t0])
        result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-12})
        if best is None or result.fun < best[0]:
            best = (float(result.fun), result.x)
    assert best is not None
    return LogLinear(float(best[1][0]), np.asarray(best[1][1:], dtype=np.float64))


def fit_trees(x: Array, y: Array) -> Regressor:
    """Gradient-boosted trees (the `fit-trees` extra), as RegMix uses them."""
    from sklearn.ensemble import GradientBoostingRegressor

    model = GradientBoostingRegressor(n_estimators=200, max_depth=3, learning_rate=0.05, random_state=0)
    model.fit(x, y)
    return model  # type: ignore[no-any-return]


REGRESSIONS = {"log-linear": fit_log_linear, "trees": fit_trees}


@dataclass(frozen=True)
class Quality:
    r2: float
    spearman: float
    mae: float
    mae_of_mean: float

    @property
    def beats_mean(self) -> bool:
        return self.mae < self.mae_of_mean and self.r2 > 0

    def as_dict(self) -> dict[str, float | bool]:
        return {
            "r2": self.r2,
            "spearman": self.spearman,
            "mae": self.mae,
            "mae_of_mean": self.mae_of_mean,
            "beats_mean": self.beats_mean,
        }


def folds(n: int, k: int = FOLDS, seed: int = 0, groups: NDArray[np.int64] | None = None) -> list[NDArray[np.int64]]:
    """k index sets covering 0..n-1, shuffled by a fixed seed; with `groups` (a label per row), rows of one label
    share a fold, so replicates of one mixture are never on both sides of a split."""
    if groups is None:
        order = np.random.default_rng(seed).permutation(n)
        return [order[i::k] for i in range(min(k, n))]
    labels = np.unique(groups)
    order = np.random.default_rng(seed).permutation(len(labels))
    parts = [labels[order[i :: min(k, len(labels))]] for i in range(min(k, len(labels)))]
    return [np.flatnonzero(np.isin(groups, part)) for part in parts]


def mixture_groups(x: Array) -> NDArray[np.int64]:
    """A label per row of x: rows with the same mixture (replicates) share one."""
    _, labels = np.unique(np.round(x, 9), axis=0, return_inverse=True)
    return np.asarray(labels, dtype=np.int64).reshape(-1)


@dataclass(frozen=True)
class Noise:
    """The replicate variance of a metric and the R² it leaves a fit at most."""

    variance: float
    replicated_mixtures: int
    r2_ceiling: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "variance": self.variance,
            "replicated_mixtures": self.replicated_mixtures,
            "r2_ceiling": self.r2_ceiling,
        }


def noise_floor(y: Array, groups: NDArray[np.int64]) -> Noise | None:
    """The pooled within-mixture variance of y (None when no mixture has two runs), and 1 − it / y's variance."""
    labels, counts = np.unique(groups, return_counts=True)
    replicated = labels[counts > 1]
    if len(replicated) == 0:
        return None
    squares, freedom = 0.0, 0
    for label in replicated:
        values = y[groups == label]
        squares += float(((values - values.mean()) ** 2).sum())
        freedom += len(values) - 1
    variance = squares / freedom
    total = float(y.var(ddof=1)) if len(y) > 1 else 0.0
    return Noise(variance, len(replicated), 1 - variance / total if total > 0 else None)


def cross_validate(
    x: Array, y: Array, regression: str = "log-linear", k: int = FOLDS, groups: NDArray[np.int64] | None = None
) -> Quality:
    """Out-of-fold quality of the regression, beside predicting the training folds' mean; `groups` as in folds."""
    from scipy.stats import spearmanr

    scale = scale_of(y)
    if scale != 1.0:
        q = cross_validate(x, y / scale, regression, k)
        return Quality(q.r2, q.spearman, q.mae * scale, q.mae_of_mean * scale)
    fit = REGRESSIONS[regression]
    predicted, mean = np.empty_like(y), np.empty_like(y)
    for test in folds(len(y), k, groups=groups):
        train = np.setdiff1d(np.arange(len(y)), test)
        predicted[test] = fit(x[train], y[train]).predict(x[test])
        mean[test] = y[train].mean()
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(((y - predicted) ** 2).sum()) / total if total > 0 else 0.0
    rho = float(spearmanr(y, predicted).statistic) if np.ptp(y) > 0 and np.ptp(predicted) > 0 else 0.0
    return Quality(r2, rho, float(np.abs(y - predicted).mean()), float(np.abs(y - mean).mean()))
