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


def _constraints(node: Schema, root: Schema | None = None) -> str:
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
        if key == "pattern" and key in node and not str(node[key]).isascii() and "errorMessage" in node:
            parts.append(str(node["errorMessage"]))  # a pattern of characters a page cannot show: its rule in words
        elif key in node:
            parts.append(text.format(node[key]))
    if "oneOf" in node and all("const" in branch for branch in node["oneOf"]):
        parts.append(", ".join(f"`{b['const']}` ({b.get('description', '')})" for b in node["oneOf"]))
    if "enum" in node:
        parts.append(", ".join(f"`{v}`" for v in node["enum"]))
    if node.get("type") == "array" and isinstance(node.get("items"), dict) and root is not None:
        items = _resolve(root, node["items"])
        if items.get("type") != "object" and (inner := _constraints(items, root)):
            parts.append(f"each item: {inner}")
    return "; ".join(parts)


def _exactly_one(root: Schema, node: Schema) -> list[str] | None:
    """The keys that pick a shape of a oneOf of object shapes: each shape requires one of them, none allows two."""
    shapes = [_resolve(root, b) for b in node.get("oneOf", [])]
    if not shapes or not all(s.get("type") == "object" for s in shapes):
        return None
    required = [set(s.get("required", [])) for s in shapes]
    common = set.intersection(*required)
    keys = [k for r in required for k in sorted(r - common)]
    allowed = [set(s.get("properties", {})) for s in shapes]
    if any(len(set(keys) & a) != 1 for a in allowed) or any(s.get("additionalProperties") is not False for s in shapes):
        return None
    return keys


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
                for c in (field, _type(root, prop), default, _constraints(target, root), target.get("description", ""))
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
    rules = [(name, keys) for name, node in schema.get("$defs", {}).items() if (keys := _exactly_one(schema, node))]
    if rules:
        out += ["## Exactly-one rules", ""]
        for name, keys in rules:
            listed = ", ".join(f"`{k}`" for k in keys)
            out.append(
                f"- A [{name}](#{name.lower()}) has exactly one of {listed}: with none or with two, it is invalid."
            )
        out.append("")
    for name, node in schema.get("$defs", {}).items():
        if node.get("type") != "object" and "oneOf" not in node:
            continue
        if "oneOf" in node and all("const" in b for b in node["oneOf"]):
            continue
        out += [f"## {name}", "", node.get("description", ""), ""]
        if "oneOf" in node:
            alts = [f"[{_ref_name(b)}](#{str(_ref_name(b)).lower()})" for b in node["oneOf"]]
            out += ["Exactly one of these shapes:", "", *[f"- {a}" for a in alts], ""]
        elif "properties" not in node and isinstance(node.get("additionalProperties"), dict):
            values = node["additionalProperties"]
            key_rule = _constraints(node.get("propertyNames", {}), schema) or "any name"
            value_rule = "; ".join(filter(None, [_type(schema, values), _constraints(values, schema)]))
            out += [f"A mapping. Keys: {key_rule}. Values: {value_rule}.", ""]
        else:
            out += [*_table(schema, node), ""]
    return "\n".join(out).rstrip() + "\n"


def render_all(schema_dir: Path, docs: Path) -> None:
    for stem, page in PAGES.items():
        schema = json.loads((schema_dir / f"{stem}.schema.json").read_text())
        (docs / page).write_text(render(schema))
