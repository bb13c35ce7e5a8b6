"""JSON Schema validation with messages a researcher understands.

python-jsonschema decides validity; this module only turns its errors into
problems placed on the offending key or value. A failed `oneOf` between
object shapes (a source's paths / topics / quality) is explained by the keys
that pick a shape: none, several, or the one shape the user evidently meant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from jsonschema.exceptions import ValidationError

from olmix.errors import FILE_ORDER, JsonPath, Problem
from olmix.hints import Hints
from olmix.loading.yamlsource import Document

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "null",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    return "a list" if isinstance(value, list) else "a mapping"


def _json_types(value: Any) -> set[str]:
    """The JSON Schema types `value` is an instance of."""
    if value is None:
        return {"null"}
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return {"integer", "number"}
    if isinstance(value, float):
        return {"number"}
    if isinstance(value, str):
        return {"string"}
    return {"array"} if isinstance(value, list) else {"object"}


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _shapes(root: dict[str, Any], schema: dict[str, Any]) -> list[tuple[dict[str, Any], set[str]]]:
    """For a oneOf of object shapes: each shape and the keys only it requires."""
    branches = [_resolve(root, b) for b in schema["oneOf"]]
    if not all(b.get("type") == "object" for b in branches):
        return []
    required = [set(b.get("required", [])) for b in branches]
    common = set.intersection(*required)
    return [(b, r - common) for b, r in zip(branches, required, strict=True)]


def _noun(path: JsonPath) -> str:
    parent = next((p for p in reversed(path) if isinstance(p, str)), "")
    nouns = {"sources": "a source", "topics": "a topic", "quality": "a quality bucket", "buckets": "a bucket scheme"}
    return nouns.get(parent, "this item")


def _or(words: list[str]) -> str:
    quoted = [f"'{w}'" for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


class _Explainer:
    def __init__(self, doc: Document, root: dict[str, Any]) -> None:
        self.doc = doc
        self.root = root
        self.hints = Hints()

    def explain(self, error: ValidationError) -> Iterator[Problem]:
        path: JsonPath = tuple(error.absolute_path)
        schema = error.schema if isinstance(error.schema, dict) else {}
        value: Any = error.instance
        kind = str(error.validator)
        expected: Any = error.validator_value
        if "propertyNames" in error.relative_schema_path and isinstance(value, str):
            # The instance is a key of the mapping at `path`: place the problem on that key.
            yield self.doc.problem((*path, value), f"key {self.message(kind, expected, value, schema)}", at_key=True)
            return
        if kind == "oneOf" and (shapes := _shapes(self.root, schema)):
            if isinstance(value, dict):
                yield from self.explain_shapes(error, path, value, shapes)
            else:
                yield self.doc.problem(path, f"{self.message('type', 'object', value, schema)}")
            return
        if kind == "oneOf" and all("const" in b for b in schema.get("oneOf", [])):
            allowed = [b["const"] for b in schema["oneOf"]]
            yield self.enum_problem(path, value, allowed)
            return
        if kind == "enum":
            yield self.enum_problem(path, value, list(expected))
            return
        if kind == "additionalProperties" and isinstance(value, dict):
            properties = schema.get("properties", {})
            for key in value:
                if key not in properties:
                    yield self.unknown_key(path, key, value[key], properties)
            return
        if kind == "required":
            missing = [k for k in expected if k not in value]
            for key in missing:
                yield self.doc.problem(path, f"missing required key '{key}'")
            return
        yield self.doc.problem(path, self.message(kind, expected, value, schema))

    def explain_shapes(
        self,
        error: ValidationError,
        path: JsonPath,
        value: dict[str, Any],
        shapes: list[tuple[dict[str, Any], set[str]]],
    ) -> Iterator[Problem]:
        keys = [k for _, own in shapes for k in sorted(own)]
        present = [k for k in keys if k in value]
        noun = _noun(path)
        # keys of two shapes at once; several keys of one shape (a bucket scheme's prefix and count) pick it
        if len({i for i, (_, own) in enumerate(shapes) if own & set(present)}) > 1:
            lines = ", ".join(f"'{k}' (line {self.doc.positions.of_key((*path, k))[0]})" for k in present)
            yield self.doc.problem(path, f"{noun} has exactly one of {_or(keys)}, but this one has {lines}")
            yield from self.unknown_keys(path, value, shapes)
            return
        if not present:
            yield self.doc.problem(path, f"{noun} needs exactly one of {_or(keys)}; none is given")
            yield from self.unknown_keys(path, value, shapes)
            return
        index = next(i for i, (_, own) in enumerate(shapes) if present[0] in own)
        for sub in error.context or []:
            if sub.relative_schema_path and sub.relative_schema_path[0] == index:
                yield from self.explain(sub)

    def unknown_keys(
        self, path: JsonPath, value: dict[str, Any], shapes: list[tuple[dict[str, Any], set[str]]]
    ) -> Iterator[Problem]:
        properties = {k: v for shape, _ in shapes for k, v in shape.get("properties", {}).items()}
        for key in value:
            if key not in properties:
                yield self.unknown_key(path, key, value[key], dict(sorted(properties.items())))

    def unknown_key(self, path: JsonPath, key: str, value: Any, properties: dict[str, Any]) -> Problem:
        # only a key whose schema takes this kind of value is a likely typo: `swarm: {variants: 4}` is not `slurm`
        fitting = [name for name, schema in properties.items() if self.fits(value, schema)]
        hint = self.hints.did_you_mean(key, fitting, otherwise=f"; allowed keys: {', '.join(properties)}")
        return self.doc.problem((*path, key), f"unknown key '{key}'{hint}", at_key=True)

    def fits(self, value: Any, schema: Any) -> bool:
        """Whether `value` has the JSON type `schema` takes, and, for a mapping, shares a key with its properties."""
        if not isinstance(schema, dict):
            return True
        schema = _resolve(self.root, schema)
        branches = schema.get("oneOf") or schema.get("anyOf")
        if branches and "type" not in schema:
            return any(self.fits(value, branch) for branch in branches)
        wanted = schema.get("type")
        if wanted is None:
            return True
        types = {wanted} if isinstance(wanted, str) else set(wanted)
        if not types & _json_types(value):
            return False
        closed = isinstance(value, dict) and value and schema.get("additionalProperties") is False
        return not closed or bool(set(value) & set(schema.get("properties", {})))

    def enum_problem(self, path: JsonPath, value: Any, allowed: list[Any]) -> Problem:
        hint = self.hints.did_you_mean(value, [str(a) for a in allowed]) if isinstance(value, str) else ""
        choices = ", ".join(str(a) for a in allowed)
        return self.doc.problem(path, f"{_kind(value)} is not allowed{hint} (allowed: {choices})")

    @staticmethod
    def message(kind: str, expected: Any, value: Any, schema: dict[str, Any]) -> str:
        if kind == "type":
            wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in ([expected] if isinstance(expected, str) else expected))
            return f"must be {wanted}, not {_kind(value)}"
        if kind == "minimum":
            return f"must be at least {expected}, not {value}"
        if kind == "exclusiveMinimum":
            return f"must be greater than {expected}, not {value}"
        if kind == "maximum":
            return f"must be at most {expected}, not {value}"
        if kind == "exclusiveMaximum":
            return f"must be less than {expected}, not {value}"
        if kind == "minItems":
            return "must not be empty" if expected == 1 else f"needs at least {expected} items"
        if kind == "minLength":
            return "must not be empty" if expected == 1 else f"needs at least {expected} characters"
        if kind in ("pattern", "not") and schema.get("title") == "Name" and isinstance(value, str):
            return _bad_name(value, str(schema["pattern"]), str(schema["errorMessage"]))
        if kind in ("pattern", "maxLength", "not") and "errorMessage" in schema:
            # The schema's own words, as an editor shows them; the value is quoted (escaped) and cut short.
            shown = json.dumps(value[:60] + "…" if isinstance(value, str) and len(value) > 60 else value)
            return "must not be empty" if value == "" else f"{shown}: {schema['errorMessage']}"
        if kind == "pattern" and expected == "^[^:]+$":  # a name used as a key (manual_prior and friends)
            if value == "":
                return "must not be empty"
            return f"{json.dumps(value)} must not contain ':' (it separates the parts of leaf names)"
        if kind == "pattern":
            return f"{json.dumps(value)} does not match the pattern {expected}"
        if kind == "propertyNames":
            return "has an invalid key"
        if kind == "false":
            return "is not allowed here"
        return f"{_kind(value)} is not valid here ({kind})"


def _bad_name(value: str, pattern: str, rule: str) -> str:
    """Why a name fails the schema's Name pattern, naming the first character at fault."""
    import re
    import unicodedata

    shown = json.dumps(value[:60] + "…" if len(value) > 60 else value)  # JSON escapes show an invisible character
    if value == "":
        return "must not be empty"
    if ":" in value:
        return f"{shown} must not contain ':' (it separates the parts of leaf names)"
    if value.startswith(" ") or value.endswith(" "):
        return f"{shown} starts or ends with a space: {rule}"
    # the pattern accepts a single allowed character, so each character is judged by the schema itself
    for index, char in enumerate(value):
        if char != " " and not re.search(pattern, char):
            what = " ".join(filter(None, (f"U+{ord(char):04X}", unicodedata.name(char, ""))))
            return f"{shown} has {what} at character {index + 1}: {rule}"
    return f"{shown}: {rule}"


def check(doc: Document, schema_name: str = "mixture") -> list[Problem]:
    """Every schema problem of a parsed document, deduplicated, in file order."""
    from olmix import schemas

    explainer = _Explainer(doc, schemas.load(schema_name))
    problems = {p for err in schemas.validator(schema_name).iter_errors(doc.data) for p in explainer.explain(err)}
    return sorted(problems, key=FILE_ORDER)
