from __future__ import annotations

import pytest

from olmix.errors import ConfigError
from olmix.loading.config import load_config
from olmix.loading.overrides import parse_key
from tests.conftest import REPO

MINIMAL = REPO / "config/examples/minimal.yaml"

KEYS = [
    ("chinchilla_multiple", ("chinchilla_multiple",)),
    ("sources[1].max_repetition_factor", ("sources", 1, "max_repetition_factor")),
    ("sources[0].topics[0].quality[0].name", ("sources", 0, "topics", 0, "quality", 0, "name")),
    ("instance_filter.repetition_max_count", ("instance_filter", "repetition_max_count")),
    ("", None),
    (".a", None),
    ("a..b", None),
    ("a[x]", None),
    ("a[0]b", None),
    ("a.", None),
]


@pytest.mark.parametrize(("key", "path"), KEYS)
def test_parse_key(key: str, path: tuple[str | int, ...] | None) -> None:
    assert parse_key(key) == path


def test_overrides_apply_before_validation() -> None:
    config = load_config(
        MINIMAL,
        [
            "proxy_model_id=olmo3_1m",
            "chinchilla_multiple=0.002",
            "sources[1].max_repetition_factor=3",
            "instance_filter.repetition_max_count=8",
            "eval_tasks=[arc_easy, hellaswag]",
        ],
    )
    assert (config.proxy_model_id, config.chinchilla_multiple) == ("olmo3_1m", 0.002)
    assert config.sources[1].max_repetition_factor == 3.0
    assert config.instance_filter is not None and config.instance_filter.repetition_max_count == 8
    assert config.eval_tasks == ["arc_easy", "hellaswag"]


BAD = [
    (
        ["chinchilla_multiple=-1"],
        ["--set chinchilla_multiple=-1: $.chinchilla_multiple: must be greater than 0, not -1"],
    ),
    (["chinchila=2"], ["--set chinchila=2: $.chinchila: unknown key 'chinchila'; did you mean 'chinchilla_multiple'?"]),
    (["nodes"], ["--set nodes: expected KEY=VALUE, with KEY like sources[0].weight"]),
    (["sources[5].name=x"], ["--set sources[5].name=x: $.sources[5].name: there is no item [5] here"]),
    (["name.first=x"], ["--set name.first=x: $.name.first: cannot set 'first' inside a str"]),
    (
        ["seed=[1"],
        ["--set seed=[1: $.seed: cannot read the value as YAML: YAML syntax error: did not find expected ',' or ']'"],
    ),
]


@pytest.mark.parametrize(("assignments", "expected"), BAD)
def test_bad_overrides_are_reported_like_config_errors(assignments: list[str], expected: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(MINIMAL, assignments)
    assert [str(p) for p in info.value.problems] == expected
