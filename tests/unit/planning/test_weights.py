from __future__ import annotations

import pytest

from olmix.leaves import Leaf, Node
from olmix.planning.weights import WeightError, capped, ratios


def leaf(
    path: str, weights: tuple[float | None, ...] = (), topic_ratio: float | None = None, topic: bool = False
) -> Leaf:
    """A leaf named source[:topic][:quality]; a two-part name is source:quality unless `topic`."""
    names = path.split(":")
    levels = ["source", "topic", "quality"] if len(names) == 3 or topic else ["source", "quality"]
    ws = (*weights, *([None] * (len(names) - len(weights))))
    ancestry = tuple(Node(lv, n, w, None) for lv, n, w in zip(levels, names, ws, strict=False))  # type: ignore[arg-type]
    return Leaf(path, ("x",), 1.0, ancestry, topic_ratio)


CASES = [
    # (leaves, tokens, expected ratios)
    ([leaf("a"), leaf("b")], {"a": 10, "b": 990}, {"a": 0.5, "b": 0.5}),  # sources share equally
    ([leaf("a", (3,)), leaf("b", (1,))], {"a": 1, "b": 1}, {"a": 0.75, "b": 0.25}),  # explicit, normalized
    # quality buckets share in proportion to their tokens
    ([leaf("s:hi"), leaf("s:lo")], {"s:hi": 30, "s:lo": 10}, {"s:hi": 0.75, "s:lo": 0.25}),
    # ...unless weighted
    ([leaf("s:hi", (None, 1)), leaf("s:lo", (None, 1))], {"s:hi": 30, "s:lo": 10}, {"s:hi": 0.5, "s:lo": 0.5}),
    # product along the ancestry: source equal, topics equal, quality by tokens
    (
        [leaf("s:t1:q1"), leaf("s:t1:q2"), leaf("s:t2:q1"), leaf("w")],
        {"s:t1:q1": 1, "s:t1:q2": 3, "s:t2:q1": 5, "w": 7},
        {"s:t1:q1": 0.0625, "s:t1:q2": 0.1875, "s:t2:q1": 0.25, "w": 0.5},
    ),
    # a zero weight gives a zero ratio
    ([leaf("a", (0,)), leaf("b", (2,))], {"a": 5, "b": 5}, {"a": 0.0, "b": 1.0}),
]


@pytest.mark.parametrize(("leaves", "tokens", "expected"), CASES)
def test_ratios(leaves: list[Leaf], tokens: dict[str, int], expected: dict[str, float]) -> None:
    got = ratios(leaves, tokens)
    assert got == pytest.approx(expected)
    assert sum(got.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("shares", "caps", "expected"),
    [
        ([0.5, 0.5], [None, None], [0.5, 0.5]),
        ([0.5, 0.25, 0.25], [0.2, None, None], [0.2, 0.4, 0.4]),  # excess spread in proportion
        ([0.6, 0.3, 0.1], [0.4, 0.4, None], [0.4, 0.4, 0.2]),  # a second cap binds after redistribution
        ([0.5, 0.5], [0.4, 0.4], None),  # caps sum below 1
        ([1.0, 0.0], [0.5, None], None),  # the excess has nowhere to go
    ],
)
def test_capped(shares: list[float], caps: list[float | None], expected: list[float] | None) -> None:
    got = capped(shares, caps)
    assert got == (None if expected is None else pytest.approx(expected))


def test_max_topic_ratio_is_honoured() -> None:
    leaves = [leaf("s:big", topic_ratio=0.2, topic=True), leaf("s:t2", topic=True), leaf("s:t3", topic=True)]
    got = ratios(leaves, {"s:big": 1, "s:t2": 1, "s:t3": 1})
    assert got == pytest.approx({"s:big": 0.2, "s:t2": 0.4, "s:t3": 0.4})


def test_unmeetable_topic_caps_and_empty_buckets_are_all_reported() -> None:
    leaves = [
        leaf("s:a", topic_ratio=0.3, topic=True),
        leaf("s:b", topic_ratio=0.3, topic=True),
        leaf("q:hi"),
        leaf("q:lo"),
    ]
    with pytest.raises(WeightError) as info:
        ratios(leaves, {"s:a": 1, "s:b": 1, "q:hi": 0, "q:lo": 0})
    assert [i.node for i in info.value.issues] == ["s", "q"]
    assert "max_topic_ratio cannot be met" in info.value.issues[0].message


def test_weights_near_the_float_limit_share_by_their_ratio() -> None:
    got = ratios([leaf("a", (1e308,)), leaf("b", (1.5e308,)), leaf("c", (0.5e308,))], {"a": 1, "b": 1, "c": 1})
    assert got == pytest.approx({"a": 1 / 3, "b": 1 / 2, "c": 1 / 6})


def test_a_positive_weight_whose_share_underflows_is_reported_not_dropped() -> None:
    with pytest.raises(WeightError) as info:
        ratios([leaf("a", (5e-324,)), leaf("b", (1e308,))], {"a": 1, "b": 1})
    assert [str(i) for i in info.value.issues] == [
        "a: share too small to represent (below 5e-324); raise the weight or set it to 0 to leave it out "
        "(largest sibling weight 1e+308)"
    ]


def test_a_ratio_that_underflows_along_the_ancestry_is_reported() -> None:
    # each share is a representable 1e-200, their product is not
    lvs = [leaf("s:t:q", (1e-200, 1e-200)), leaf("s:u:q", (None, 1)), leaf("w", (1,))]
    with pytest.raises(WeightError) as info:
        ratios(lvs, {"s:t:q": 1, "s:u:q": 1, "w": 1})
    assert [i.node for i in info.value.issues] == ["s:t:q"]
