"""Hand-built records for tests: a valid metrics.json document (schema/metrics.schema.json)."""

from __future__ import annotations

from typing import Any


def metrics_doc(name: str, losses: dict[str, float], index: int = 0) -> dict[str, Any]:
    """A run's metrics with these held-out losses per source; `index` varies its counts and final loss."""
    return {
        "metrics_version": 1,
        "run": name,
        "model": "olmo3_1m",
        "device": "cpu",
        "requested_tokens": 1000 * (index + 1),
        "steps": 10 + index,
        "tokens_trained": 1000 * (index + 1),
        "final_train_loss": 7.0 + index,
        "heldout": {"sources": {s: {"loss": v, "tokens": 100, "bits_per_byte": None} for s, v in losses.items()}},
        "tokens_per_second": None,
    }
