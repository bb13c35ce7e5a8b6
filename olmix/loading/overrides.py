"""`--set KEY=VALUE` overrides, applied to a parsed config before validation.

KEY is a dotted path with list indices (`chinchilla_multiple`,
`sources[1].max_repetition_factor`, `instance_filter.repetition_max_count`);
VALUE is read as YAML 1.2 (`0.5`, `true`, `olmo3_1m`, `[a, b]`). A problem in
an overridden value is reported against the `--set` that made it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from olmix.errors import ConfigError, JsonPath, Problem
from olmix.loading.yamlsource import Document, parse

_LABEL_CHARS = 80  # of a --set repeated in a message: enough to recognize it, never a screenful
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_key(key: str) -> JsonPath | None:
    """`sources[1].name` -> ("sources", 1, "name"); None if malformed."""
    parts: list[str | int] = []
    pos = 0
    for match in _PART.finditer(key):
        gap = key[pos : match.start()]
        if gap not in ("", ".") or (gap == "." and not parts) or (gap == "" and parts and match.group(1)):
            return None
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    return tuple(parts) if parts and pos == len(key) else None


def _set(data: Any, path: JsonPath, value: Any) -> str | None:
    """Set data[path] = value; an error message if the path does not lead anywhere."""
    node = data
    for depth, part in enumerate(path[:-1]):
        nxt = path[depth + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return f"there is no item [{part}] here"
        elif not isinstance(node, dict):
            return f"cannot set '{part}' inside a {type(node).__name__}"
        elif part not in node:
            node[part] = [] if isinstance(nxt, int) else {}
        node = node[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last > len(node):
            return f"there is no item [{last}] here"
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        return f"cannot set '{last}' inside a {type(node).__name__}"
    return None


def apply(doc: Document, assignments: Iterable[str]) -> Document:
    """Apply every `KEY=VALUE` to doc (in place); ConfigError lists every malformed one."""
    problems = []
    for raw in assignments:
        label = f"--set {raw if len(raw) <= _LABEL_CHARS else raw[:_LABEL_CHARS] + '…'}"
        key, sep, text = raw.partition("=")
        path = parse_key(key.strip())
        if not sep or path is None:
            problems.append(Problem(label, 0, 0, (), "expected KEY=VALUE, with KEY like sources[0].weight"))
            continue
        try:
            value = parse(f"v: {text}\n".encode(), label).data["v"] if text.strip() else ""
        except ConfigError as exc:
            why = "; ".join(p.message for p in exc.problems)
            problems.append(Problem(label, 0, 0, path, f"cannot read the value as YAML: {why}"))
            continue
        error = _set(doc.data, path, value)
        if error:
            problems.append(Problem(label, 0, 0, path, error))
            continue
        doc.origins[path] = label
    if problems:
        raise ConfigError(problems)
    return doc
