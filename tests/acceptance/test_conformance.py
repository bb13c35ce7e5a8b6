"""The conformance suite (tests/conformance/) through every Python implementation.

python-jsonschema, the generated models and olmix's loader must each reach the
verdict the manifest states; the loader must report exactly the expected
(JSON path, line) pairs. The same cases run through ajv in test_ajv.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from olmix import schemas
from olmix.errors import ConfigError, format_path
from olmix.loading import yamlsource
from olmix.loading.config import load_document
from tests.support.conformance import CASES, MANIFEST, SUITE


def _ids(case: dict[str, Any]) -> str:
    return str(case["file"]).removeprefix("cases/").removesuffix(".yaml")


def test_manifest_matches_its_schema() -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads((SUITE / "manifest.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(MANIFEST)]
    assert errors == []


def test_manifest_lists_every_case_file_once() -> None:
    listed = [c["file"] for c in CASES]
    on_disk = sorted(str(p.relative_to(SUITE)) for p in (SUITE / "cases").rglob("*.yaml"))
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)


def test_suite_size() -> None:
    invalid = [c for c in CASES if not c["valid"]]
    assert len(CASES) >= 60
    assert len(invalid) >= 40
    assert {c["stage"] for c in invalid} == {"parse", "schema", "rules"}


def test_folder_names_the_verdict() -> None:
    for case in CASES:
        assert case["file"].startswith("cases/valid/" if case["valid"] else "cases/invalid/"), case["file"]


def _schema_valid(data: Any) -> bool:
    return bool(schemas.validator("mixture").is_valid(data))


def _model_valid(data: Any) -> bool:
    from olmix_generated.mixture import ExperimentConfig

    try:
        ExperimentConfig.model_validate(data)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_case(case: dict[str, Any]) -> None:
    path = SUITE / case["file"]
    stage = case.get("stage")
    if stage == "parse":
        with pytest.raises(ConfigError):
            yamlsource.parse_any(path.read_bytes(), str(path))
    else:
        data = yamlsource.parse_any(path.read_bytes(), str(path)).data
        passes_schema = case["valid"] or stage == "rules"
        assert _schema_valid(data) is passes_schema, "python-jsonschema"
        assert _model_valid(data) is passes_schema, "generated models"
    if case["valid"]:
        load_document(path)
        return
    with pytest.raises(ConfigError) as raised:
        load_document(path)
    problems = raised.value.problems
    got = sorted((format_path(p.path), p.line) for p in problems)
    want = sorted((e["path"], e["line"]) for e in case["errors"])
    assert got == want, "\n".join(str(p) for p in problems)
    for expected in case["errors"]:
        if "message_contains" in expected:
            messages = [
                p.message for p in problems if (format_path(p.path), p.line) == (expected["path"], expected["line"])
            ]
            assert any(expected["message_contains"] in m for m in messages), messages
