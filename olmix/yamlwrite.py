"""JSON-like data to block-style YAML text, the same bytes on every run and machine.

Strings are written plain when YAML 1.2 reads them back as the same string,
else double-quoted (a JSON string is a valid YAML one). Floats are written
so that YAML 1.1 readers (PyYAML, many editors) read them as floats too.
Keys keep their order.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_KEYWORDS = {"true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL"}


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the non-finite number {value}")
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:
            # 7e-06 is a float to YAML 1.2 but a string to YAML 1.1 readers (PyYAML), whose float needs a dot
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value not in _KEYWORDS:
            return value
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{scalar(key)}:")
                lines += _block(item, indent + 2)
            else:
                lines.append(f"{pad}{scalar(key)}: {_inline(item)}")
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                inner = _block(item, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines.append(f"{pad}- {_inline(item)}")
    return lines


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value)


def dump(data: dict[str, Any] | list[Any]) -> str:
    """Block-style YAML for a mapping or a list, ending in a newline."""
    if not data:
        return _inline(data) + "\n"
    return "\n".join(_block(data, 0)) + "\n"
