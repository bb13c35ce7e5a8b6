"""docs/config-reference.md covers the whole schema (its drift is checked by `make check-generated`)."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO
from tools import reference

SCHEMA = json.loads((REPO / "schema" / "mixture.schema.json").read_text(encoding="utf-8"))
PAGE = (REPO / "docs" / "config-reference.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", PAGE, re.S | re.M)
    assert match, title
    return match.group(1)


def _objects() -> list[tuple[str, dict[str, object]]]:
    found = [("Top level", SCHEMA)]
    found += [(name, node) for name, node in SCHEMA["$defs"].items() if "properties" in node]
    return found


def test_page_is_the_rendered_schema() -> None:
    assert reference.render(SCHEMA) == PAGE


def test_every_field_has_a_row_with_its_description_and_default() -> None:
    for title, node in _objects():
        rows = {line.split("|")[1].strip(): line for line in _section(title).splitlines() if line.startswith("| `")}
        for key, prop in node["properties"].items():  # type: ignore[attr-defined]
            row = next((r for name, r in rows.items() if name.split()[0] == f"`{key}`"), None)
            assert row, f"{title}.{key}"
            target = reference._resolve(SCHEMA, prop)
            assert target.get("description", "").replace("|", "\\|") in row, f"{title}.{key}"
            if "default" in target:
                assert f"`{json.dumps(target['default'])}`" in row, f"{title}.{key}"


def test_every_allowed_value_is_listed() -> None:
    for name, node in [*SCHEMA["properties"].items(), *SCHEMA["$defs"].items()]:
        node = reference._resolve(SCHEMA, node)
        for branch in node.get("oneOf", []):
            if "const" in branch:
                assert f"`{branch['const']}` ({branch['description']})" in PAGE, name


def test_exactly_one_rules_are_stated() -> None:
    rules = _section("Exactly-one rules")
    assert "A [Source](#source) has exactly one of `paths`, `topics`, `quality`" in rules
    assert "A [Topic](#topic) has exactly one of `paths`, `quality`" in rules
