"""ajv, an independent validator in another language, on the whole conformance suite.

Each case's verdict from ajv (with the npm `yaml` package reading YAML 1.2)
must be the manifest's: parse-stage cases fail to parse, schema-stage cases
are invalid, and valid and rules-stage cases pass the schema.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.conformance import CASES, SUITE
from tests.support.nodejs import node

pytestmark = pytest.mark.slow  # runs the suite through Node

RUNNER = SUITE / "run-ajv.mjs"


def expected_verdict(case: dict[str, Any]) -> str:
    if case["valid"] or case["stage"] == "rules":
        return "valid"
    return "parse-error" if case["stage"] == "parse" else "invalid"


def test_ajv_agrees_on_every_case() -> None:
    out = subprocess.run(
        [node(), str(RUNNER), "cases", str(SUITE / "manifest.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stderr == ""  # ajv in strict mode: no schema warnings either
    verdicts = {r["file"]: r for r in json.loads(out.stdout)}
    assert sorted(verdicts) == sorted(c["file"] for c in CASES)
    disagreements = [
        f"{c['file']}: expected {expected_verdict(c)}, ajv says {verdicts[c['file']]}"
        for c in CASES
        if verdicts[c["file"]]["verdict"] != expected_verdict(c)
    ]
    assert disagreements == []
