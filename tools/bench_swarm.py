"""Sampling a swarm, and fitting and proposing from one, at the sizes upstream olmix was measured at.

Upstream on this 2-core machine: sampling 128 variants over 40 leaves takes
about 40 s and 580 MB; fitting 64 runs × 8 leaves × 3 metrics with the exact
proposer about 200 s and 630 MB, closing 99.998% of the gap to the true
constrained optimum. Goals: both at least 20× faster in a fraction of the
memory, with the same quality of proposal. Also reported: 1,000 variants over
120 leaves, and 512 runs × 120 leaves.

Memory is the peak of Python and numpy allocations (tracemalloc) during the
step, not the process's resident size. Quality: the evidence follows a known
log-linear law with noise; "gap closed" is how much of the true objective's
distance from the prior to the true constrained optimum the proposal covers.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, TypeVar

from olmix.leaves import Leaf, Node
from olmix.swarm.sampler import Settings, moved_counts, sample, strengths

T = TypeVar("T")


def measured(step: Callable[[], T]) -> tuple[T, float, float]:
    """The step's result, wall seconds, and peak traced MB (a second run: tracing slows Python down)."""
    start = time.perf_counter()
    out = step()
    wall = time.perf_counter() - start
    tracemalloc.start()
    try:
        step()
        return out, wall, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def tree(sources: int, topics: int, cap: float = 4.0) -> tuple[list[Leaf], dict[str, int]]:
    lvs, tokens = [], {}
    for s in range(sources):
        for t in range(topics):
            ancestry = (Node("source", f"s{s}", None, None), Node("topic", f"t{t}", None, None))
            leaf = Leaf(f"s{s}:t{t}", (f"/data/s{s}/t{t}/*.npy",), cap, ancestry)
            lvs.append(leaf)
            tokens[leaf.name] = 10_000_000 * (1 + (s * 7 + t * 3) % 11)
    return lvs, tokens


def settings(variants: int, minimum_weight: float = 0.0) -> Settings:
    return Settings(
        variants=variants,
        seed=42,
        sample_multiplier=10,
        source_strengths=(0.1, 5.0),
        topic_strengths=(0.1, 5.0),
        source_temperature=1.0,
        topic_temperature=1.0,
        minimum_weight=minimum_weight,
        minimum_source_weight=0.002,
        minimum_topic_weight=0.002,
        nonzero=(),
        fixed_sources={},
        manual_prior={},
        manual_topic_prior={},
    )


def bench_sampling(variants: int, sources: int, topics: int) -> None:
    lvs, tokens = tree(sources, topics)
    budget = 1_000_000_000
    swarm, wall, peak = measured(lambda: sample(lvs, tokens, budget, settings(variants)))
    print(f"sample {len(swarm):,} variants over {len(lvs)} leaves: {wall:.2f} s, peak {peak:.1f} MB")


def bench_binding(variants: int, sources: int, topics: int) -> None:
    """Caps that bind (the leaves hold 1.5 runs' worth at repetition 1) and minimums on every level."""
    from collections import Counter

    lvs, tokens = tree(sources, topics, cap=1.0)
    budget = int(sum(tokens.values()) / 1.5)
    counts: Counter[str] = Counter()
    swarm, wall, peak = measured(lambda: sample(lvs, tokens, budget, settings(variants, 0.001), counts=counts))
    draws = counts["draws"] // 2  # measured() runs the step twice
    grid = strengths(0.1, 5.0)
    asked = Counter(grid[i % len(grid)] for i in range(variants))
    kept = Counter(v.strength for v in swarm)
    off = max(abs(kept[g] - asked[g]) for g in grid)
    moved = moved_counts(swarm)
    print(
        f"sample {len(swarm):,} of {variants:,} variants over {len(lvs)} leaves, caps and minimums binding: "
        f"{wall:.2f} s, peak {peak:.1f} MB; {draws / len(swarm):.3f} draws per kept variant; strengths kept vs "
        f"asked: {len(kept)} of {len(grid)} values, largest difference {off} variant(s) "
        f"(lowest three strengths: {sum(kept[g] for g in grid[:3])} kept, {sum(asked[g] for g in grid[:3])} asked); "
        f"moved by: {', '.join(f'{why} {n}' for why, n in sorted(moved.items()))}"
    )


def bench_fit(runs: int, leaves: int, metrics: int, *, cv: bool) -> None:
    import numpy as np

    from olmix.swarm.fit import LogLinear, cross_validate, fit_log_linear
    from olmix.swarm.propose import propose_log_linear

    rng = np.random.default_rng(0)
    truth = [LogLinear(float(np.log(rng.uniform(1.5, 3))), rng.normal(0, 0.6, leaves)) for _ in range(metrics)]
    x = rng.dirichlet(np.full(leaves, 0.5), size=runs)
    y = np.column_stack([law.predict(x) + rng.normal(0, 0.002, runs) for law in truth])
    prior = rng.dirichlet(np.full(leaves, 5.0))
    caps = np.minimum(prior * 3.0, 1.0)
    weights = [1.0 / metrics] * metrics

    def fit_and_propose() -> Any:
        laws = [fit_log_linear(x, y[:, j]) for j in range(metrics)]
        return propose_log_linear(laws, weights, prior, caps)

    found, wall, peak = measured(fit_and_propose)
    best = propose_log_linear(truth, weights, prior, caps)

    def true_objective(w: Any) -> float:
        return float(sum(a * float(law.predict(w[None, :])[0]) for law, a in zip(truth, weights, strict=True)))

    closed = (true_objective(prior) - true_objective(found.weights)) / (
        true_objective(prior) - true_objective(best.weights)
    )
    print(
        f"fit + exact proposal, {runs} runs × {leaves} leaves × {metrics} metrics: {wall:.2f} s, peak {peak:.1f} MB; "
        f"closes {100 * closed:.3f}% of the gap to the true constrained optimum; optimality gap {found.gap:.1e}"
    )
    if cv:
        _, wall, _ = measured(lambda: [cross_validate(x, y[:, j]) for j in range(metrics)])
        print(f"  5-fold cross-validation of the same: {wall:.2f} s")


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as olmix fit runs (see olmix.commands.fit)
    bench_sampling(128, 8, 5)
    bench_sampling(1000, 12, 10)
    bench_binding(128, 5, 8)
    bench_binding(1000, 12, 10)
    print(f"  process peak RSS so far: {peak_rss_mb():.0f} MB")
    bench_fit(64, 8, 3, cv=True)
    bench_fit(512, 120, 3, cv=True)
    print(f"  process peak RSS so far (numpy and scipy loaded): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
