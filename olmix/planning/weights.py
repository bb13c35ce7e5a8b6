"""Target ratios of the leaves: pure functions, data in, data out.

Among siblings (the sources; a source's topics; a parent's quality buckets):
- explicit `weight`s are normalized to sum to 1 (olmix's rules ensure they are
  set on all siblings or none, and not all 0);
- without weights, sources and a source's topics share equally, and quality
  buckets share in proportion to their available tokens (the natural
  distribution of the data that passed the threshold);
- a topic's `max_topic_ratio` caps its share within its source; the excess
  goes to the uncapped topics in proportion to their shares (water-filling).
  When the caps cannot be met (all topics capped below 1 in total, or the
  excess has nowhere to go) it is a problem.
A leaf's ratio is the product of its ancestry's shares; the ratios sum to 1.
Weights are scaled by the largest sibling's before they are summed, so any
finite weights share by their ratio; a positive weight whose share (or a
leaf whose ratio) is too small for a float is a problem, never a silent drop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from olmix.errors import IssuesError
from olmix.leaves import SEPARATOR, Leaf, Node

EPS = 1e-12
# a positive weight never drops a leaf silently, not even when its share is too small for a float
_UNDERFLOW = "share too small to represent (below 5e-324); raise the weight or set it to 0 to leave it out"
Key = tuple[str, ...]


@dataclass(frozen=True)
class WeightIssue:
    node: str  # name of the source or topic (":"-joined) whose children cannot be weighed
    message: str

    def __str__(self) -> str:
        return f"{self.node or 'sources'}: {self.message}"


class WeightError(IssuesError[WeightIssue]):
    pass


def capped(shares: Sequence[float], caps: Sequence[float | None]) -> list[float] | None:
    """`shares` (summing to 1) with each at most its cap, excess spread over the rest; None if impossible."""
    fixed: dict[int, float] = {}
    while True:
        free = [i for i in range(len(shares)) if i not in fixed]
        remaining = 1.0 - sum(fixed.values())
        free_total = sum(shares[i] for i in free)
        if not free or free_total <= EPS:
            if remaining > 1e-9:
                return None
            return [fixed.get(i, 0.0) for i in range(len(shares))]
        over = [i for i in free if (c := caps[i]) is not None and remaining * shares[i] / free_total > c + EPS]
        if not over:
            return [fixed[i] if i in fixed else remaining * shares[i] / free_total for i in range(len(shares))]
        for i in over:
            fixed[i] = caps[i] or 0.0


def ratios(leaves: Sequence[Leaf], tokens: Mapping[str, int]) -> dict[str, float]:
    """Leaf name -> target ratio, for leaves with `tokens` available each; WeightError lists every problem."""
    children: dict[Key, list[Key]] = {}
    node_of: dict[Key, Node] = {}
    under: dict[Key, int] = {}
    topic_cap: dict[Key, float | None] = {}
    for leaf in leaves:
        key: Key = ()
        for node in leaf.ancestry:
            child = (*key, node.name)
            if child not in node_of:
                node_of[child] = node
                children.setdefault(key, []).append(child)
                if node.level == "topic":
                    topic_cap[child] = leaf.max_topic_ratio
            under[child] = under.get(child, 0) + tokens[leaf.name]
            key = child

    share: dict[Key, float] = {}
    issues = []
    for parent, kids in children.items():
        nodes = [node_of[k] for k in kids]
        parent_name = SEPARATOR.join(parent)
        if any(n.weight is not None for n in nodes):
            raw = [float(n.weight or 0.0) for n in nodes]
        elif nodes[0].level == "quality":
            raw = [float(under[k]) for k in kids]
        else:
            raw = [1.0] * len(kids)
        top = max(raw)
        if top <= 0:
            what = "quality buckets hold no tokens" if nodes[0].level == "quality" else "all weights are 0"
            issues.append(WeightIssue(parent_name, f"cannot share among children: {what}"))
            continue
        scaled = [r / top for r in raw]  # at most 1 each: weights near the float limit still sum finitely
        total = sum(scaled)
        shares = [r / total for r in scaled]
        lost = [k for k, r, s in zip(kids, raw, shares, strict=True) if r > 0 and s == 0]
        if lost:
            issues += [WeightIssue(SEPARATOR.join(k), f"{_UNDERFLOW} (largest sibling weight {top:g})") for k in lost]
            continue
        if nodes[0].level == "topic":
            caps = [topic_cap[k] for k in kids]
            limited = capped(shares, caps)
            if limited is None:
                listed = ", ".join(f"{n.name} ≤ {c}" for n, c in zip(nodes, caps, strict=True) if c is not None)
                issues.append(
                    WeightIssue(parent_name, f"max_topic_ratio cannot be met: topic shares must sum to 1 ({listed})")
                )
                continue
            shares = limited
        share.update(zip(kids, shares, strict=True))
    if issues:
        raise WeightError(issues)

    out = {}
    for leaf in leaves:
        ratio, key, positive = 1.0, (), True
        for node in leaf.ancestry:
            key = (*key, node.name)
            ratio *= share[key]
            positive = positive and share[key] > 0
        if positive and ratio == 0:
            issues.append(WeightIssue(leaf.name, f"the product of the shares along its ancestry is {_UNDERFLOW}"))
        out[leaf.name] = ratio
    if issues:
        raise WeightError(issues)
    return out
