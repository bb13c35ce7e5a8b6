"""Rules JSON Schema cannot state, checked with the schema.

They run on a file the schema rejected too, on its parts that are well-formed
(a sibling that is a mapping with a string name; weights that are numbers),
so a file's problems are all reported at once.

They are listed in the schema's descriptions too:
- names are unique among siblings (sources; a source's topics; a parent's
  quality buckets) once normalised (Unicode NFKC), so leaf names are unique
  and no two print alike;
- among siblings, `weight` is set on all or none, and not all weights are 0;
- names used in `fixed_source_weights`, `manual_prior`, `manual_topic_prior`
  and `nonzero_weight` name a source, topic or leaf of the mixture;
- `slurm.sbatch_args`, read as sbatch reads them (abbreviated long options,
  short options with their values attached or clustered), set no option
  olmix sets itself and none that a `slurm` setting of the config sets, and
  every option is one sbatch knows, spelled so that it names one option.
- `eval_tasks` name tasks of ai2-olmo-eval or presets (olmix.training.tasks: a catalogue, so no extra is needed).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator
from typing import Any

from olmix.errors import FILE_ORDER, JsonPath, Problem
from olmix.hints import Hints
from olmix.loading.yamlsource import Document


def _named(items: Any) -> list[tuple[int, dict[str, Any]]]:
    """The siblings the rules can judge: mappings with a string name (the schema reports the others)."""
    if not isinstance(items, list):
        return []
    return [(i, item) for i, item in enumerate(items) if isinstance(item, dict) and isinstance(item.get("name"), str)]


def _is_weight(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _siblings(doc: Document, items: Any, path: JsonPath, noun: str) -> Iterator[Problem]:
    if not isinstance(items, list):
        return
    first: dict[str, int] = {}  # by the name's NFKC form: 'Å' (U+212B) and 'Å' (U+00C5) print alike
    named = _named(items)
    for i, item in named:
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
    if len(named) < len(items) or not all(_is_weight(item["weight"]) for _, item in named if "weight" in item):
        return  # weights among siblings the schema rejected are not judged
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
        children = item.get(key)
        if (
            isinstance(children, list)
            and children
            and all(isinstance(child, dict) and _is_weight(child.get("weight")) for child in children)
        ):
            total = math.fsum(child["weight"] for child in children)
            if math.isfinite(total):
                return f"weight: {total:.6g} on {item['name']} (its {child_noun}' weights total {total:.6g})"
    mean = math.fsum(w / len(set_weights) for w in set_weights)
    return f"weight: {mean:.6g} on {item['name']} (the mean of the weights set)"


def _walk(
    doc: Document, items: Any, path: JsonPath, noun: str, prefix: str, names: dict[str, set[str]]
) -> Iterator[Problem]:
    yield from _siblings(doc, items, path, noun)
    named = _named(items)
    if len(named) < (len(items) if isinstance(items, list) else 1):
        names["incomplete"].add(noun)  # a name here is unknown: references to this level are not judged
    for i, item in named:
        full = f"{prefix}{item['name']}"
        names["nodes"].add(full)
        names[noun].add(item["name"])
        for key, child_noun in (("topics", "topic"), ("quality", "quality bucket")):
            if key in item:
                yield from _walk(doc, item[key], (*path, i, key), child_noun, f"{full}:", names)


def check(doc: Document) -> list[Problem]:
    data = doc.data
    if not isinstance(data, dict):
        return []
    names: dict[str, set[str]] = {"nodes": set(), "source": set(), "topic": set(), "quality bucket": set()}
    names["incomplete"] = set()
    problems = list(_walk(doc, data.get("sources"), ("sources",), "source", "", names))
    hints = Hints()
    for key, noun in (("fixed_source_weights", "source"), ("manual_prior", "source"), ("manual_topic_prior", "topic")):
        mapping = data.get(key, {})
        if not isinstance(mapping, dict) or noun in names["incomplete"]:
            continue
        for name in mapping:
            if name not in names[noun]:
                hint = hints.did_you_mean(name, names[noun])
                problems.append(doc.problem((key, name), f"no {noun} is named '{name}'{hint}", at_key=True))
    from olmix.training import tasks

    asked = data.get("eval_tasks", [])
    if isinstance(asked, list) and all(isinstance(name, str) for name in asked):
        problems += [doc.problem(("eval_tasks", i), message) for i, message in tasks.problems(asked)]
    listed = data.get("nonzero_weight", [])
    for i, name in enumerate(listed if isinstance(listed, list) and not names["incomplete"] else []):
        if isinstance(name, str) and name not in names["nodes"]:
            hint = hints.did_you_mean(name, names["nodes"])
            problems.append(doc.problem(("nonzero_weight", i), f"no source, topic or leaf is named '{name}'{hint}"))
    problems += _sbatch_args(doc)
    return sorted(problems, key=FILE_ORDER)


def _sbatch_args(doc: Document) -> list[Problem]:
    slurm = doc.data.get("slurm") or {}
    args = slurm.get("sbatch_args") if isinstance(slurm, dict) else None
    if not args or not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        return []  # absent, or malformed: the schema says so
    from olmix.backends import sbatchopts

    problems = sbatchopts.check(args, [key for key, value in slurm.items() if value is not None])
    return [doc.problem(("slurm", "sbatch_args", p.index), p.message) for p in problems]
