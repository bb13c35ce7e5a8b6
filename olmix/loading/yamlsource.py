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
from typing import Any

import yaml

from olmix.errors import ConfigError, JsonPath, Problem

# libyaml's parser when available. Only its events are used: building data and
# positions from events is several times faster than composing PyYAML nodes.
_Parser: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOAT = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_STR_TAG = "tag:yaml.org,2002:str"
# What each typed core tag accepts, as the YAML 1.2 core schema (and so editors and other languages) reads it.
_TYPED: dict[str, Any] = {
    "tag:yaml.org,2002:null": _NULL.match,
    "tag:yaml.org,2002:bool": _BOOL.__contains__,
    "tag:yaml.org,2002:int": lambda t: _INT.match(t) or _OCT.match(t) or _HEX.match(t),
    "tag:yaml.org,2002:float": lambda t: (_FLOAT.match(t) and not _INT.match(t)) or _SPECIAL_FLOAT.match(t),
}
_TYPED_NAMES = {
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:bool": "true or false",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a float (with a '.' or an exponent)",
}
_CORE_TAGS = {None, "!", *(f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "str"))}
# A mapping or list may carry only the core schema's own tags (or none): `!!set`, `!!omap`, `!!python/...`
# and local `!foo` tags mean another type to the loaders that honour them, so they are refused, not dropped.
_MAP_TAG, _SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_MAX_EXPANDED = 100_000  # events that aliases may replay: a few anchors must not expand without bound
# A config nests about eight levels (sources, topics, quality buckets, paths); every later stage (schema
# validation, messages, models) walks the data recursively, so nesting is bounded where it is read.
MAX_DEPTH = 64
# Python refuses to convert integers of more than 4,300 digits to or from text (a guard against
# quadratic conversions); no setting needs more than a handful, so longer ones stop at the parser.
MAX_INT_DIGITS = 100


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


def _mark(event: Any) -> tuple[int, int]:
    return event.start_mark.line + 1, event.start_mark.column + 1


def _one(file: str, line: int, col: int, message: str) -> ConfigError:
    return ConfigError([Problem(file, line, col, (), message)])


_SCALAR, _ALIAS = yaml.ScalarEvent, yaml.AliasEvent
_SEQ_START, _MAP_START = yaml.SequenceStartEvent, yaml.MappingStartEvent
_STARTS = (_SEQ_START, _MAP_START)
_ENDS = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


@dataclass
class _Frame:
    container: Any  # the dict or list being filled
    path: JsonPath
    key: str | None = None  # in a mapping: the key whose value comes next


@dataclass
class _Recording:
    """The events of an anchored collection, aliases already expanded, until it closes."""

    anchor: str
    events: list[Any]
    depth: int = 0


class _Builder:
    """Data and positions from the parser's events, one event at a time.

    Aliases are expanded by replaying the events recorded for their anchor, so
    an aliased value is a fresh copy whose positions are the anchor's.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions = Positions()
        self.problems: list[Problem] = []
        self.anchors: dict[str, tuple[list[Any], tuple[int, int]]] = {}  # events, and where the anchor is
        self.recordings: list[_Recording] = []
        self.replayed = 0
        self.stack: list[_Frame] = []
        self.roots: list[tuple[Any, Any]] = []  # (value, first event) of each document
        self.skip_nodes = 0  # whole nodes still to pass over without building (after a bad key)
        self.skip_depth = 0

    def fail(self, event: Any, path: JsonPath, message: str) -> None:
        line, col = _mark(event)
        self.problems.append(Problem(self.file, line, col, path, message))

    # -- anchors and aliases ------------------------------------------------------------------------------

    def feed(self, event: Any) -> None:
        if type(event) is _ALIAS:
            self.alias(event)
            return
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self.define(anchor, event)
        self.take(event)

    def define(self, anchor: str, event: Any) -> None:
        first = self.anchors.get(anchor)
        if first is not None or any(r.anchor == anchor for r in self.recordings):
            where = f" (first at line {first[1][0]})" if first else ""
            line, col = _mark(event)
            raise _one(self.file, line, col, f"YAML anchor &{anchor} is defined twice{where}")
        if type(event) is _SCALAR:
            self.anchors[anchor] = ([event], _mark(event))
        else:
            self.recordings.append(_Recording(anchor, []))

    def alias(self, event: Any) -> None:
        name = event.anchor
        line, col = _mark(event)
        if any(r.anchor == name for r in self.recordings):
            raise _one(self.file, line, col, f"YAML alias *{name} is inside the value it refers to")
        if name not in self.anchors:
            raise _one(self.file, line, col, f"YAML alias *{name} has no anchor &{name} before it")
        events = self.anchors[name][0]
        self.replayed += len(events)
        if self.replayed > _MAX_EXPANDED:
            raise _one(self.file, line, col, f"YAML aliases expand to more than {_MAX_EXPANDED:,} values")
        for replayed in events:  # recorded with aliases expanded; anchors inside are not defined again
            self.take(replayed)

    def take(self, event: Any) -> None:
        if self.recordings:
            kind = type(event)
            step = 1 if kind in _STARTS else -1 if kind in _ENDS else 0
            for recording in self.recordings:
                recording.events.append(event)
                recording.depth += step
            if step < 0 and self.recordings[-1].depth == 0:
                done = self.recordings.pop()
                self.anchors[done.anchor] = (done.events, _mark(done.events[0]))
        self.node(event)

    # -- data and positions -------------------------------------------------------------------------------

    def node(self, event: Any) -> None:
        kind = type(event)
        if self.skip_nodes:
            if kind in _STARTS:
                self.skip_depth += 1
                return
            if kind in _ENDS:
                self.skip_depth -= 1
            if self.skip_depth == 0 and (kind is _SCALAR or kind in _ENDS):
                self.skip_nodes -= 1
            return
        if kind in _ENDS:
            frame = self.stack.pop()
            self.place(frame.container)
            return
        if kind is not _SCALAR and kind not in _STARTS:
            return  # stream and document boundaries
        stack = self.stack
        if not stack:
            if self.roots:
                line, col = _mark(event)
                raise _one(self.file, line, col, "more than one YAML document; a config holds exactly one")
            path: JsonPath = ()
            self.roots.append((None, event))
        else:
            top = stack[-1]
            if type(top.container) is dict:
                if top.key is None:
                    self.key(top, event, kind)
                    return
                path = (*top.path, top.key)
            else:
                path = (*top.path, len(top.container))
        self.positions.values[path] = (event.start_mark.line + 1, event.start_mark.column + 1)
        if kind is _SCALAR:
            self.place(self.scalar(event, path))
        else:
            own, other = (_MAP_TAG, _SEQ_TAG) if kind is _MAP_START else (_SEQ_TAG, _MAP_TAG)
            if event.tag == other or event.tag in _CORE_TAGS - {None, "!"}:  # a core tag of another kind
                self.fail(event, path, f"YAML tag {event.tag} on a {'mapping' if kind is _MAP_START else 'list'}")
            elif event.tag not in (None, "!", own):
                self.fail(event, path, f"unsupported YAML tag {event.tag}")
            if len(stack) >= MAX_DEPTH:
                line, col = _mark(event)
                raise _one(self.file, line, col, f"nested more than {MAX_DEPTH} levels deep; a config needs far fewer")
            stack.append(_Frame({} if kind is _MAP_START else [], path))

    def key(self, frame: _Frame, event: Any, kind: type[Any]) -> None:
        if kind is not _SCALAR:
            self.fail(event, frame.path, "a key must be a plain name, not a list or mapping")
            self.skip_nodes, self.skip_depth = 2, 1  # the rest of this key, then its value
            return
        key = event.value
        if event.tag not in _CORE_TAGS:
            self.fail(event, (*frame.path, key), f"unsupported YAML tag {event.tag}")
        if key in frame.container:
            first = self.positions.keys[(*frame.path, key)]
            self.fail(event, (*frame.path, key), f"duplicate key '{key}' (first given at line {first[0]})")
            self.skip_nodes = 1  # its value
            return
        self.positions.keys[(*frame.path, key)] = _mark(event)
        frame.key = key

    def place(self, value: Any) -> None:
        if not self.stack:
            self.roots[-1] = (value, self.roots[-1][1])
            return
        top = self.stack[-1]
        if top.key is None:
            top.container.append(value)
        else:
            top.container[top.key] = value
            top.key = None

    def scalar(self, event: Any, path: JsonPath) -> Any:
        text = event.value
        tag = event.tag
        if tag not in _CORE_TAGS:
            self.fail(event, path, f"unsupported YAML tag {tag}")
            return None
        if tag in _TYPED:  # !!null, !!bool, !!int or !!float: the text, quoted or not, must be one
            if not _TYPED[tag](text):
                self.fail(event, path, f"YAML tag {tag}: {text!r} is not {_TYPED_NAMES[tag]}")
                return None
            return self.plain(event, path, text)
        if event.style or tag == _STR_TAG:  # quoted, block or !!str (plain style: None or "")
            return text
        return self.plain(event, path, text)

    def plain(self, event: Any, path: JsonPath, text: str) -> Any:
        """A plain scalar's value under the core schema."""
        if _NULL.match(text):
            return None
        if text in _BOOL:
            return _BOOL[text]
        if _INT.match(text) or _OCT.match(text) or _HEX.match(text):
            body = text.lstrip("+-")
            digits = len(body) - 2 if body[:2] in ("0x", "0o") else len(body)
            if digits > MAX_INT_DIGITS:
                self.fail(event, path, f"integer of {digits:,} digits is too long (at most {MAX_INT_DIGITS})")
                return None
            if _INT.match(text):
                return int(text)
            return int(text[2:], 8 if text[1] == "o" else 16)
        if _FLOAT.match(text):
            value = float(text)
            if math.isfinite(value):
                return value
        if _FLOAT.match(text) or _SPECIAL_FLOAT.match(text):
            self.fail(event, path, f"{text} is not a finite number")
            return None
        return text


def _built(raw: bytes, file: str) -> _Builder:
    """The builder after the whole file; ConfigError if it is not YAML text."""
    if b"\x00" in raw:
        raise _one(file, 1, 1, "binary file, not YAML text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _one(file, line, col, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    builder = _Builder(file)
    parser = _Parser(text)
    try:
        feed = builder.feed
        while (event := parser.get_event()) is not None:
            feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "cannot parse"
        raise _one(file, line, col, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise _one(file, 1, 1, f"YAML error: {exc}") from None
    finally:
        parser.dispose()
    return builder


def _document(builder: _Builder) -> Document:
    if builder.problems:
        raise ConfigError(builder.problems)
    return Document(builder.file, builder.roots[0][0] if builder.roots else None, builder.positions)


def parse_any(raw: bytes, file: str) -> Document:
    """Like parse, but any top level (an empty file is null): what a schema, not olmix, is to judge."""
    return _document(_built(raw, file))


def parse(raw: bytes, file: str) -> Document:
    """Parse one YAML document holding a mapping; raise ConfigError naming file, line and column."""
    builder = _built(raw, file)
    if not builder.roots:
        raise _one(file, 1, 1, "empty file: expected a mapping of experiment fields")
    first = builder.roots[0][1]
    if type(first) is _SCALAR and first.value == "" and not first.style:
        raise _one(file, 1, 1, "empty file: expected a mapping of experiment fields")
    if type(first) is not _MAP_START:
        kind = "a list" if type(first) is _SEQ_START else f"the scalar {first.value!r}"
        line, col = _mark(first)
        raise _one(file, line, col, f"the top level must be a mapping of experiment fields, not {kind}")
    return _document(builder)
