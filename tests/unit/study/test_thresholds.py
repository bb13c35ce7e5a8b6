from __future__ import annotations

from fractions import Fraction

import pytest

from olmix.study.thresholds import BucketScheme, ThresholdError, boundary, exact, kept, percent, scheme, show

V = scheme("vigintile")


def names(prefix: str, first: int, last: int) -> list[str]:
    return [f"{prefix}_{k:04d}" for k in range(first, last + 1)]


# (threshold, scheme, first kept k, last kept k)
KEPT = [
    (0.1, V, 19, 20),
    (0.3, V, 15, 20),
    (0.5, V, 11, 20),
    (0.7, V, 7, 20),
    (1.0, V, 1, 20),
    (1, V, 1, 20),
    (0.05, V, 20, 20),
    (0.95, V, 2, 20),
    ("3/10", V, 15, 20),
    ("0.30", V, 15, 20),
    (Fraction(3, 10), V, 15, 20),
    (0.2, scheme("quintile"), 5, 5),
    (0.6, scheme("quintile"), 3, 5),
    (0.1, scheme("decile"), 10, 10),
    (0.9, scheme("decile"), 2, 10),
    (0.01, scheme("percentile"), 100, 100),
    (0.37, scheme("percentile"), 64, 100),
    (1 / 3, BucketScheme("tercile", 3), 3, 3),
    (2 / 3, BucketScheme("tercile", 3), 2, 3),
    ("2/3", BucketScheme("tercile", 3), 2, 3),
    (0.125, BucketScheme("octile", 8), 8, 8),
    (1.0, BucketScheme("whole", 1), 1, 1),
]


@pytest.mark.parametrize(("t", "buckets", "first", "last"), KEPT)
def test_kept_buckets(t: object, buckets: BucketScheme, first: int, last: int) -> None:
    assert kept(t, buckets) == names(buckets.prefix, first, last)  # type: ignore[arg-type]


# (threshold, scheme, the error message)
ERRORS = [
    (0.33, V, "threshold 0.33 does not fall on a vigintile boundary (multiples of 1/20); nearest valid: 0.3 and 0.35"),
    (0.01, V, "threshold 0.01 does not fall on a vigintile boundary (multiples of 1/20); nearest valid: 0.05"),
    (0.99, V, "threshold 0.99 does not fall on a vigintile boundary (multiples of 1/20); nearest valid: 0.95 and 1"),
    (0.3000001, V, "nearest valid: 0.3 and 0.35"),
    ("1/3", V, "threshold 1/3 does not fall on a vigintile boundary (multiples of 1/20); nearest valid: 0.3 and 0.35"),
    (0.3, BucketScheme("tercile", 3), "nearest valid: 1/3"),
    (0.5, BucketScheme("tercile", 3), "nearest valid: 1/3 and 2/3"),
    (0.333, BucketScheme("tercile", 3), "nearest valid: 1/3"),
    (0, V, "a threshold must be greater than 0 and at most 1, not 0"),
    (-0.1, V, "a threshold must be greater than 0 and at most 1, not -0.1"),
    (1.05, V, "a threshold must be greater than 0 and at most 1, not 1.05"),
    (2, V, "a threshold must be greater than 0 and at most 1, not 2"),
    (float("nan"), V, "a threshold is a finite number, not nan"),
    (True, V, "a threshold is a number, not True"),
    ("high", V, "'high' is not a threshold"),
]


@pytest.mark.parametrize(("t", "buckets", "message"), ERRORS)
def test_threshold_errors(t: object, buckets: BucketScheme, message: str) -> None:
    with pytest.raises(ThresholdError) as info:
        kept(t, buckets)  # type: ignore[arg-type]
    assert message in str(info.value)


SCHEMES = [
    (("quintile",), {}, "quintile", 5),
    (("decile",), {}, "decile", 10),
    (("vigintile",), {}, "vigintile", 20),
    (("percentile",), {}, "percentile", 100),
    ((), {"prefix": "tercile", "count": 3}, "tercile", 3),
]


@pytest.mark.parametrize(("args", "kwargs", "prefix", "count"), SCHEMES)
def test_schemes(args: tuple[str], kwargs: dict[str, object], prefix: str, count: int) -> None:
    got = scheme(*args, **kwargs)  # type: ignore[arg-type]
    assert (got.prefix, got.count) == (prefix, count)
    assert got.buckets()[0] == f"{prefix}_0001"
    assert got.buckets()[-1] == f"{prefix}_{count:04d}"
    assert len(got.buckets()) == count


SCHEME_ERRORS = [
    (("vigintle",), {}, "no bucket scheme is named 'vigintle'; did you mean 'vigintile'?"),
    ((), {"prefix": "x", "count": 0}, "at least 1 bucket"),
    ((), {"prefix": "x", "count": 10000}, "at most 9999 buckets"),
    ((), {"prefix": "x"}, "a prefix and a count"),
]


@pytest.mark.parametrize(("args", "kwargs", "message"), SCHEME_ERRORS)
def test_scheme_errors(args: tuple[str], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ThresholdError) as info:
        scheme(*args, **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


# (input, exact value, as shown, as a percentage for file names)
VALUES = [
    (0.3, Fraction(3, 10), "0.3", "30"),
    (1.0, Fraction(1), "1", "100"),
    (0.05, Fraction(1, 20), "0.05", "5"),
    (0.125, Fraction(1, 8), "0.125", "12p5"),
    ("1/3", Fraction(1, 3), "1/3", "33p33"),
    ("2/3", Fraction(2, 3), "2/3", "66p67"),
]


@pytest.mark.parametrize(("raw", "value", "shown", "pct"), VALUES)
def test_exact_show_percent(raw: object, value: Fraction, shown: str, pct: str) -> None:
    assert exact(raw) == value  # type: ignore[arg-type]
    assert show(value) == shown
    assert percent(value) == pct


def test_a_float_names_the_boundary_it_is_nearest_to() -> None:
    assert boundary(1 / 3, BucketScheme("tercile", 3)) == Fraction(1, 3)
    assert boundary(0.3, V) == Fraction(3, 10)
