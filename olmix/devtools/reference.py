"""Markdown reference pages rendered from the JSON Schemas (one page per schema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

PAGES = {"mixture": "config-reference.md", "study": "study-reference.md"}


def _ref_name(node: Schema) -> str | None:
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _resolve(root: Schema, node: Schema) -> Schema:
    name = _ref_name(node)
    if name is None:
        return node
    merged = dict(root["$defs"][name])
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _type(root: Schema, node: Schema) -> str:
    name = _ref_name(node)
    target = _resolve(root, node)
    if name and (target.get("type") == "object" or ("oneOf" in target and "type" not in target)):
        return f"[{name}](#{name.lower()})"
    if target.get("type") == "array":
        return f"list of {_type(root, target.get('items', {}))}"
    if target.get("type") == "object" and "additionalProperties" in target:
        values = target["additionalProperties"]
        return f"map of name → {_type(root, values) if isinstance(values, dict) else 'any'}"
    return str(target.get("type", "any"))


def _constraints(node: Schema) -> str:
    parts = []
    for key, text in (
        ("minimum", "≥ {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "≤ {}"),
        ("exclusiveMaximum", "< {}"),
        ("minItems", "at least {} item(s)"),
        ("minLength", "at least {} character(s)"),
        ("pattern", "matches `{}`"),
    ):
        if key in node:
            parts.append(text.format(node[key]))
    if "oneOf" in node and all("const" in branch for branch in node["oneOf"]):
        parts.append(", ".join(f"`{b['const']}` ({b.get('description', '')})" for b in node["oneOf"]))
    if "enum" in node:
        parts.append(", ".join(f"`{v}`" for v in node["enum"]))
    return "; ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(root: Schema, obj: Schema) -> list[str]:
    required = set(obj.get("required", []))
    lines = ["| field | type | default | allowed | description |", "| --- | --- | --- | --- | --- |"]
    for name, prop in obj.get("properties", {}).items():
        target = _resolve(root, prop)
        default = f"`{json.dumps(target['default'])}`" if "default" in target else ""
        field = f"`{name}`" + (" (required)" if name in required else "")
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (field, _type(root, prop), default, _constraints(target), target.get("description", ""))
            )
            + " |"
        )
    return lines


def render(schema: Schema) -> str:
    out = [
        f"# {schema.get('title', 'Schema')} reference",
        "",
        "Generated from the JSON Schema by `make generate`; do not edit by hand.",
        "",
        f"Schema `$id`: `{schema.get('$id', '')}`",
        "",
        schema.get("description", ""),
        "",
        "## Top level",
        "",
        *_table(schema, schema),
        "",
    ]
    for name, node in schema.get("$defs", {}).items():
        if node.get("type") != "object" and "oneOf" not in node:
            continue
        if "oneOf" in node and all("const" in b for b in node["oneOf"]):
            continue
        out += [f"## {name}", "", node.get("description", ""), ""]
        if "oneOf" in node:
            alts = [f"[{_ref_name(b)}](#{str(_ref_name(b)).lower()})" for b in node["oneOf"]]
            out += ["Exactly one of these shapes:", "", *[f"- {a}" for a in alts], ""]
        else:
            out += [*_table(schema, node), ""]
    return "\n".join(out).rstrip() + "\n"


def render_all(schema_dir: Path, docs: Path) -> None:
    for stem, page in PAGES.items():
        schema = json.loads((schema_dir / f"{stem}.schema.json").read_text())
        (docs / page).write_text(render(schema))
