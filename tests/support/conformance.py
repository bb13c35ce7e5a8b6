"""The conformance suite's cases (tests/conformance), for every validator that runs them."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import REPO

SUITE = REPO / "tests" / "conformance"


MANIFEST: dict[str, Any] = json.loads((SUITE / "manifest.json").read_text(encoding="utf-8"))


CASES: list[dict[str, Any]] = MANIFEST["cases"]
