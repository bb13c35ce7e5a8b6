"""The README's "Validate a config" example is what olmix prints for tests/readme/my.yaml."""

from __future__ import annotations

from tests.conftest import REPO
from tests.olmixcli import Run


def test_the_readme_validate_example_is_what_olmix_prints(run_olmix: Run) -> None:
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Validate a config", 1)[1]
    shown = section.split("Every problem is reported at once", 1)[1].split("```\n", 2)[1]
    proc = run_olmix("validate", "my.yaml", cwd=REPO / "tests" / "readme")
    assert proc.returncode == 1
    # a schema problem, a shape problem and a rule's (a duplicate name) are all reported at once
    assert proc.stderr.splitlines() == shown.splitlines()
    assert proc.stdout == "0 valid, 1 invalid (1 files)\n"
