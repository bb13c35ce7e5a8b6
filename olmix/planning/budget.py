"""A run's token budget and what each leaf must supply.

Requested tokens = 20 × parameters(proxy_model_id) × chinchilla_multiple,
with the nominal parameter counts of olmix.catalogue (which the mixture
schema's ModelId is held to). A leaf needs ceil(requested × ratio) tokens,
and its available tokens × its repetition cap must cover that.

When leaves are short, `Shortage` and `shortage_summary` say by how much and
what would fit (the largest chinchilla_multiple, with the run's proxy and
with the smallest one) as data; the CLI renders it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from olmix.catalogue import TOKENS_PER_PARAMETER, parameters, smallest
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


Row = tuple[int, float, float]
"""A leaf of a run: (tokens available, ratio, repetition cap)."""


def covers(budget: int, rows: Sequence[Row]) -> bool:
    return all(tokens_needed(budget, ratio) <= have * cap for have, ratio, cap in rows)


def largest_budget(rows: Sequence[Row]) -> int:
    """The largest requested tokens that every leaf covers; 0 when a leaf with a share holds no tokens."""
    if not rows:
        return MAX_TOKENS
    # whole tokens: a budget × ratio at most floor(have × cap) needs at most that many, float noise aside
    budget = min(MAX_TOKENS, *(math.floor(math.floor(h * c) / r) for h, r, c in rows))
    while budget > 0 and not covers(budget, rows):
        budget -= 1
    return max(budget, 0)


def largest_multiple(budget: int, model_id: str) -> float | None:
    """The largest chinchilla_multiple of two significant digits whose budget for `model_id` is at most `budget`
    tokens; None when even the smallest asks for more (or for less than one token)."""
    per_multiple = TOKENS_PER_PARAMETER * parameters(model_id)
    if budget < 1:
        return None
    exponent = math.floor(math.log10(budget / per_multiple)) - 1
    mantissa = math.floor(budget / per_multiple / 10**exponent + 1e-9)
    while mantissa > 0:
        multiple = float(f"{mantissa}e{exponent}")  # the decimal as written, never 0.0063000000000000001
        if 1 <= round(per_multiple * multiple) <= budget:
            return multiple
        mantissa -= 1
    return None


@dataclass(frozen=True)
class Shortage:
    """A run whose leaves cannot supply its budget."""

    run: str
    config: str
    model: str
    chinchilla_multiple: float
    requested: int
    available: int  # tokens of the leaves the run trains on (a share above 0)
    leaves: int
    short: list[Shortfall]
    largest_budget: int  # the most tokens the run's leaves cover at their caps

    @property
    def repetition(self) -> float | None:
        """The largest repetition a short leaf would need; None when one holds no tokens."""
        caps = [s.suffices for s in self.short]
        return None if None in caps else max(c for c in caps if c is not None)

    @property
    def caps(self) -> list[float]:
        return sorted({s.cap for s in self.short})


@dataclass(frozen=True)
class Fit:
    """A run of the group, short or not: what the chinchilla_multiple may be for it to fit."""

    model: str
    largest_budget: int


@dataclass(frozen=True)
class ShortageSummary:
    """One answer for a group with short leaves: how short, and the largest chinchilla_multiple that fits every run,
    with the runs' own proxy models and with the smallest proxy of their family."""

    runs: int
    shortages: list[Shortage]
    fits: float | None
    smallest: str
    fits_smallest: float | None

    @property
    def repetition(self) -> float | None:
        needs = [s.repetition for s in self.shortages]
        return None if None in needs else max(n for n in needs if n is not None)


def shortage_summary(shortages: Sequence[Shortage], fits: Sequence[Fit]) -> ShortageSummary:
    """The summary of a group whose `shortages` are short; `fits` holds every run of it (short ones included)."""
    small = smallest(shortages[0].model)

    def every(model_of: Callable[[Fit], str]) -> float | None:
        found = [largest_multiple(f.largest_budget, model_of(f)) for f in fits]
        return None if None in found else min(m for m in found if m is not None)

    return ShortageSummary(
        runs=len(fits),
        shortages=list(shortages),
        fits=every(lambda f: f.model),
        smallest=small,
        fits_smallest=every(lambda f: small),
    )
