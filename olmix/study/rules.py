"""The rules of a study beyond its schema: what JSON Schema cannot state.

Thresholds fall on bucket boundaries, each once, each keeping data under
every topic; names are unique among siblings; buckets and topics named in
`missing_buckets` and profiles exist; placeholders are known, and the ones
that make every experiment's name and every bucket's files distinct are
present. `config.check` runs these after the schema passed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from fractions import Fraction

from olmix.errors import Problem
from olmix.hints import Hints
from olmix.loading.yamlsource import Document
from olmix.study import thresholds
from olmix.study.study import FIELD, bucket_scheme, missing, profile_weights, topic_names
from olmix.study.thresholds import BucketScheme, ThresholdError

NAME_FIELDS = {"pct", "threshold", "profile"}
PATH_FIELDS = {"topic", "bucket"}


def _unique(doc: Document, names: list[str], path: tuple[str | int, ...], noun: str) -> Iterator[Problem]:
    first: dict[str, int] = {}  # by the name's NFKC form, as the mixture's rules compare names
    for i, name in enumerate(names):
        key = unicodedata.normalize("NFKC", name)
        if key in first:
            line = doc.positions.of_value((*path, first[key]))[0]
            other = names[first[key]]
            if other == name:
                yield doc.problem((*path, i), f"duplicate {noun} '{name}' (first at line {line})")
            else:
                yield doc.problem(
                    (*path, i),
                    f"duplicate {noun} '{name}' ({ascii(name)[1:-1]}): once normalised (Unicode NFKC) it is "
                    f"'{other}' ({ascii(other)[1:-1]}), first at line {line}; the two print alike",
                )
        else:
            first[key] = i


def _placeholders(
    doc: Document, path: tuple[str | int, ...], template: str, allowed: set[str], needed: list[str], hints: Hints
) -> Iterator[Problem]:
    used = set(FIELD.findall(template))
    for field in sorted(used - allowed):
        hint = hints.did_you_mean(field, allowed, shown="'{{{}}}'", otherwise=f" (known: {', '.join(sorted(allowed))})")
        yield doc.problem(path, f"unknown placeholder '{{{field}}}'{hint}")
    for field in needed:
        yield doc.problem(path, field)


def _bucket_names(
    doc: Document, path: tuple[str | int, ...], names: list[str], scheme: BucketScheme, hints: Hints
) -> Iterator[Problem]:
    valid = scheme.buckets()
    for i, name in enumerate(names):
        if name not in valid:
            hint = hints.did_you_mean(name, valid)
            yield doc.problem(
                (*path, i),
                f"no bucket '{name}' in the {scheme.prefix} scheme{hint} ({valid[0]} … {valid[-1]})",
            )


def check(doc: Document) -> list[Problem]:
    """Problems of a schema-valid study that its schema cannot state."""
    data = doc.data
    scheme = bucket_scheme(data)
    topics = topic_names(data)
    problems: list[Problem] = []
    hints = Hints()

    # thresholds on bucket boundaries, each once, each keeping some data under every topic
    seen: dict[Fraction, int] = {}
    for i, raw in enumerate(data["thresholds"]):
        try:
            value = thresholds.boundary(raw, scheme)
        except ThresholdError as exc:
            problems.append(doc.problem(("thresholds", i), str(exc)))
            continue
        if value in seen:
            line = doc.positions.of_value(("thresholds", seen[value]))[0]
            problems.append(doc.problem(("thresholds", i), f"duplicate threshold {raw} (first at line {line})"))
            continue
        seen[value] = i
        kept = thresholds.kept(value, scheme)
        for topic in topics or [""]:
            if not set(kept) - missing(data, topic):
                under = f"under topic {topic}" if topic else f"of {data['quality_source']['name']}"
                problems.append(
                    doc.problem(
                        ("thresholds", i),
                        f"threshold {raw} keeps only buckets missing {under} ({', '.join(kept)})",
                    )
                )

    problems += _unique(doc, topics, ("quality_source", "topics"), "topic")
    # names compared by their NFKC form, as the mixture's rules compare them: path and name of each first use
    quality_name = data["quality_source"]["name"]
    first_source: dict[str, tuple[tuple[str | int, ...], str]] = {
        unicodedata.normalize("NFKC", quality_name): (("quality_source", "name"), quality_name)
    }
    for i, source in enumerate(data.get("sources", [])):
        name = source["name"]
        key = unicodedata.normalize("NFKC", name)
        if key in first_source:
            where, other = first_source[key]
            line = doc.positions.of_value(where)[0]
            under = "" if other == name else f"; '{other}' under Unicode NFKC"
            problems.append(
                doc.problem(("sources", i, "name"), f"duplicate source name '{name}' (first at line {line}{under})")
            )
        else:
            first_source[key] = (("sources", i, "name"), name)

    spec = data.get("missing_buckets", {})
    problems += _bucket_names(doc, ("missing_buckets", "all"), spec.get("all", []), scheme, hints)
    for topic, names in spec.get("topics", {}).items():
        if topic not in topics:
            problems.append(_no_topic(doc, ("missing_buckets", "topics", topic), topic, topics, hints))
        problems += _bucket_names(doc, ("missing_buckets", "topics", topic), names, scheme, hints)

    profiles = data.get("profiles", [])
    problems += _unique(doc, [p["name"] for p in profiles], ("profiles",), "profile name")
    for i, profile in enumerate(profiles):
        path: tuple[str | int, ...] = ("profiles", i, "topic_weights")
        for topic in profile["topic_weights"]:
            if topic not in topics:
                problems.append(_no_topic(doc, (*path, topic), topic, topics, hints))
        if topics and not any(profile_weights(data, profile).values()):
            problems.append(doc.problem(path, "all topic weights are 0: at least one must be positive"))

    name_needs = []
    if len(data["thresholds"]) > 1 and not {"pct", "threshold"} & set(FIELD.findall(data["experiment"]["name"])):
        name_needs.append("needs {pct} or {threshold}: every threshold's experiment needs its own name")
    if len(profiles) > 1 and "{profile}" not in data["experiment"]["name"]:
        name_needs.append("needs {profile}: every profile's experiment needs its own name")
    experiment = data["experiment"]
    problems += _placeholders(doc, ("experiment", "name"), experiment["name"], NAME_FIELDS, name_needs, hints)
    if "description" in experiment:
        problems += _placeholders(doc, ("experiment", "description"), experiment["description"], NAME_FIELDS, [], hints)

    template = data["quality_source"]["path_template"]
    path_needs = []
    if "{bucket}" not in template:
        path_needs.append("needs {bucket}: every bucket has its own files")
    if topics and "{topic}" not in template:
        path_needs.append("needs {topic}: every topic has its own files")
    if not topics and "{topic}" in template:
        path_needs.append("has {topic} but the quality source has no topics")
    problems += _placeholders(doc, ("quality_source", "path_template"), template, PATH_FIELDS, path_needs, hints)
    return sorted(problems)


def _no_topic(doc: Document, path: tuple[str | int, ...], topic: str, topics: list[str], hints: Hints) -> Problem:
    if not topics:
        return doc.problem(path, f"'{topic}' is not a topic: the quality source has no topics", at_key=True)
    hint = hints.did_you_mean(topic, topics)
    return doc.problem(path, f"the quality source has no topic '{topic}'{hint}", at_key=True)
