"""A run's token budget and what each leaf must supply.

Requested tokens = 20 × parameters(proxy_model_id) × chinchilla_multiple,
with the nominal parameter counts of olmix.catalogue (which the mixture
schema's ModelId is held to). A leaf needs ceil(requested × ratio) tokens,
and its available tokens × its repetition cap must cover that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from olmix.catalogue import TOKENS_PER_PARAMETER, parameters
from olmix.errors import OlmixError

MAX_TOKENS = 2**63 - 1  # a trainer counts tokens in a signed 64-bit integer


class BudgetError(OlmixError):
    """A token budget no trainer can count."""


def requested_tokens(model_id: str, chinchilla_multiple: float) -> int:
    per_multiple = TOKENS_PER_PARAMETER * parameters(model_id)
    tokens = per_multiple * chinchilla_multiple
    if not tokens <= MAX_TOKENS:  # also catches an infinite product
        raise BudgetError(
            f"chinchilla_multiple {chinchilla_multiple:g} asks {model_id} for {tokens:.3g} tokens; "
            f"a trainer counts at most {MAX_TOKENS:.3g} (2^63 - 1), so at most {MAX_TOKENS / per_multiple:.4g} "
            "for this model"
        )
    if round(tokens) < 1:
        raise BudgetError(
            f"chinchilla_multiple {chinchilla_multiple:g} asks {model_id} for less than one token; "
            f"at least {1 / per_multiple:.3g} for this model"
        )
    return round(tokens)


def tokens_needed(requested: int, ratio: float) -> int:
    # ceil, tolerant of float noise in the ratio product (0.1 × 140e6 must be 14e6, not 14e6 + 1)
    return max(0, math.ceil(requested * ratio - 1e-6))


def sufficient_cap(have: int, need: int) -> float | None:
    """The smallest cap (rounded up to 2 decimals) that covers `need`; None when nothing does."""
    if have <= 0:
        return None
    return max(1.0, math.ceil(need / have * 100 - 1e-9) / 100)


@dataclass(frozen=True)
class Shortfall:
    leaf: str
    have: int
    need: int
    cap: float
    suffices: float | None

    def __str__(self) -> str:
        fix = f"a cap of {self.suffices} would suffice" if self.suffices else "it holds no tokens, no cap suffices"
        return (
            f"leaf '{self.leaf}' is short: has {self.have:,} tokens, needs {self.need:,}; "
            f"cap {self.cap} allows {math.floor(self.have * self.cap):,}; {fix}"
        )


def shortfalls(rows: Sequence[tuple[str, int, int, float]]) -> list[Shortfall]:
    """(leaf, have, need, cap) rows whose have × cap does not cover need."""
    return [Shortfall(n, h, d, c, sufficient_cap(h, d)) for n, h, d, c in rows if h * c < d]
