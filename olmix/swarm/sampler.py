"""Sample a swarm: mixtures drawn around a config's prior, each meeting every constraint it states.

Why hierarchical: a source's share and the split inside it are separate
questions, so sources are drawn first and then, inside each source, its
topics and then each topic's quality buckets; each sibling group is one
Dirichlet draw with concentration = prior × strength. The prior of a group
is its children's token counts (the data as it is), `manual_prior` for
sources and `manual_topic_prior` for topics when given, raised to the power
of the temperature and renormalised. Strengths cycle over a log-spaced grid
between the minimum and maximum, so a swarm holds both spread-out and
near-prior mixtures.

Frozen shares ("mixture reuse"): a sibling group whose weights are set in the
config keeps its split; `fixed_source_weights` holds named sources fixed and
samples the rest into what remains.

Constraints are checked on the weights as they are written (rounded to
ROUNDING shares summing exactly to 1), never on the unrounded draw, so a
written config never sits just under a minimum. A candidate that breaks one
is rejected; after `variants × sample_multiplier` draws the sampler stops and
names the constraint that rejected most. Everything is pure Python and
seeded: the same inputs give the same swarm on every machine.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from olmix.errors import OlmixError
from olmix.leaves import SEPARATOR, Leaf

STRENGTH_STEPS = 15  # strengths cycled per draw, log-spaced between min and max
DEFAULT_SAMPLE_MULTIPLIER = 10
DUPLICATE_DISTANCE = 1e-3  # L2 distance between leaf-ratio vectors under which two variants are the same
ROUNDING = 10**6  # shares are written as multiples of 1e-6
CAP_MARGIN = 1e-14  # a cap is met with this much room, so the planner's float products never cross it
UNDERFLOW = 700.0  # e^-700: the smallest prior term a Dirichlet draw still moves
MAX_VARIANTS = 10_000  # a swarm larger than this is a mistake (RegMix used 512), and would sample for minutes


class SwarmError(OlmixError):
    """A swarm that cannot be sampled as asked; the message names the constraint that binds."""


@dataclass
class Group:
    """One sibling group: the children of a parent (the root for sources)."""

    parent: str  # "" for the sources
    level: str  # "source", "topic" or "quality"
    children: list[str]  # full names, config order
    frozen: list[float] | None  # normalised shares when the config sets them


@dataclass(frozen=True)
class Settings:
    variants: int
    seed: int
    sample_multiplier: int
    source_strengths: tuple[float, float]
    topic_strengths: tuple[float, float]
    source_temperature: float
    topic_temperature: float
    minimum_weight: float
    minimum_source_weight: float
    minimum_topic_weight: float
    nonzero: tuple[str, ...]
    fixed_sources: Mapping[str, float]
    manual_prior: Mapping[str, float]
    manual_topic_prior: Mapping[str, float]
    repetition_factor: float = math.inf  # the config's, when it sets one: no leaf repeats more than this

    @classmethod
    def of(cls, config: Any, variants: int | None = None, seed: int | None = None) -> Settings:
        """The swarm settings of a validated ExperimentConfig, each defaulted as the schema describes."""

        def either(value: float | None, fallback: float) -> float:
            return fallback if value is None else float(value)

        def weight_map(value: Any) -> dict[str, float]:
            return {} if value is None else {k: float(v) for k, v in dict(getattr(value, "root", value)).items()}

        nonzero = (
            [] if config.nonzero_weight is None else list(getattr(config.nonzero_weight, "root", config.nonzero_weight))
        )
        return cls(
            variants=config.variants if variants is None else variants,
            seed=config.seed if seed is None else seed,
            sample_multiplier=config.sample_multiplier or DEFAULT_SAMPLE_MULTIPLIER,
            source_strengths=(
                either(config.min_source_strength, config.min_strength),
                either(config.max_source_strength, config.max_strength),
            ),
            topic_strengths=(
                either(config.min_topic_strength, config.min_strength),
                either(config.max_topic_strength, config.max_strength),
            ),
            source_temperature=either(config.source_mix_temperature, config.mix_temperature),
            topic_temperature=either(config.topic_mix_temperature, config.mix_temperature),
            minimum_weight=either(config.minimum_weight, 0.0),
            minimum_source_weight=either(config.minimum_source_weight, 0.0),
            minimum_topic_weight=either(config.minimum_topic_weight, 0.0),
            nonzero=tuple(nonzero),
            fixed_sources=weight_map(config.fixed_source_weights),
            manual_prior=weight_map(config.manual_prior),
            manual_topic_prior=weight_map(config.manual_topic_prior),
            repetition_factor=(
                float(config.repetition_factor) if "repetition_factor" in config.model_fields_set else math.inf
            ),
        )


@dataclass(frozen=True)
class Variant:
    """One sampled mixture: the share of every node within its parent, and the leaves' ratios."""

    shares: dict[str, float]  # node full name -> share among its siblings (sums to 1 per group)
    ratios: dict[str, float]  # leaf name -> ratio of the whole mixture
    strength: float
    moved: frozenset[str] = frozenset()  # the constraints that moved this draw (clipped, raised or capped it)


def moved_counts(variants: Sequence[Variant]) -> Counter[str]:
    """How many of the variants each constraint moved."""
    return Counter(why for v in variants for why in v.moved)


@dataclass
class _Tree:
    groups: list[Group]
    tokens: dict[str, int]  # every node -> tokens under it
    caps: dict[str, float]  # leaf -> repetition cap
    topic_caps: dict[str, float]  # topic -> max_topic_ratio
    leaves: list[str]
    capacity: dict[str, float] = field(default_factory=dict)  # node -> largest ratio its leaves' caps allow
    required: set[str] = field(default_factory=set)  # nodes that must be nonzero (nonzero_weight and ancestors)
    under: dict[str, list[str]] = field(default_factory=dict)  # node -> the leaves under it (a leaf: itself)
    below: dict[str, int] = field(default_factory=dict)  # node -> how many nodes lie under it


def strengths(low: float, high: float) -> list[float]:
    """The strength grid: one value when min = max, else STRENGTH_STEPS log-spaced values."""
    if low > high:
        raise SwarmError(f"minimum strength {low} is larger than maximum strength {high}")
    if low == high:
        return [low]
    step = (math.log(high) - math.log(low)) / (STRENGTH_STEPS - 1)
    return [math.exp(math.log(low) + i * step) for i in range(STRENGTH_STEPS)]


def _tree(
    lvs: Sequence[Leaf], tokens: Mapping[str, int], allow_repetition: bool, repetition_factor: float = math.inf
) -> _Tree:
    groups: dict[str, Group] = {}
    under: dict[str, int] = {}
    weights: dict[str, float | None] = {}
    caps: dict[str, float] = {}
    topic_caps: dict[str, float] = {}
    for leaf in lvs:
        parent = ""
        for node in leaf.ancestry:
            name = f"{parent}{SEPARATOR}{node.name}" if parent else node.name
            group = groups.setdefault(parent, Group(parent, node.level, [], None))
            if name not in weights:
                group.children.append(name)
                weights[name] = node.weight
            under[name] = under.get(name, 0) + tokens[leaf.name]
            parent = name
        caps[leaf.name] = min(leaf.max_repetition_factor, repetition_factor) if allow_repetition else 1.0
        if leaf.max_topic_ratio is not None:
            topic_caps[SEPARATOR.join(n.name for n in leaf.ancestry[:2])] = leaf.max_topic_ratio
    for group in groups.values():
        raw = [weights[c] for c in group.children]
        if all(w is not None for w in raw):
            total = sum(w or 0.0 for w in raw)
            group.frozen = [(w or 0.0) / total for w in raw] if total > 0 else None
    return _Tree(list(groups.values()), under, caps, topic_caps, [leaf.name for leaf in lvs])


def _prior(tree: _Tree, group: Group, settings: Settings) -> list[float]:
    if group.level == "source":
        manual, temperature = settings.manual_prior, settings.source_temperature
        raw = [manual.get(c, float(tree.tokens[c])) if manual else float(tree.tokens[c]) for c in group.children]
    else:
        manual, temperature = settings.manual_topic_prior, settings.topic_temperature
        own = [c.rpartition(SEPARATOR)[2] for c in group.children]
        if group.level == "topic" and manual:
            raw = [manual.get(name, float(tree.tokens[c])) for name, c in zip(own, group.children, strict=True)]
        else:
            raw = [float(tree.tokens[c]) for c in group.children]
    top = max(raw, default=0.0)
    if top <= 0:  # no tokens under the group: its parent holds nothing (its cap is 0), so it is never drawn
        return [1 / len(raw)] * len(raw)
    # in logs, relative to the largest, so no temperature overflows; one that drives a child's prior to zero
    # (which no draw could then move) is refused with the largest that does not
    logs = [math.log(r / top) for r in raw if r > 0]
    if min(logs) * temperature < -UNDERFLOW:
        level = "source_mix_temperature" if group.level == "source" else "topic_mix_temperature"
        raise SwarmError(
            f"mix temperature {temperature:g} ({level} or mix_temperature) drives the prior of a child of "
            f"'{group.parent or 'the mixture'}' to zero; at most {UNDERFLOW / -min(logs):.4g} keeps every child drawn"
        )
    tempered = [math.exp(temperature * math.log(r / top)) if r > 0 else 0.0 for r in raw]
    scale = sum(tempered)
    return [t / scale for t in tempered]


def _dirichlet(rng: random.Random, alphas: Sequence[float]) -> list[float] | None:
    draws = [rng.gammavariate(a, 1.0) if a > 0 else 0.0 for a in alphas]
    total = sum(draws)
    return None if total <= 0 or not math.isfinite(total) else [d / total for d in draws]


def rounded(shares: Sequence[float]) -> list[float]:
    """Shares as multiples of 1/ROUNDING that sum to exactly 1 (largest remainder)."""
    return bounded_rounding(shares, [0.0] * len(shares), [1.0] * len(shares)) or list(shares)


def bounded_rounding(shares: Sequence[float], low: Sequence[float], high: Sequence[float]) -> list[float] | None:
    """Shares as multiples of 1/ROUNDING summing to exactly 1, each zero or within [low, high] when it was
    within them; None when no such rounding exists (the bounds leave no whole unit to give)."""
    scaled = [s * ROUNDING for s in shares]
    lo = [0 if s <= 0 else math.ceil(low_ * ROUNDING - 1e-9) for s, low_ in zip(shares, low, strict=True)]
    hi = [0 if s <= 0 else math.floor(h * ROUNDING + 1e-9) for s, h in zip(shares, high, strict=True)]
    units = [min(max(math.floor(x), a), b) for x, a, b in zip(scaled, lo, hi, strict=True)]
    left = ROUNDING - sum(units)
    if left > 0:  # largest remainders first (one unit each), then whatever room is left
        order = sorted(range(len(units)), key=lambda i: (units[i] - scaled[i], i))
        for rounds in (1, ROUNDING):
            for i in order:
                give = min(left, hi[i] - units[i], rounds)
                units[i] += give
                left -= give
    elif left < 0:  # smallest remainders give back first, never below their floor
        order = sorted(range(len(units)), key=lambda i: (scaled[i] - units[i], i))
        for rounds in (1, ROUNDING):
            for i in order:
                take = min(-left, units[i] - lo[i], rounds)
                units[i] -= take
                left += take
    if left != 0:
        return None
    return [u / ROUNDING for u in units]


@dataclass(frozen=True)
class _Bound:
    value: float
    why: str  # the constraint that sets it, as reported ("" when none binds)


def _project(drawn: Sequence[float], low: Sequence[float], high: Sequence[float]) -> list[float]:
    """The KL projection of a draw onto {low ≤ x ≤ high, Σx = 1} over its support: x = clip(λ·drawn, low, high).
    Σ is piecewise linear in λ: walk its breakpoints in order and solve the segment that reaches 1. The caller
    guarantees Σlow ≤ 1 ≤ Σhigh and drawn > 0."""
    events = sorted(
        [(a / d, 0, i) for i, (d, a) in enumerate(zip(drawn, low, strict=True))]
        + [(b / d, 1, i) for i, (d, b) in enumerate(zip(drawn, high, strict=True))]
    )
    fixed, slope = float(sum(low)), 0.0  # Σ of the members held at a bound, Σ drawn of the free ones
    scale = events[-1][0] if events else 1.0
    for at, kind, i in events:
        if slope > 0 and fixed + at * slope >= 1:
            scale = (1 - fixed) / slope
            break
        if kind == 0:  # from its floor into the free part
            fixed -= low[i]
            slope += drawn[i]
        else:  # from the free part onto its ceiling
            slope -= drawn[i]
            fixed += high[i]
    x = [min(max(d * scale, a), b) for d, a, b in zip(drawn, low, high, strict=True)]
    # the last bit: spread the float remainder over the members strictly inside their bounds
    rest = 1.0 - sum(x)
    free = [i for i, (v, a, b) in enumerate(zip(x, low, high, strict=True)) if a < v < b]
    inside = max(sum(x[j] for j in free), 1e-300)
    for i in free:
        x[i] = min(max(x[i] + rest * x[i] / inside, low[i]), high[i])
    return x


def _group_shares(
    drawn: Sequence[float],
    low: Sequence[_Bound],
    high: Sequence[_Bound],
    required: Sequence[bool],
    moved: set[str],
) -> list[float] | None:
    """One sibling group's shares from its draw, within the bounds: children under their minimum are left out
    (as upstream clips), required ones kept, then the draw is projected onto the bounds and rounded.
    None when no support meets both the minimums and the caps."""
    n = len(drawn)
    possible = [low[i].value <= high[i].value and high[i].value > 0 for i in range(n)]
    support = [possible[i] and ((drawn[i] >= low[i].value and drawn[i] > 0) or required[i]) for i in range(n)]
    for i in range(n):
        if possible[i] and drawn[i] > 0 and not support[i] and low[i].why:
            moved.add(low[i].why)
        if required[i] and drawn[i] < low[i].value:
            moved.add("nonzero_weight")
    order = sorted(range(n), key=lambda i: -drawn[i])
    # too little room under the caps: bring back the largest drawn children left out
    for i in order:
        if sum(high[j].value for j in range(n) if support[j]) >= 1:
            break
        if possible[i] and not support[i]:
            support[i] = True
            moved.add(high[i].why or "repetition cap")
    # minimums that overfill: leave out the smallest drawn children that are not required
    for i in reversed(order):
        if sum(low[j].value for j in range(n) if support[j]) <= 1:
            break
        if support[i] and not required[i]:
            support[i] = False
            moved.add(low[i].why)
    members = [i for i in range(n) if support[i]]
    if (
        not members
        or sum(low[i].value for i in members) > 1 + 1e-12
        or sum(min(high[i].value, 1.0) for i in members) < 1 - 1e-9
    ):
        return None
    top = max(drawn[i] for i in members)
    base = [max(drawn[i] / top, 1e-12) if top > 0 else 1.0 for i in members]  # children brought back get a sliver
    total = sum(base)
    base = [b / total for b in base]
    lows = [low[i].value for i in members]
    highs = [min(high[i].value, 1.0) for i in members]
    x = _project(base, lows, highs)
    for i, b, v, a, h in zip(members, base, x, lows, highs, strict=True):
        if v <= a + 1e-15 and b < a and low[i].why:
            moved.add(low[i].why)
        if v >= h - 1e-15 and b > h and high[i].why:
            moved.add(high[i].why)
    out = [0.0] * n
    for i, v in zip(members, x, strict=True):
        out[i] = v
    return bounded_rounding(out, [b.value for b in low], [min(b.value, 1.0) for b in high])


def _usable(tree: _Tree, settings: Settings, node: str, source_total: float) -> float:
    """The largest ratio `node` can hold when its source holds `source_total`: the caps of the leaves under it
    that can meet their minimums (a leaf capped under minimum_topic_weight × its source, or under
    minimum_weight, can only be zero), each topic held to max_topic_ratio."""
    per_topic: dict[str, float] = {}
    for leaf in tree.under[node]:
        floor = max(settings.minimum_weight, settings.minimum_topic_weight * source_total if SEPARATOR in leaf else 0.0)
        if tree.capacity[leaf] >= floor and tree.capacity[leaf] > 0:
            topic = SEPARATOR.join(leaf.split(SEPARATOR)[:2])
            per_topic[topic] = per_topic.get(topic, 0.0) + tree.capacity[leaf]
    total = sum(
        min(held, tree.topic_caps[topic] * source_total) if topic in tree.topic_caps else held
        for topic, held in per_topic.items()
    )
    return total


def _slack(tree: _Tree, node: str, held: float) -> float:
    """A node's room less what the rounding of every group below it may lose (a unit each), at most 1."""
    held -= 3 * tree.below.get(node, 0) / ROUNDING  # a parent's slack exceeds its children's by 3 units each
    return min(held, 1.0)


def _source_capacity(tree: _Tree, settings: Settings, source: str) -> float:
    """The largest share a source can take with every leaf under it meeting its minimums and caps."""
    if SEPARATOR not in tree.under[source][0]:
        return min(1.0, tree.capacity[source])  # a source of paths is a leaf
    low, high = 0.0, min(1.0, tree.capacity[source])
    if _slack(tree, source, _usable(tree, settings, source, high)) >= high:
        return high
    for _ in range(60):  # the usable room shrinks as the source grows: the largest fixed point, by bisection
        mid = (low + high) / 2
        low, high = (mid, high) if _slack(tree, source, _usable(tree, settings, source, mid)) >= mid else (low, mid)
    return low


def _draw(
    tree: _Tree, settings: Settings, priors: dict[str, list[float]], rng: random.Random, strength: tuple[float, float]
) -> tuple[dict[str, float], set[str]] | None:
    """One mixture, top-down: each group's Dirichlet draw is clipped to its minimums and projected onto its
    caps given its parent's (rounded) share, so every written weight meets every constraint by construction."""
    shares: dict[str, float] = {}
    totals: dict[str, float] = {"": 1.0}  # node -> its ratio of the whole mixture
    within: dict[str, float] = {}  # node below a source -> its share of its source
    moved: set[str] = set()
    for group in tree.groups:
        parent_total = totals[group.parent]
        if parent_total <= 0:
            for child in group.children:
                shares[child], totals[child], within[child] = 0.0, 0.0, 0.0
            continue
        parent_within = within.get(group.parent, 1.0)
        source_total = totals[group.parent.split(SEPARATOR)[0]] if group.parent else 1.0
        low, high, required = [], [], []
        for child in group.children:
            floor = _Bound(0.0, "")
            if group.level == "source":
                floor = _Bound(settings.minimum_source_weight, "minimum_source_weight")
            elif settings.minimum_topic_weight > 0:
                floor = _Bound(settings.minimum_topic_weight / parent_within, "minimum_topic_weight")
            if settings.minimum_weight / parent_total > floor.value:
                floor = _Bound(settings.minimum_weight / parent_total, "minimum_weight")
            if group.level == "source":
                held = tree.capacity[child]
            else:
                held = _slack(tree, child, _usable(tree, settings, child, source_total))
            ceiling = _Bound(max(held, 0.0) / parent_total, "repetition cap")
            if child in tree.topic_caps and tree.topic_caps[child] < ceiling.value:
                ceiling = _Bound(tree.topic_caps[child], "max_topic_ratio")
            if ceiling.value >= 1:
                ceiling = _Bound(1.0, "")
            low.append(floor)
            high.append(ceiling)
            required.append(child in tree.required)
        if group.frozen is not None:
            drawn: list[float] | None = list(group.frozen)
            fixed = True
        elif group.level == "source" and settings.fixed_sources:
            pinned = settings.fixed_sources
            free = [c for c in group.children if c not in pinned]
            alphas = [p * strength[0] for c, p in zip(group.children, priors[group.parent], strict=True) if c in free]
            sampled = _dirichlet(rng, alphas) if free else []
            if sampled is None:
                return None
            rest = 1.0 - sum(pinned.values())
            it = iter(sampled)
            drawn = [pinned[c] if c in pinned else rest * next(it) for c in group.children]
            fixed = not free
            if free:  # the pinned shares are bounds of their own: exactly their value
                low = [_Bound(pinned[c], "") if c in pinned else b for c, b in zip(group.children, low, strict=True)]
                high = [_Bound(pinned[c], "") if c in pinned else b for c, b in zip(group.children, high, strict=True)]
                required = [r or (c in pinned and pinned[c] > 0) for c, r in zip(group.children, required, strict=True)]
        else:
            level_strength = strength[0] if group.level == "source" else strength[1]
            drawn = _dirichlet(rng, [p * level_strength for p in priors[group.parent]])
            fixed = False
            if drawn is None:
                return None
        assert drawn is not None
        if fixed:
            picked: list[float] | None = rounded(drawn)
        else:
            picked = _group_shares(drawn, low, high, required, moved)
        if picked is None:
            return None
        for child, share in zip(group.children, picked, strict=True):
            shares[child] = share
            totals[child] = parent_total * share
            within[child] = 1.0 if group.level == "source" else parent_within * share
    return shares, moved


def _within_source(shares: Mapping[str, float], name: str) -> float:
    out = 1.0
    while SEPARATOR in name:
        out *= shares[name]
        name = name.rpartition(SEPARATOR)[0]
    return out


def _total(shares: Mapping[str, float], name: str) -> float:
    return _within_source(shares, name) * shares[name.split(SEPARATOR)[0]]


def _broken(tree: _Tree, settings: Settings, shares: Mapping[str, float], budget: int) -> str | None:
    """The first constraint the written shares break, or None."""
    from olmix.planning.budget import tokens_needed

    for name, share in shares.items():
        total = _total(shares, name)
        if total <= 0:
            continue
        if SEPARATOR not in name and share < settings.minimum_source_weight:
            return f"minimum_source_weight {settings.minimum_source_weight} (source '{name}')"
        within = _within_source(shares, name)
        if SEPARATOR in name and within < settings.minimum_topic_weight:
            return f"minimum_topic_weight {settings.minimum_topic_weight} ('{name}' within its source)"
        if name in tree.topic_caps and shares[name] > tree.topic_caps[name] + 1e-12:
            return f"max_topic_ratio {tree.topic_caps[name]} (topic '{name}')"
    for leaf in tree.leaves:
        ratio = _total(shares, leaf)
        if 0 < ratio < settings.minimum_weight:
            return f"minimum_weight {settings.minimum_weight} (leaf '{leaf}')"
        if tree.tokens[leaf] * tree.caps[leaf] < tokens_needed(budget, ratio):
            return f"repetition cap {tree.caps[leaf]} of leaf '{leaf}' ({tree.tokens[leaf]:,} tokens)"
    for name in settings.nonzero:
        if _total(shares, name) <= 0:
            return f"nonzero_weight '{name}'"
    return None


def _check_settings(tree: _Tree, settings: Settings) -> None:
    if not 1 <= settings.variants <= MAX_VARIANTS:
        raise SwarmError(f"variants must be between 1 and {MAX_VARIANTS:,}, not {settings.variants:,}")
    fixed = settings.fixed_sources
    if fixed:
        sources = tree.groups[0]
        if sources.frozen is not None:
            raise SwarmError("fixed_source_weights and a weight on every source both fix the sources; keep one")
        total = sum(fixed.values())
        free = [c for c in sources.children if c not in fixed]
        if total > 1 + 1e-9 or (not free and abs(total - 1) > 1e-9):
            raise SwarmError(f"fixed_source_weights sum to {total:g}; they must leave a share in [0, 1] to sample")
        over = [f"'{c}' {w:g} > {tree.capacity.get(c, 0):.6g}" for c, w in fixed.items() if w > tree.capacity.get(c, 0)]
        if over:
            raise SwarmError(f"fixed_source_weights above what the repetition caps allow: {'; '.join(over)}")


def _check_feasible(tree: _Tree, settings: Settings, budget: int) -> None:
    """SwarmError with the proof when no mixture can meet the constraints."""
    total = sum(tree.capacity[leaf] for leaf in tree.leaves)
    if total < 1:
        biggest = sorted(tree.leaves, key=lambda leaf: -tree.capacity[leaf])[:5]
        terms = ", ".join(
            f"'{leaf}' {tree.tokens[leaf]:,} tokens × {tree.caps[leaf]:g} = {tree.capacity[leaf]:.4g}"
            for leaf in biggest
        )
        raise SwarmError(
            f"infeasible: the leaves' repetition caps sum to {total:.4g} < 1 of the {budget:,} tokens of a run "
            f"(largest: {terms}); lower the budget, add data or raise max_repetition_factor"
        )
    sources = tree.groups[0].children
    floor = max(settings.minimum_source_weight, settings.minimum_weight)
    held = sum(tree.capacity[source] for source in sources if tree.capacity[source] >= floor)
    if held < 1:
        terms = ", ".join(f"'{source}' {tree.capacity[source]:.4g}" for source in sources[:8])
        raise SwarmError(
            f"infeasible: the sources can hold at most {held:.6g} < 1 of a run of {budget:,} tokens ({terms}): "
            "their leaves' repetition caps, less the leaves that minimum_topic_weight or minimum_weight leave out, "
            f"and less the sources that cannot reach minimum_source_weight {settings.minimum_source_weight:g}"
        )
    needed = [leaf for leaf in tree.leaves if leaf in tree.required]
    if needed and settings.minimum_weight * len(needed) > 1:
        raise SwarmError(
            f"infeasible: nonzero_weight keeps {len(needed)} leaves above minimum_weight "
            f"{settings.minimum_weight:g}; {len(needed)} × {settings.minimum_weight:g} > 1"
        )
    for name in sorted(tree.required):
        if tree.capacity[name] < settings.minimum_weight or (
            SEPARATOR not in name and tree.capacity[name] < settings.minimum_source_weight
        ):
            raise SwarmError(
                f"infeasible: nonzero_weight '{name}' can hold at most {tree.capacity[name]:.4g} of a run "
                f"(its repetition caps), under its minimum"
            )
    unknown = [name for name in settings.nonzero if name not in tree.capacity]
    if unknown:
        raise SwarmError(f"nonzero_weight names no source, topic or leaf: {', '.join(unknown)}")


def sample(
    lvs: Sequence[Leaf],
    tokens: Mapping[str, int],
    budget: int,
    settings: Settings,
    *,
    allow_repetition: bool = True,
    counts: Counter[str] | None = None,
) -> list[Variant]:
    """`settings.variants` mixtures over `lvs` (tokens per leaf, `budget` tokens per run); SwarmError if impossible.

    Every draw is moved onto the constraints (clipped under a minimum, projected under the caps), so a feasible
    request keeps its draws and their strengths; only near-duplicates and the rare draw whose group has no
    feasible support are drawn again."""
    tree = _tree(lvs, tokens, allow_repetition, settings.repetition_factor)
    for leaf in tree.leaves:
        # unclamped (a leaf may hold several runs' worth): the room left after rounding depends on it
        # whole tokens, as the planner counts them: a run needs ceil(budget × ratio) ≤ tokens × cap
        usable = math.floor(tree.tokens[leaf] * tree.caps[leaf] + 1e-9)
        tree.capacity[leaf] = max(usable / budget - CAP_MARGIN, 0.0) if budget > 0 else 2.0
    for leaf in reversed(tree.leaves):
        name = leaf
        while SEPARATOR in name:
            name = name.rpartition(SEPARATOR)[0]
            tree.capacity[name] = 0.0
    for leaf in tree.leaves:
        name = leaf
        while SEPARATOR in name:
            name = name.rpartition(SEPARATOR)[0]
            tree.capacity[name] += tree.capacity[leaf]
    for leaf in tree.leaves:
        name = leaf
        while name:
            tree.under.setdefault(name, []).append(leaf)
            name = name.rpartition(SEPARATOR)[0]
    for group in tree.groups:
        for child in group.children:
            name = child
            while SEPARATOR in name:
                name = name.rpartition(SEPARATOR)[0]
                tree.below[name] = tree.below.get(name, 0) + 1
    for source in tree.groups[0].children:
        tree.capacity[source] = _source_capacity(tree, settings, source)
    for name in settings.nonzero:
        while name:
            tree.required.add(name)
            name = name.rpartition(SEPARATOR)[0]
    _check_settings(tree, settings)
    _check_feasible(tree, settings, budget)
    priors = {g.parent: _prior(tree, g, settings) for g in tree.groups if g.frozen is None}
    source_grid, topic_grid = strengths(*settings.source_strengths), strengths(*settings.topic_strengths)
    grid = [
        (source_grid[i % len(source_grid)], topic_grid[i % len(topic_grid)])
        for i in range(max(len(source_grid), len(topic_grid)))
    ]
    rng = random.Random(settings.seed)
    kept: list[Variant] = []
    nearby = _Neighbours(tree.leaves)
    rejected: Counter[str] = Counter()
    attempts = settings.variants * settings.sample_multiplier
    # strengths cycle over the kept variants, not the draws: a draw drawn again keeps its strength
    draw = 0
    while len(kept) < settings.variants and draw < attempts:
        draw += 1
        strength = grid[len(kept) % len(grid)]
        drawn = _draw(tree, settings, priors, rng, strength)
        if drawn is None:
            rejected["a draw whose groups had no support meeting both minimums and caps"] += 1
            continue
        shares, moved = drawn
        why = _broken(tree, settings, shares, budget)
        if why is None:
            ratios = {leaf: _total(shares, leaf) for leaf in tree.leaves}
            if nearby.close(ratios):
                why = f"near-duplicate of a kept variant (L2 distance < {DUPLICATE_DISTANCE})"
            else:
                nearby.add(ratios)
                kept.append(Variant(shares, ratios, strength[0], frozenset(moved)))
                continue
        rejected[why] += 1
    if counts is not None:  # for measurement: the draws made, and why any was drawn again
        counts["draws"] += draw
        counts.update(rejected)
    if len(kept) < settings.variants:
        reasons = "; ".join(f"{why}: {n}" for why, n in rejected.most_common(5))
        binding = rejected.most_common(1)[0][0] if rejected else "none"
        raise SwarmError(
            f"kept {len(kept)} of {settings.variants} variants after {attempts} draws "
            f"(sample_multiplier {settings.sample_multiplier}); the binding constraint is {binding}. "
            f"Rejections: {reasons}"
        )
    return kept


class _Neighbours:
    """Kept variants, found by their projection on one fixed direction: two variants closer than
    DUPLICATE_DISTANCE are closer than that along any direction, so only a thin slice is compared in full."""

    def __init__(self, names: Sequence[str]) -> None:
        pick = random.Random(0)
        direction = [pick.gauss(0.0, 1.0) for _ in names]
        norm = math.sqrt(sum(d * d for d in direction)) or 1.0
        self.direction = {name: d / norm for name, d in zip(names, direction, strict=True)}
        self.keys: list[float] = []
        self.vectors: list[Mapping[str, float]] = []

    def _key(self, ratios: Mapping[str, float]) -> float:
        return sum(self.direction[k] * v for k, v in ratios.items())

    def close(self, ratios: Mapping[str, float]) -> bool:
        key = self._key(ratios)
        start = bisect.bisect_left(self.keys, key - DUPLICATE_DISTANCE)
        stop = bisect.bisect_right(self.keys, key + DUPLICATE_DISTANCE)
        return any(_distance(ratios, self.vectors[i]) < DUPLICATE_DISTANCE for i in range(start, stop))

    def add(self, ratios: Mapping[str, float]) -> None:
        key = self._key(ratios)
        at = bisect.bisect_left(self.keys, key)
        self.keys.insert(at, key)
        self.vectors.insert(at, ratios)


def _distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    return math.sqrt(sum((a[k] - b[k]) ** 2 for k in a))
