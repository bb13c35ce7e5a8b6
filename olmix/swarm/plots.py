"""The fit's pictures: predicted against observed per metric, and proposed against prior weights.

matplotlib is the `plot` extra; without it the fit still writes fit.json and
proposal.yaml and says the plots were left out. PNG bytes are returned, and
written with the fit's other files (atomically, never over a differing file
without --force).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    out = io.BytesIO()
    fig.tight_layout()
    fig.savefig(out, format="png", metadata={"Software": None})  # no version stamp: the same bytes each run
    plt.close(fig)
    return out.getvalue()


MAX_PANELS = 12  # metrics drawn, 4 to a row: a picture of 1,000 panels helps nobody and costs minutes
MAX_BARS = 60  # leaves drawn in the proposal's bar chart


def predicted_vs_observed(series: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> bytes:
    """One panel per metric (the first MAX_PANELS given): observed (x) against the fit's prediction (y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = list(series.items())[:MAX_PANELS]
    columns = min(4, len(shown))
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4 * rows), dpi=100, squeeze=False)
    for ax in axes.flat[len(shown) :]:
        ax.set_visible(False)
    for ax, (metric, (observed, predicted)) in zip(axes.flat, shown, strict=False):
        ax.scatter(observed, predicted, s=12)
        low, high = min(*observed, *predicted), max(*observed, *predicted)
        ax.plot([low, high], [low, high], color="grey", linewidth=0.8)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("observed")
        ax.set_ylabel("predicted (in-sample)")
    return _png(fig)


def proposal_vs_prior(leaves: Sequence[str], proposal: Sequence[float], prior: Sequence[float]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(leaves) > MAX_BARS:  # the leaves that matter most to either
        keep = sorted(range(len(leaves)), key=lambda i: -max(proposal[i], prior[i]))[:MAX_BARS]
        keep.sort()
        leaves, proposal, prior = [leaves[i] for i in keep], [proposal[i] for i in keep], [prior[i] for i in keep]
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(leaves)), 4), dpi=100)
    at = range(len(leaves))
    ax.bar([i - 0.2 for i in at], prior, width=0.4, label="prior")
    ax.bar([i + 0.2 for i in at], proposal, width=0.4, label="proposal")
    ax.set_xticks(list(at), leaves, rotation=90, fontsize=7)
    ax.set_ylabel("weight")
    ax.legend()
    return _png(fig)
