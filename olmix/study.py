"""Quality-threshold studies: the rules beyond their schema, and the experiments they expand to.

A study (schema/study.schema.json) names a quality source split into equal
buckets, a list of thresholds and optional topic-weight profiles; it expands
to one experiment config per threshold (× profile). Everything here is pure:
data in, data out. Writing the files is the caller's business.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from olmix import thresholds, yamlsource, yamlwrite
from olmix.catalogue import MODELS, TOKENS_PER_PARAMETER
from olmix.errors import ConfigError, OlmixError, Problem, suggest
from olmix.thresholds import BucketScheme, ThresholdError
from olmix.yamlsource import Document

NAME_FIELDS = {"pct", "threshold", "profile"}
PATH_FIELDS = {"topic", "bucket"}
_FIELD = re.compile(r"\{([^{}]*)\}")


def bucket_scheme(data: dict[str, Any]) -> BucketScheme:
    spec = data["buckets"]
    if "scheme" in spec:
        return thresholds.scheme(spec["scheme"])
    return thresholds.scheme(prefix=spec["prefix"], count=spec["count"])


def fill(template: str, values: dict[str, str]) -> str:
    """`template` with each {field} replaced; fields not in `values` are left as written."""
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _topics(data: dict[str, Any]) -> list[str]:
    return list(data["quality_source"].get("topics", []))


def missing(data: dict[str, Any], topic: str) -> set[str]:
    """Buckets missing under `topic` ("" for a source without topics)."""
    spec = data.get("missing_buckets", {})
    return set(spec.get("all", [])) | set(spec.get("topics", {}).get(topic, []))


def profile_weights(data: dict[str, Any], profile: dict[str, Any]) -> dict[str, float]:
    """Every topic's weight under `profile`: as listed, else 1."""
    listed = profile["topic_weights"]
    return {topic: listed.get(topic, 1) for topic in _topics(data)}


# ---------------------------------------------------------------------------
# Rules beyond the schema


def _unique(doc: Document, names: list[str], path: tuple[str | int, ...], noun: str) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            line = doc.positions.of_value((*path, first[name]))[0]
            yield doc.problem((*path, i), f"duplicate {noun} '{name}' (first at line {line})")
        else:
            first.setdefault(name, i)


def _placeholders(
    doc: Document, path: tuple[str | int, ...], template: str, allowed: set[str], needed: list[str]
) -> Iterator[Problem]:
    used = set(_FIELD.findall(template))
    for field in sorted(used - allowed):
        near = suggest(field, allowed)
        hint = f"; did you mean '{{{near}}}'?" if near else f" (known: {', '.join(sorted(allowed))})"
        yield doc.problem(path, f"unknown placeholder '{{{field}}}'{hint}")
    for field in needed:
        yield doc.problem(path, field)


def _bucket_names(
    doc: Document, path: tuple[str | int, ...], names: list[str], scheme: BucketScheme
) -> Iterator[Problem]:
    valid = scheme.buckets()
    for i, name in enumerate(names):
        if name not in valid:
            near = suggest(name, valid)
            hint = f"; did you mean '{near}'?" if near else ""
            yield doc.problem(
                (*path, i),
                f"no bucket '{name}' in the {scheme.prefix} scheme{hint} ({valid[0]} … {valid[-1]})",
            )


def check(doc: Document) -> list[Problem]:
    """Problems of a schema-valid study that its schema cannot state."""
    data = doc.data
    scheme = bucket_scheme(data)
    topics = _topics(data)
    problems: list[Problem] = []

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
    first_source: dict[str, tuple[str | int, ...]] = {data["quality_source"]["name"]: ("quality_source", "name")}
    for i, source in enumerate(data.get("sources", [])):
        if source["name"] in first_source:
            line = doc.positions.of_value(first_source[source["name"]])[0]
            message = f"duplicate source name '{source['name']}' (first at line {line})"
            problems.append(doc.problem(("sources", i, "name"), message))
        else:
            first_source[source["name"]] = ("sources", i, "name")

    spec = data.get("missing_buckets", {})
    problems += _bucket_names(doc, ("missing_buckets", "all"), spec.get("all", []), scheme)
    for topic, names in spec.get("topics", {}).items():
        if topic not in topics:
            problems.append(_no_topic(doc, ("missing_buckets", "topics", topic), topic, topics))
        problems += _bucket_names(doc, ("missing_buckets", "topics", topic), names, scheme)

    profiles = data.get("profiles", [])
    problems += _unique(doc, [p["name"] for p in profiles], ("profiles",), "profile name")
    for i, profile in enumerate(profiles):
        path: tuple[str | int, ...] = ("profiles", i, "topic_weights")
        for topic in profile["topic_weights"]:
            if topic not in topics:
                problems.append(_no_topic(doc, (*path, topic), topic, topics))
        if topics and not any(profile_weights(data, profile).values()):
            problems.append(doc.problem(path, "all topic weights are 0: at least one must be positive"))

    name_needs = []
    if len(data["thresholds"]) > 1 and not {"pct", "threshold"} & set(_FIELD.findall(data["experiment"]["name"])):
        name_needs.append("needs {pct} or {threshold}: every threshold's experiment needs its own name")
    if len(profiles) > 1 and "{profile}" not in data["experiment"]["name"]:
        name_needs.append("needs {profile}: every profile's experiment needs its own name")
    experiment = data["experiment"]
    problems += _placeholders(doc, ("experiment", "name"), experiment["name"], NAME_FIELDS, name_needs)
    if "description" in experiment:
        problems += _placeholders(doc, ("experiment", "description"), experiment["description"], NAME_FIELDS, [])

    template = data["quality_source"]["path_template"]
    path_needs = []
    if "{bucket}" not in template:
        path_needs.append("needs {bucket}: every bucket has its own files")
    if topics and "{topic}" not in template:
        path_needs.append("needs {topic}: every topic has its own files")
    if not topics and "{topic}" in template:
        path_needs.append("has {topic} but the quality source has no topics")
    problems += _placeholders(doc, ("quality_source", "path_template"), template, PATH_FIELDS, path_needs)
    return sorted(problems)


def _no_topic(doc: Document, path: tuple[str | int, ...], topic: str, topics: list[str]) -> Problem:
    if not topics:
        return doc.problem(path, f"'{topic}' is not a topic: the quality source has no topics", at_key=True)
    near = suggest(topic, topics)
    hint = f"; did you mean '{near}'?" if near else ""
    return doc.problem(path, f"the quality source has no topic '{topic}'{hint}", at_key=True)


# ---------------------------------------------------------------------------
# Expansion


@dataclass(frozen=True)
class Experiment:
    """One experiment of a study, before it is rendered to a file."""

    relpath: str  # under the output folder: [PROFILE/]quality_top{pct}pct.yaml
    threshold: Fraction
    profile: str | None
    kept: tuple[str, ...]  # buckets the threshold keeps, worst first, before missing ones are left out
    excluded: dict[str, tuple[str, ...]]  # topic ("" without topics) -> kept buckets left out as missing
    config: dict[str, Any]


def _source(data: dict[str, Any], kept: list[str], weights: dict[str, float] | None) -> dict[str, Any]:
    spec = data["quality_source"]
    source: dict[str, Any] = {"name": spec["name"]}
    for key in ("weight", "max_repetition_factor"):
        if key in spec:
            source[key] = spec[key]

    def buckets(topic: str) -> list[dict[str, Any]]:
        gone = missing(data, topic)
        return [
            {"name": b, "paths": [fill(spec["path_template"], {"topic": topic, "bucket": b})]}
            for b in kept
            if b not in gone
        ]

    topics = _topics(data)
    if not topics:
        source["quality"] = buckets("")
        return source
    source["topics"] = []
    for topic in topics:
        entry: dict[str, Any] = {"name": topic}
        if weights is not None:
            entry["weight"] = weights[topic]
        entry["quality"] = buckets(topic)
        source["topics"].append(entry)
    return source


def expand(data: dict[str, Any]) -> list[Experiment]:
    """Every experiment of a checked study: thresholds in study order, within each profile in study order."""
    scheme = bucket_scheme(data)
    out = []
    for profile in data.get("profiles") or [None]:
        for raw in data["thresholds"]:
            value = thresholds.boundary(raw, scheme)
            kept = thresholds.kept(value, scheme)
            pct = thresholds.percent(value)
            values = {"pct": pct, "threshold": thresholds.show(value)}
            if profile is not None:
                values["profile"] = profile["name"]
            config: dict[str, Any] = {}
            for key, item in data["experiment"].items():
                config[key] = fill(item, values) if key in ("name", "description") else item
            config["varied"] = {"quality_threshold": float(value)}
            if profile is not None:
                config["varied"]["profile"] = profile["name"]
            weights = profile_weights(data, profile) if profile is not None else None
            config["sources"] = [_source(data, kept, weights), *data.get("sources", [])]
            excluded = {topic: tuple(b for b in kept if b in missing(data, topic)) for topic in _topics(data) or [""]}
            name = f"quality_top{pct}pct.yaml"
            out.append(
                Experiment(
                    f"{profile['name']}/{name}" if profile else name,
                    value,
                    profile["name"] if profile else None,
                    tuple(kept),
                    {t: b for t, b in excluded.items() if b},
                    config,
                )
            )
    return out


# ---------------------------------------------------------------------------
# Rendering


def _share(value: Fraction) -> str:
    return str(value) if value.denominator != 1 else str(value.numerator)


def _normalized(items: list[dict[str, Any]]) -> list[Fraction]:
    """Shares among siblings: weights normalized, or equal when none is set."""
    if not any("weight" in item for item in items):
        return [Fraction(1, len(items))] * len(items)
    weights = [thresholds.exact(item.get("weight", 0)) for item in items]
    total = sum(weights, Fraction(0))
    return [w / total for w in weights]


def shares_text(config: dict[str, Any]) -> str:
    """The planned shares of sources and topics (quality buckets go by tokens, known only at launch)."""
    sources = config["sources"]
    parts = []
    for source, share in zip(sources, _normalized(sources), strict=True):
        text = f"{source['name']} {_share(share)}"
        topics = source.get("topics", [])
        if topics:
            topic_shares = [share * s for s in _normalized(topics)]
            if len(set(topic_shares)) == 1:
                text += f" (each of its {len(topics)} topics {_share(topic_shares[0])})"
            else:
                each = zip(topics, topic_shares, strict=True)
                text += " (" + ", ".join(f"{t['name']} {_share(s)}" for t, s in each) + ")"
        parts.append(text)
    set_any = any("weight" in s for s in sources) or any("weight" in t for s in sources for t in s.get("topics", []))
    how = (
        "weights set in the study, normalized among siblings"
        if set_any
        else "no weights are set, so sources share equally, and so do the topics of a source"
    )
    return (
        f"Shares of the token budget ({how}): {'; '.join(parts)}. Quality buckets under one parent share in "
        "proportion to their tokens."
    )


def _budget_text(config: dict[str, Any]) -> str:
    model = config.get("proxy_model_id")
    multiple = config.get("chinchilla_multiple", 1.0)
    if model not in MODELS:  # absent: the study's schema accepts no other id
        return "Token budget: set by the proxy model at launch (no proxy_model_id in the study)."
    count = MODELS[model].parameters
    tokens = TOKENS_PER_PARAMETER * count * thresholds.exact(multiple)
    total = f"{tokens.numerator:,}" if tokens.denominator == 1 else f"{float(tokens):,.0f}"
    return (
        f"Token budget: {TOKENS_PER_PARAMETER} tokens/parameter × {count:,} parameters ({model}) "
        f"× chinchilla_multiple {multiple} = {total} tokens."
    )


def _kept_text(exp: Experiment, scheme: BucketScheme) -> str:
    value = thresholds.show(exp.threshold)
    pct = thresholds.percent(exp.threshold).replace("p", ".")
    first, last = exp.kept[0], exp.kept[-1]
    span = first if first == last else f"{first} … {last}"
    n = scheme.count
    return (
        f"Threshold {value}: the top {pct}% of {n} {scheme.prefix} buckets; bucket k is kept when "
        f"({n} − k + 1)/{n} ≤ {value}: {span} ({len(exp.kept)} of {n})."
    )


def _excluded_text(exp: Experiment, topics: list[str]) -> str:
    if not exp.excluded:
        return "Missing buckets left out: none."
    everywhere = set.intersection(*(set(exp.excluded.get(t, ())) for t in topics or [""]))
    parts = []
    if everywhere:
        where = "under every topic" if topics else ""
        parts.append(f"{', '.join(sorted(everywhere))} {where}".strip())
    for topic, names in exp.excluded.items():
        rest = [b for b in names if b not in everywhere]
        if rest:
            parts.append(f"{', '.join(rest)} under {topic}")
    return f"Missing buckets left out (not in the data): {'; '.join(parts)}."


def render(
    exp: Experiment,
    data: dict[str, Any],
    *,
    schema_ref: str,
    study_ref: str,
    config_ref: str,
    launch_from: str,
) -> str:
    """The text of one experiment config: modeline, comment header, then the config.

    schema_ref: the mixture schema, relative to the file; study_ref: the study as
    people should find it; config_ref: this file, as the launch command names it,
    run from `launch_from`.
    """
    scheme = bucket_scheme(data)
    paragraphs = [
        f"{exp.config['name']}: generated by `olmix generate quality-thresholds` from {study_ref}. Change the "
        "study and regenerate rather than editing this file.",
        _kept_text(exp, scheme),
        _excluded_text(exp, _topics(data)),
        *([f"Topic weights: profile {exp.profile}."] if exp.profile else []),
        _budget_text(exp.config),
        shares_text(exp.config),
        f"Launch (from {launch_from}):",
    ]
    lines = [f"# yaml-language-server: $schema={schema_ref}"]
    for paragraph in paragraphs:
        lines += textwrap.wrap(
            paragraph,
            width=110,
            initial_indent="# ",
            subsequent_indent="#   ",
            break_on_hyphens=False,
            break_long_words=False,
        )
    lines.append(f"#   olmix launch run --config {config_ref}")
    return "\n".join(lines) + "\n" + yamlwrite.dump(exp.config)


# ---------------------------------------------------------------------------
# Files


def project_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding schema/mixture.schema.json."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "schema" / "mixture.schema.json").is_file():
            return folder
    return None


def _posix_rel(target: Path, base: Path) -> str:
    return Path(os.path.relpath(target, base)).as_posix()


def files(doc: Document, out_dir: Path) -> list[tuple[Path, bytes]]:
    """Each experiment file of a checked study under `out_dir`, with its bytes; every one validated.

    Paths in the files are relative, so the bytes depend only on where the study
    and the output folder lie in the project (the nearest folder above the
    output holding schema/mixture.schema.json), not on the working directory.
    """
    from olmix import config, schemas

    out_dir = out_dir.resolve()
    study_path = Path(doc.file).resolve()
    root = project_root(out_dir)
    result = []
    problems: list[Problem] = []
    for exp in expand(doc.data):
        path = out_dir / exp.relpath
        if root is not None:
            schema = root / "schema" / "mixture.schema.json"
            config_ref, launch_from = _posix_rel(path, root), "the project root"
            inside = study_path.is_relative_to(root)
            study_ref = _posix_rel(study_path, root) if inside else _posix_rel(study_path, path.parent)
        else:
            schema = schemas.path("mixture")
            config_ref, launch_from = exp.relpath, "the output folder"
            study_ref = _posix_rel(study_path, path.parent)
        text = render(
            exp,
            doc.data,
            schema_ref=_posix_rel(schema, path.parent),
            study_ref=study_ref,
            config_ref=config_ref,
            launch_from=launch_from,
        )
        rendered = yamlsource.parse(text.encode("utf-8"), str(path))
        if rendered.data != exp.config:  # the writer must round-trip; never ship a file that reads differently
            raise OlmixError(f"{path}: the written YAML does not read back as the experiment (a bug in olmix)")
        problems += config.check(rendered, "mixture")[1]
        result.append((path, text.encode("utf-8")))
    if problems:
        raise ConfigError(problems)
    return result


def stale(out_dir: Path, planned: list[Path]) -> list[Path]:
    """Experiment files under `out_dir` that the study no longer produces."""
    keep = {p.resolve() for p in planned}
    found = [*out_dir.glob("quality_top*pct.yaml"), *out_dir.glob("*/quality_top*pct.yaml")]
    return sorted(p for p in found if p.resolve() not in keep)
