from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from olmix.loading import yamlsource
from olmix.yamlwrite import dump

# (data, expected text)
CASES: list[tuple[Any, str]] = [
    ({"name": "x"}, "name: x\n"),
    ({"a": 1, "b": 1.5, "c": 2.0, "d": True, "e": None}, "a: 1\nb: 1.5\nc: 2.0\nd: true\ne: null\n"),
    ({"s": "yes", "t": "true", "u": "1.5", "v": ""}, 's: yes\nt: "true"\nu: "1.5"\nv: ""\n'),
    ({"p": "s3://b/*.npy", "q": "a: b", "r": "# no"}, 'p: "s3://b/*.npy"\nq: "a: b"\nr: "# no"\n'),
    ({"l": [], "m": {}}, "l: []\nm: {}\n"),
    ({"l": ["a", "b"]}, "l:\n  - a\n  - b\n"),
    ({"s": [{"name": "a", "paths": ["p"]}]}, "s:\n  - name: a\n    paths:\n      - p\n"),
    ({"x": [["a"], {"k": "v"}]}, "x:\n  - - a\n  - k: v\n"),
    ({"d": "top 30% — “quoted”"}, 'd: "top 30% — “quoted”"\n'),
]


@pytest.mark.parametrize(("data", "text"), CASES)
def test_dump_and_read_back(data: Any, text: str) -> None:
    assert dump(data) == text
    assert yamlsource.parse(text.encode(), "t.yaml").data == data


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), object()])
def test_unwritable_values(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        dump({"x": bad})


@pytest.mark.parametrize(
    ("value", "text"), [(7e-06, "7.0e-06"), (1e20, "1.0e+20"), (1.5e-300, "1.5e-300"), (0.0001, "0.0001")]
)
def test_floats_in_exponent_form_have_a_dot_that_yaml_1_1_needs(value: float, text: str) -> None:
    assert dump({"x": value}) == f"x: {text}\n"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_reads_back_the_same_in_yaml_1_1_and_1_2(value: float) -> None:
    text = dump({"x": value})
    assert yaml.safe_load(text) == {"x": value}
    assert yamlsource.parse(text.encode(), "t.yaml").data == {"x": value}
