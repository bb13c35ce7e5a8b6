"""Quality-threshold studies: the experiments a study expands to.

A study (schema/study.schema.json) names a quality source split into equal
buckets, a list of thresholds and optional topic-weight profiles; it expands
to one experiment config per threshold (× profile), each recording what the
study varied. Everything here is pure: data in, data out. The rest of a
study's way to files lives beside it: `studyrules` (the rules beyond its
schema), `studyheader` (the comment header that explains each experiment),
`studyfiles` (where each file goes, its bytes, and stale files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from olmix.study import thresholds
from olmix.study.thresholds import BucketScheme

FIELD = re.compile(r"\{([^{}]*)\}")
"""A {placeholder} in a name, description or path template."""


def bucket_scheme(data: dict[str, Any]) -> BucketScheme:
    spec = data["buckets"]
    if "scheme" in spec:
        return thresholds.scheme(spec["scheme"])
    return thresholds.scheme(prefix=spec["prefix"], count=spec["count"])


def fill(template: str, values: dict[str, str]) -> str:
    """`template` with each {field} replaced; fields not in `values` are left as written."""
    return FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def topic_names(data: dict[str, Any]) -> list[str]:
    """The quality source's topics; empty for a source without topics."""
    return list(data["quality_source"].get("topics", []))


def missing(data: dict[str, Any], topic: str) -> set[str]:
    """Buckets missing under `topic` ("" for a source without topics)."""
    spec = data.get("missing_buckets", {})
    return set(spec.get("all", [])) | set(spec.get("topics", {}).get(topic, []))


def profile_weights(data: dict[str, Any], profile: dict[str, Any]) -> dict[str, float]:
    """Every topic's weight under `profile`: as listed, else 1."""
    listed = profile["topic_weights"]
    return {topic: listed.get(topic, 1) for topic in topic_names(data)}


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

    topics = topic_names(data)
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
            excluded = {
                topic: tuple(b for b in kept if b in missing(data, topic)) for topic in topic_names(data) or [""]
            }
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
