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
        )


@dataclass(frozen=True)
class Variant:
    """One sampled mixture: the share of every node within its parent, and the leaves' ratios."""

    shares: dict[str, float]  # node full name -> share among its siblings (sums to 1 per group)
    ratios: dict[str, float]  # leaf name -> ratio of the whole mixture
    strength: float


@dataclass
class _Tree:
    groups: list[Group]
    tokens: dict[str, int]  # every node -> tokens under it
    caps: dict[str, float]  # leaf -> repetition cap
    topic_caps: dict[str, float]  # topic -> max_topic_ratio
    leaves: list[str]
    rejected: Counter[str] = field(default_factory=Counter)


def strengths(low: float, high: float) -> list[float]:
    """The strength grid: one value when min = max, else STRENGTH_STEPS log-spaced values."""
    if low > high:
        raise SwarmError(f"minimum strength {low} is larger than maximum strength {high}")
    if low == high:
        return [low]
    step = (math.log(high) - math.log(low)) / (STRENGTH_STEPS - 1)
    return [math.exp(math.log(low) + i * step) for i in range(STRENGTH_STEPS)]


def _tree(lvs: Sequence[Leaf], tokens: Mapping[str, int], allow_repetition: bool) -> _Tree:
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
        caps[leaf.name] = leaf.max_repetition_factor if allow_repetition else 1.0
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
    total = sum(raw)
    if total <= 0:
        raise SwarmError(f"'{group.parent or 'the mixture'}': its children hold no tokens and have no prior")
    tempered = [(r / total) ** temperature if r > 0 else 0.0 for r in raw]
    scale = sum(tempered)
    return [t / scale for t in tempered]


def _dirichlet(rng: random.Random, alphas: Sequence[float]) -> list[float] | None:
    draws = [rng.gammavariate(a, 1.0) if a > 0 else 0.0 for a in alphas]
    total = sum(draws)
    return None if total <= 0 or not math.isfinite(total) else [d / total for d in draws]


def rounded(shares: Sequence[float]) -> list[float]:
    """Shares as multiples of 1/ROUNDING that sum to exactly 1 (largest remainder)."""
    scaled = [s * ROUNDING for s in shares]
    units = [math.floor(s) for s in scaled]
    order = sorted(range(len(shares)), key=lambda i: (units[i] - scaled[i], i))
    for i in order[: ROUNDING - sum(units)]:
        units[i] += 1
    return [u / ROUNDING for u in units]


def _clip(shares: list[float], minimum: float) -> list[float]:
    kept = [s if s >= minimum else 0.0 for s in shares]
    total = sum(kept)
    return [k / total for k in kept] if total > 0 else shares


def _draw(
    tree: _Tree, settings: Settings, priors: dict[str, list[float]], rng: random.Random, strength: tuple[float, float]
) -> dict[str, float] | None:
    shares: dict[str, float] = {}
    for group in tree.groups:
        if group.frozen is not None:
            drawn = list(group.frozen)
        elif group.level == "source" and settings.fixed_sources:
            fixed = settings.fixed_sources
            rest = 1.0 - sum(fixed.values())
            free = [c for c in group.children if c not in fixed]
            alphas = [p * strength[0] for c, p in zip(group.children, priors[group.parent], strict=True) if c in free]
            sampled = _dirichlet(rng, alphas) if free else []
            if sampled is None:
                return None
            it = iter(sampled)
            drawn = [fixed[c] if c in fixed else rest * next(it) for c in group.children]
        else:
            level_strength = strength[0] if group.level == "source" else strength[1]
            sampled = _dirichlet(rng, [p * level_strength for p in priors[group.parent]])
            if sampled is None:
                return None
            if group.level == "source":
                drawn = _clip(sampled, settings.minimum_source_weight)
            else:
                parent_share = 1.0  # clip relative to the source: the parent's share within its source
                name = group.parent
                while SEPARATOR in name:
                    parent_share *= shares.get(name, 0.0)
                    name = name.rpartition(SEPARATOR)[0]
                drawn = _clip(sampled, settings.minimum_topic_weight / parent_share) if parent_share > 0 else sampled
        for child, share in zip(group.children, rounded(drawn), strict=True):
            shares[child] = share
    return shares


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
    if settings.variants < 1:
        raise SwarmError(f"variants must be at least 1, not {settings.variants}")
    fixed = settings.fixed_sources
    if fixed:
        sources = tree.groups[0]
        if sources.frozen is not None:
            raise SwarmError("fixed_source_weights and a weight on every source both fix the sources; keep one")
        total = sum(fixed.values())
        free = [c for c in sources.children if c not in fixed]
        if total > 1 + 1e-9 or (not free and abs(total - 1) > 1e-9):
            raise SwarmError(f"fixed_source_weights sum to {total:g}; they must leave a share in [0, 1] to sample")


def sample(
    lvs: Sequence[Leaf], tokens: Mapping[str, int], budget: int, settings: Settings, *, allow_repetition: bool = True
) -> list[Variant]:
    """`settings.variants` mixtures over `lvs` (tokens per leaf, `budget` tokens per run); SwarmError if impossible."""
    tree = _tree(lvs, tokens, allow_repetition)
    _check_settings(tree, settings)
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
    for draw in range(attempts):
        if len(kept) == settings.variants:
            break
        strength = grid[draw % len(grid)]
        shares = _draw(tree, settings, priors, rng, strength)
        if shares is None:
            rejected["a draw that underflowed to all zeros (strength too small for the prior)"] += 1
            continue
        why = _broken(tree, settings, shares, budget)
        if why is None:
            ratios = {leaf: _total(shares, leaf) for leaf in tree.leaves}
            if nearby.close(ratios):
                why = f"near-duplicate of a kept variant (L2 distance < {DUPLICATE_DISTANCE})"
            else:
                nearby.add(ratios)
                kept.append(Variant(shares, ratios, strength[0]))
                continue
        rejected[why] += 1
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
