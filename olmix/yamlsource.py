"""YAML text to JSON-like data, remembering where every key and value stands.

Scalars follow the YAML 1.2 core schema, as editors and other languages' YAML
libraries do: `yes`, `on` and `2024-01-01` are strings, not a boolean and a
date. Duplicate keys, non-finite numbers and tags other than the core ones are
errors, so every parser of a file that loads sees the same data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from olmix.errors import ConfigError, JsonPath, Problem

_Base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class _Loader(_Base):  # type: ignore[misc]
    """Composes nodes only; scalars are resolved by YAML 1.2 rules in _Builder.scalar."""

    _DEFAULTS: ClassVar[dict[type[Any], str]] = {
        yaml.ScalarNode: "?",  # not yet resolved
        yaml.SequenceNode: "tag:yaml.org,2002:seq",
        yaml.MappingNode: "tag:yaml.org,2002:map",
    }

    def resolve(self, kind: type[Any], value: Any, implicit: Any) -> str:
        return self._DEFAULTS[kind]

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOAT = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_STR_TAG = "tag:yaml.org,2002:str"
_CORE_TAGS = {"?", *(f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "str"))}


@dataclass
class Positions:
    """1-based (line, column) of each value and each mapping key, by JSON path."""

    values: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: JsonPath) -> tuple[int, int]:
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, (1, 1))

    def of_key(self, path: JsonPath) -> tuple[int, int]:
        return self.keys.get(path) or self.of_value(path)


@dataclass
class Document:
    file: str
    data: Any
    positions: Positions
    origins: dict[JsonPath, str] = field(default_factory=dict)  # path -> the `--set` that wrote it

    def problem(self, path: JsonPath, message: str, *, at_key: bool = False) -> Problem:
        for depth in range(len(path), 0, -1):
            if (origin := self.origins.get(path[:depth])) is not None:
                return Problem(origin, 0, 0, path, message)
        line, col = self.positions.of_key(path) if at_key else self.positions.of_value(path)
        return Problem(self.file, line, col, path, message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.positions = Positions()
        self.problems: list[Problem] = []

    def fail(self, node: yaml.Node, path: JsonPath, message: str) -> None:
        line, col = _mark(node)
        self.problems.append(Problem(self.file, line, col, path, message))

    def build(self, node: yaml.Node, path: JsonPath) -> Any:
        self.positions.values[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)  # the only other node kind
        return self.scalar(node, path)

    def mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, path, "a key must be a plain name, not a list or mapping")
                continue
            key = key_node.value
            if key in out:
                first = self.positions.keys[(*path, key)]
                self.fail(key_node, (*path, key), f"duplicate key '{key}' (first given at line {first[0]})")
                continue
            self.positions.keys[(*path, key)] = _mark(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out

    def scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        text = node.value
        if node.tag not in _CORE_TAGS:
            self.fail(node, path, f"unsupported YAML tag {node.tag}")
            return None
        if node.style or node.tag == _STR_TAG:  # quoted, block or !!str (plain style: None or "")
            return text
        if _NULL.match(text):
            return None
        if text in _BOOL:
            return _BOOL[text]
        if _INT.match(text):
            return int(text)
        if _OCT.match(text):
            return int(text[2:], 8)
        if _HEX.match(text):
            return int(text[2:], 16)
        if _FLOAT.match(text):
            value = float(text)
            if math.isfinite(value):
                return value
        if _FLOAT.match(text) or _SPECIAL_FLOAT.match(text):
            self.fail(node, path, f"{text} is not a finite number")
            return None
        return text


def _is_empty(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.value == "" and not node.style)


def _one(file: str, line: int, col: int, message: str) -> ConfigError:
    return ConfigError([Problem(file, line, col, (), message)])


def _root(raw: bytes, file: str) -> yaml.Node | None:
    """The node of the file's one YAML document (None when there is none); ConfigError if it is not YAML."""
    if b"\x00" in raw:
        raise _one(file, 1, 1, "binary file, not YAML text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _one(file, line, col, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "cannot parse"
        raise _one(file, line, col, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise _one(file, 1, 1, f"YAML error: {exc}") from None
    if len(nodes) > 1:
        line, col = _mark(nodes[1])
        raise _one(file, line, col, "more than one YAML document; a config holds exactly one")
    return nodes[0] if nodes else None


def _build(root: yaml.Node, file: str) -> Document:
    builder = _Builder(file)
    data = builder.build(root, ())
    if builder.problems:
        raise ConfigError(builder.problems)
    return Document(file, data, builder.positions)


def parse_any(raw: bytes, file: str) -> Document:
    """Like parse, but any top level (an empty file is null): what a schema, not olmix, is to judge."""
    root = _root(raw, file)
    if root is None:
        return Document(file, None, Positions())
    return _build(root, file)


def parse(raw: bytes, file: str) -> Document:
    """Parse one YAML document holding a mapping; raise ConfigError naming file, line and column."""
    root = _root(raw, file)
    if root is None or _is_empty(root):
        raise _one(file, 1, 1, "empty file: expected a mapping of experiment fields")
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else f"the scalar {root.value!r}"
        line, col = _mark(root)
        raise _one(file, line, col, f"the top level must be a mapping of experiment fields, not {kind}")
    return _build(root, file)
