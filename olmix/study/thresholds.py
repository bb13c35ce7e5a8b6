"""Quality thresholds as exact arithmetic on equal buckets.

A bucket scheme splits data into N equal buckets named `<prefix>_<k>`, k
zero-padded to 4 digits, k = N the best. Threshold t keeps bucket k when its
rank from the top, (N − k + 1) / N, is at most t. Everything is computed with
fractions: a threshold must fall on a bucket boundary j / N, and one that does
not is an error naming the nearest thresholds that do.

A threshold given as a float is on the boundary j / N when it is the float
nearest j / N: 0.3 is 6/20, and 0.3333333333333333 is 1/3 (a third cannot be
written exactly as a decimal). Strings ("3/10", "0.3") and Fractions are read
exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from olmix.errors import OlmixError

# Named schemes: prefix -> number of buckets.
SCHEMES = {"quintile": 5, "decile": 10, "vigintile": 20, "percentile": 100}

Threshold = Fraction | float | int | str | Decimal


class ThresholdError(OlmixError, ValueError):
    """A threshold or bucket scheme that cannot be used."""


@dataclass(frozen=True)
class BucketScheme:
    prefix: str
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ThresholdError(f"a bucket scheme needs at least 1 bucket, not {self.count}")
        if self.count > 9999:
            raise ThresholdError(f"bucket numbers have 4 digits, so at most 9999 buckets, not {self.count}")
        if not self.prefix:
            raise ThresholdError("a bucket scheme needs a prefix")

    def bucket(self, k: int) -> str:
        """The name of bucket k (1 = worst, count = best)."""
        if not 1 <= k <= self.count:
            raise ThresholdError(f"{self.prefix} buckets are numbered 1 to {self.count}, not {k}")
        return f"{self.prefix}_{k:04d}"

    def buckets(self) -> list[str]:
        """Every bucket name, worst first."""
        return [self.bucket(k) for k in range(1, self.count + 1)]

    def boundaries(self) -> list[Fraction]:
        """Every valid threshold: j / count for j = 1 … count."""
        return [Fraction(j, self.count) for j in range(1, self.count + 1)]


def scheme(name: str | None = None, *, prefix: str | None = None, count: int | None = None) -> BucketScheme:
    """A named scheme (quintile, decile, vigintile, percentile), or `count` buckets called `prefix`."""
    if name is not None:
        if name not in SCHEMES:
            from olmix.hints import did_you_mean

            hint = did_you_mean(name, SCHEMES)
            raise ThresholdError(f"no bucket scheme is named '{name}'{hint} (known: {', '.join(SCHEMES)})")
        return BucketScheme(name, SCHEMES[name])
    if prefix is None or count is None:
        raise ThresholdError("a bucket scheme needs a name, or a prefix and a count")
    return BucketScheme(prefix, count)


def exact(t: Threshold) -> Fraction:
    """A threshold as a fraction, read exactly as written."""
    if isinstance(t, bool):
        raise ThresholdError(f"a threshold is a number, not {t}")
    if isinstance(t, float):
        if not math.isfinite(t):
            raise ThresholdError(f"a threshold is a finite number, not {t}")
        return Fraction(repr(t))
    try:
        return Fraction(t)
    except (ValueError, ZeroDivisionError, TypeError):
        raise ThresholdError(f"{t!r} is not a threshold (a number in (0, 1], such as 0.3 or 3/10)") from None


def show(value: Fraction) -> str:
    """A threshold as a decimal when it has a finite one (0.3), else as a fraction (1/3)."""
    denominator = value.denominator
    for p in (2, 5):
        while denominator % p == 0:
            denominator //= p
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(value: Fraction) -> str:
    """The threshold as a percentage for names: 30, 12p5 (12.5%), 33p33 (a third, to 2 decimals)."""
    pct = value * 100
    if pct.denominator == 1:
        return str(pct.numerator)
    text = show(pct)
    if "/" in text:
        text = format(Decimal(pct.numerator) / Decimal(pct.denominator), ".2f")
    return text.replace(".", "p")


def boundary(t: Threshold, buckets: BucketScheme) -> Fraction:
    """The bucket boundary j / N that `t` names; ThresholdError if none does."""
    value = exact(t)
    n = buckets.count
    if not 0 < value <= 1:
        raise ThresholdError(f"a threshold must be greater than 0 and at most 1, not {show(value)}")
    if (value * n).denominator == 1:
        return value
    if isinstance(t, float):
        j = round(Fraction(t) * n)
        if 1 <= j <= n and float(Fraction(j, n)) == t:
            return Fraction(j, n)
    below, above = math.floor(value * n), math.ceil(value * n)
    nearest = [Fraction(j, n) for j in (below, above) if 1 <= j <= n]
    named = " and ".join(show(v) for v in nearest)
    raise ThresholdError(
        f"threshold {show(value)} does not fall on a {buckets.prefix} boundary (multiples of 1/{n}); "
        f"nearest valid: {named}"
    )


def kept(t: Threshold, buckets: BucketScheme) -> list[str]:
    """The buckets threshold `t` keeps, worst first: those with (N − k + 1) / N ≤ t."""
    value = boundary(t, buckets)
    n = buckets.count
    return [buckets.bucket(k) for k in range(1, n + 1) if Fraction(n - k + 1, n) <= value]
