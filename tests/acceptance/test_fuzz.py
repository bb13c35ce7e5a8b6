"""Differential fuzzing, CI-sized: 2,000 generated configs and near-misses.

The test draws the same 2,000 every run (a fixed seed), so a red CI can be
reproduced and a green one means the same thing twice; `make fuzz` draws
10,000 new ones each run, and each disagreement it finds becomes a
conformance case.
"""

from __future__ import annotations

import shutil

import pytest

from tests.support import fuzzing

pytestmark = pytest.mark.slow  # thousands of generated configs through four validators

EXAMPLES = 2_000
SEED = 20261128


def test_loader_jsonschema_models_and_ajv_agree() -> None:
    tally = fuzzing.Tally()
    fuzzing.run(EXAMPLES, tally, SEED)
    assert tally.examples == EXAMPLES
    # Both kinds of example must really occur, or the comparison proves little.
    assert tally.valid > EXAMPLES // 20
    assert tally.examples - tally.valid > EXAMPLES // 4
    node = shutil.which("node")
    if node:  # CI has node and `npm ci`; without node, ajv is checked by `make fuzz` elsewhere
        tally.disagreements += fuzzing.ajv_disagreements(node, tally)
    assert tally.disagreements == []


def test_a_disagreement_is_caught() -> None:
    # The comparison itself can fail: a YAML duplicate key the data cannot show is reported.
    tally = fuzzing.Tally()
    fuzzing.compare({"name": "x", "sources": [{"name": "a", "paths": ["p"]}]}, tally)
    assert tally.disagreements == [] and tally.valid == 1
    pairs = fuzzing.Pairs([("name", "x"), ("name", "y"), ("sources", [{"name": "a", "paths": ["p"]}])])
    fuzzing.compare(pairs, tally)
    assert tally.parse_errors == 1
