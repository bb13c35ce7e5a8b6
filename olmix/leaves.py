"""Flatten a mixture into its leaves: what a trainer consumes.

| config shape                     | leaf name                                         |
| -------------------------------- | ------------------------------------------------- |
| source.paths                     | arxiv                                             |
| source.quality[]                 | arxiv:high                                        |
| source.topics[].paths            | dclm:software_development                         |
| source.topics[].quality[]        | all_dressed:software_development:vigintile_0018   |
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from olmix.errors import JsonPath

SEPARATOR = ":"
Level = Literal["source", "topic", "quality"]


@dataclass(frozen=True)
class Node:
    """One step of a leaf's ancestry: a source, topic or quality bucket."""

    level: Level
    name: str
    weight: float | None
    max_repetition_factor: float | None


@dataclass(frozen=True)
class Leaf:
    name: str
    paths: tuple[str, ...]
    max_repetition_factor: float
    ancestry: tuple[Node, ...]
    max_topic_ratio: float | None = None

    @property
    def source(self) -> str:
        return self.ancestry[0].name

    @property
    def parent(self) -> str:
        """Name of the node whose children are this leaf's siblings ("" for a source)."""
        return self.name.rpartition(SEPARATOR)[0]


def _node(level: Level, item: Any) -> Node:
    cap = item.max_repetition_factor if "max_repetition_factor" in item.model_fields_set else None
    return Node(level, item.name, item.weight, cap)


def _leaf(ancestry: tuple[Node, ...], paths: Any, topic_ratio: float | None) -> Leaf:
    cap = next((n.max_repetition_factor for n in reversed(ancestry) if n.max_repetition_factor), 1.0)
    name = SEPARATOR.join(n.name for n in ancestry)
    return Leaf(name, tuple(paths), cap, ancestry, topic_ratio)


def _children(ancestry: tuple[Node, ...], item: Any, topic_ratio: float | None) -> Iterator[Leaf]:
    if getattr(item, "paths", None) is not None:
        yield _leaf(ancestry, item.paths, topic_ratio)
        return
    for topic in getattr(item, "topics", None) or []:
        ratio = topic.max_topic_ratio if "max_topic_ratio" in topic.model_fields_set else None
        yield from _children((*ancestry, _node("topic", topic)), topic, ratio)
    for bucket in getattr(item, "quality", None) or []:
        yield _leaf((*ancestry, _node("quality", bucket)), bucket.paths, topic_ratio)


def leaves(config: Any) -> list[Leaf]:
    """The leaves of a validated ExperimentConfig, in config order."""
    return [leaf for source in config.sources for leaf in _children((_node("source", source),), source, None)]


def node_paths(data: dict[str, Any]) -> dict[str, JsonPath]:
    """Every source, topic and leaf name (':'-joined) -> its JSON path in the config."""
    out: dict[str, JsonPath] = {}

    def walk(items: list[dict[str, Any]], path: JsonPath, prefix: str) -> None:
        for i, item in enumerate(items):
            name = f"{prefix}{item['name']}"
            out[name] = (*path, i)
            for key in ("topics", "quality"):
                if key in item:
                    walk(item[key], (*path, i, key), f"{name}{SEPARATOR}")

    walk(data["sources"], ("sources",), "")
    return out
