"""Rules JSON Schema cannot state, checked after the schema has passed.

They are listed in the schema's descriptions too:
- names are unique among siblings (sources; a source's topics; a parent's
  quality buckets) once normalised (Unicode NFKC), so leaf names are unique
  and no two print alike;
- among siblings, `weight` is set on all or none, and not all weights are 0;
- names used in `fixed_source_weights`, `manual_prior`, `manual_topic_prior`
  and `nonzero_weight` name a source, topic or leaf of the mixture.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator
from typing import Any

from olmix.errors import FILE_ORDER, JsonPath, Problem
from olmix.hints import Hints
from olmix.loading.yamlsource import Document


def _siblings(doc: Document, items: list[dict[str, Any]], path: JsonPath, noun: str) -> Iterator[Problem]:
    first: dict[str, int] = {}  # by the name's NFKC form: 'Å' (U+212B) and 'Å' (U+00C5) print alike
    for i, item in enumerate(items):
        name = item["name"]
        key = unicodedata.normalize("NFKC", name)
        if key not in first:
            first[key] = i
            continue
        other = items[first[key]]["name"]
        line = doc.positions.of_value((*path, first[key], "name"))[0]
        if other == name:
            yield doc.problem((*path, i, "name"), f"duplicate {noun} name '{name}' (first used at line {line})")
        else:
            yield doc.problem(
                (*path, i, "name"),
                f"duplicate {noun} name '{name}' ({ascii(name)[1:-1]}): once normalised (Unicode NFKC) it is "
                f"'{other}' ({ascii(other)[1:-1]}), first used at line {line}; the two print alike",
            )
    weighted = [i for i, item in enumerate(items) if "weight" in item]
    if weighted and len(weighted) < len(items):
        missing = [items[i]["name"] for i in range(len(items)) if i not in weighted]
        fixes = [_fix(item, [items[i]["weight"] for i in weighted]) for item in items if "weight" not in item]
        yield doc.problem(
            (*path, weighted[0], "weight"),
            f"weight is set on some {noun}s but not on {', '.join(missing)}: set it on all siblings or none, "
            f"e.g. {'; '.join(fixes)}",
        )
    elif weighted and all(item["weight"] == 0 for item in items):
        yield doc.problem((*path, 0, "weight"), f"all {noun} weights are 0: at least one must be positive")


def _fix(item: dict[str, Any], set_weights: list[float]) -> str:
    """A weight to give an unweighted sibling: its children's total when they all carry one, else the mean
    of the weights its siblings carry."""
    for key, child_noun in (("topics", "topics"), ("quality", "quality buckets")):
        children = item.get(key, [])
        if children and all("weight" in child for child in children):
            total = math.fsum(child["weight"] for child in children)
            if math.isfinite(total):
                return f"weight: {total:.6g} on {item['name']} (its {child_noun}' weights total {total:.6g})"
    mean = math.fsum(w / len(set_weights) for w in set_weights)
    return f"weight: {mean:.6g} on {item['name']} (the mean of the weights set)"


def _walk(
    doc: Document, items: list[dict[str, Any]], path: JsonPath, noun: str, prefix: str, names: dict[str, set[str]]
) -> Iterator[Problem]:
    yield from _siblings(doc, items, path, noun)
    for i, item in enumerate(items):
        full = f"{prefix}{item['name']}"
        names["nodes"].add(full)
        names[noun].add(item["name"])
        for key, child_noun in (("topics", "topic"), ("quality", "quality bucket")):
            if key in item:
                yield from _walk(doc, item[key], (*path, i, key), child_noun, f"{full}:", names)


def check(doc: Document) -> list[Problem]:
    data = doc.data
    names: dict[str, set[str]] = {"nodes": set(), "source": set(), "topic": set(), "quality bucket": set()}
    problems = list(_walk(doc, data["sources"], ("sources",), "source", "", names))
    hints = Hints()
    for key, noun in (("fixed_source_weights", "source"), ("manual_prior", "source"), ("manual_topic_prior", "topic")):
        for name in data.get(key, {}):
            if name not in names[noun]:
                hint = hints.did_you_mean(name, names[noun])
                problems.append(doc.problem((key, name), f"no {noun} is named '{name}'{hint}", at_key=True))
    for i, name in enumerate(data.get("nonzero_weight", [])):
        if name not in names["nodes"]:
            hint = hints.did_you_mean(name, names["nodes"])
            problems.append(doc.problem(("nonzero_weight", i), f"no source, topic or leaf is named '{name}'{hint}"))
    return sorted(problems, key=FILE_ORDER)
