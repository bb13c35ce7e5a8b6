from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from olmix.errors import ConfigError
from olmix.loading.config import load_config

MISTAKES = 2000  # far more than any file's hints may cost
HEAD = "name: x\nchinchilla_multiple: 1\nproxy_model_id: olmo3_14m\n"


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The words difflib was asked to match, in order: one per hint computed."""
    asked: list[str] = []
    real = difflib.get_close_matches

    def counting(word: str, *args: Any, **kwargs: Any) -> list[str]:
        asked.append(word)
        return real(word, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", counting)
    return asked


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [p.message for p in info.value.problems]


def test_a_file_of_unknown_keys_costs_a_bounded_number_of_hints(
    write: Callable[[str, str], Path], comparisons: list[str]
) -> None:
    keys = "".join(f"chinchila_multiple_{i}: 1\n" for i in range(MISTAKES))
    messages = _problems(write("c.yaml", HEAD + keys + "sources:\n  - name: a\n    paths: [p]\n"))
    assert len(messages) == MISTAKES  # every mistake is still reported
    assert 0 < len(comparisons) <= 100
    # the first mistakes keep their hint; the later ones name the key alone
    assert messages[0] == "unknown key 'chinchila_multiple_0'; did you mean 'chinchilla_multiple'?"
    assert messages[-1] == f"unknown key 'chinchila_multiple_{MISTAKES - 1}'"


def test_unknown_keys_in_every_source_cost_a_bounded_number_of_hints(
    write: Callable[[str, str], Path], comparisons: list[str]
) -> None:
    sources = "".join(f"  - name: s{i}\n    paths: [p]\n    weigth: 1\n" for i in range(MISTAKES))
    messages = _problems(write("c.yaml", HEAD + "sources:\n" + sources))
    assert len(messages) == MISTAKES
    assert 0 < len(comparisons) <= 100
    assert messages[0] == "unknown key 'weigth'; did you mean 'weight'?"


def test_names_the_rules_cannot_find_cost_a_bounded_number_of_hints(
    write: Callable[[str, str], Path], comparisons: list[str]
) -> None:
    names = "".join(f"  - arxvi{i}\n" for i in range(MISTAKES))
    text = HEAD + "sources:\n  - name: arxiv\n    paths: [p]\nnonzero_weight:\n" + names
    messages = _problems(write("c.yaml", text))
    assert len(messages) == MISTAKES
    assert 0 < len(comparisons) <= 100
    assert messages[0] == "no source, topic or leaf is named 'arxvi0'; did you mean 'arxiv'?"


def test_a_long_name_is_never_compared(write: Callable[[str, str], Path], comparisons: list[str]) -> None:
    # difflib is quadratic in the lengths; no key olmix knows is a typo of a name this long
    long_key = "chinchilla_multiple" * 10_000
    text = HEAD + f"? {long_key}\n: 1\nsources:\n  - name: a\n    paths: [p]\n"  # an explicit key: any length
    messages = _problems(write("c.yaml", text))
    assert len(messages) == 1 and "did you mean" not in messages[0]
    assert comparisons == []


def test_a_hint_never_suggests_the_name_given() -> None:
    from olmix.hints import did_you_mean, nearest

    assert nearest("loss_a", ["loss_a", "loss_b"]) == "loss_b"
    assert nearest("loss_a", ["loss_a"]) is None
    assert did_you_mean("x", ["x"], otherwise=" (known: x)") == " (known: x)"
    assert did_you_mean("topc", ["topic"], shown="'{{{}}}'") == "; did you mean '{topic}'?"
