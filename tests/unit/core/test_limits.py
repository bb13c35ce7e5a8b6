"""Inputs at the edges of what Python and floats can hold, through the `olmix` command (tests/support/olmixcli.py).

Each of these once reached the user as a traceback: integers longer than
Python converts, nesting deeper than later stages recurse, and numbers the
schema allows but the planner's arithmetic overflowed on.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.olmixcli import Run

Olmix = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def olmix(run_olmix: Run) -> Olmix:
    """`olmix ARGS` in folder `cwd`, with a cache of its own and no path map from the environment."""

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return run_olmix(*args, cwd=cwd, env={"XDG_CACHE_HOME": str(cwd / "cache"), "OLMIX_PATH_MAP": None})

    return run


def config(tmp_path: Path, body: str, *, files: dict[str, int] | None = None) -> Path:
    """A config named c.yaml in tmp_path, with data files (name -> bytes) under tmp_path/d."""
    for name, size in (files or {"a.npy": 4_000_000}).items():
        (tmp_path / "d").mkdir(exist_ok=True)
        (tmp_path / "d" / name).write_bytes(b"\0" * size)
    path = tmp_path / "c.yaml"
    path.write_text(body.replace("DATA", str(tmp_path / "d")))
    return path


PLAIN = (
    "name: t\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.01\nsources:\n  - name: a\n    paths: ['DATA/a.npy']\n"
)


@pytest.mark.parametrize("command", [["validate"], ["leaves"], ["launch", "run", "--dry-run", "--config"]])
def test_an_integer_longer_than_python_converts_is_a_located_error(
    tmp_path: Path, command: list[str], olmix: Olmix
) -> None:
    path = config(tmp_path, PLAIN + "seed: " + "7" * 5000 + "\n")
    proc = olmix(*command, "c.yaml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[0] == "c.yaml:7:7: $.seed: integer of 5,000 digits is too long (at most 100)"
    assert "Traceback" not in proc.stderr
    assert path.exists()


def test_a_giant_integer_in_set_names_the_override_without_repeating_it(tmp_path: Path, olmix: Olmix) -> None:
    # the --set is shown to 80 characters, "seed=" included
    config(tmp_path, PLAIN)
    proc = olmix("launch", "run", "--dry-run", "--config", "c.yaml", "--set", "seed=" + "7" * 5000, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == (
        f"--set seed={'7' * 75}…: $.seed: cannot read the value as YAML: "
        "integer of 5,000 digits is too long (at most 100)\n"
    )


def test_an_integer_of_a_hundred_digits_still_reads_and_the_schema_bounds_it(tmp_path: Path, olmix: Olmix) -> None:
    config(tmp_path, PLAIN + "description: x\nseed: " + "7" * 100 + "\n")
    proc = olmix("validate", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    # read whole (no "too long"), then refused by the schema's bound, which every validator shares
    assert proc.stderr.splitlines()[0] == f"c.yaml:8:7: $.seed: must be at most {2**53 - 1}, not {'7' * 100}"


@pytest.mark.parametrize("depth", [100, 990, 999])
@pytest.mark.parametrize("command", [["validate"], ["leaves"]])
def test_deep_nesting_is_a_located_error(tmp_path: Path, depth: int, command: list[str], olmix: Olmix) -> None:
    config(tmp_path, "name: t\nsources: " + "[" * depth + "]" * depth + "\n")
    proc = olmix(*command, "c.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    # the root mapping is level 1, so the 64th '[' (after "sources: ", 9 characters) opens level 65
    assert proc.stderr.splitlines()[0] == "c.yaml:2:73: $: nested more than 64 levels deep; a config needs far fewer"
    assert "Traceback" not in proc.stderr


def test_deep_block_nesting_is_a_located_error(tmp_path: Path, olmix: Olmix) -> None:
    lines = "".join(f"{'  ' * i}k{i}:\n" for i in range(70))
    config(tmp_path, "name: t\nsources: []\nextra:\n" + "".join("  " + line for line in lines.splitlines(True)))
    proc = olmix("validate", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    # level 1 is the root, level 2 extra's mapping (at k0, line 4), so level 65 is k63's mapping, at line 67
    assert proc.stderr.splitlines()[0].startswith("c.yaml:67:")
    assert "nested more than 64 levels deep" in proc.stderr


def test_a_chinchilla_multiple_past_what_a_trainer_counts_is_reported(tmp_path: Path, olmix: Olmix) -> None:
    config(tmp_path, PLAIN.replace("0.01", "1e308"))
    proc = olmix("launch", "run", "--dry-run", "--config", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    # olmo3_1m: 20 tokens × 1,000,000 parameters per multiple; 2^63 - 1 tokens at most
    assert proc.stderr == (
        "c.yaml:3:22: $.chinchilla_multiple: chinchilla_multiple 1e+308 asks olmo3_1m for inf tokens; "
        "a trainer counts at most 9.22e+18 (2^63 - 1), so at most 4.612e+11 for this model\n"
    )


def test_a_chinchilla_multiple_of_less_than_one_token_is_reported(tmp_path: Path, olmix: Olmix) -> None:
    config(tmp_path, PLAIN.replace("0.01", "1e-12"))
    proc = olmix("launch", "run", "--dry-run", "--config", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == (
        "c.yaml:3:22: $.chinchilla_multiple: chinchilla_multiple 1e-12 asks olmo3_1m for less than one token; "
        "at least 5e-08 for this model\n"
    )


def test_sibling_weights_near_the_float_limit_share_as_their_ratio_says(tmp_path: Path, olmix: Olmix) -> None:
    config(
        tmp_path,
        "name: t\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.01\nsources:\n"
        "  - {name: a, weight: 1e308, paths: ['DATA/a.npy']}\n"
        "  - {name: b, weight: 1.5e308, paths: ['DATA/a.npy']}\n"
        "  - {name: c, weight: 0.5e308, paths: ['DATA/a.npy']}\n",
    )
    proc = olmix("launch", "run", "--dry-run", "--json", "--config", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    leaves = json.loads(proc.stdout)["runs"][0]["leaves"]
    assert [(leaf["name"], leaf["ratio"]) for leaf in leaves] == [
        ("a", pytest.approx(1 / 3)),
        ("b", pytest.approx(1 / 2)),
        ("c", pytest.approx(1 / 6)),
    ]


def test_a_leaf_without_tokens_that_needs_none_plans_without_dividing_by_zero(tmp_path: Path, olmix: Olmix) -> None:
    config(
        tmp_path,
        "name: t\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.0001\nsources:\n"
        "  - {name: a, weight: 1, paths: ['DATA/a.npy']}\n"
        "  - {name: empty, weight: 1e-12, paths: ['DATA/empty.npy']}\n",
        files={"a.npy": 40_000, "empty.npy": 0},
    )
    proc = olmix("launch", "run", "--dry-run", "--json", "--config", "c.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    empty = json.loads(proc.stdout)["runs"][0]["leaves"][1]
    # 2,000 tokens requested; 2,000 × 1e-12 of them is no token needed
    assert (empty["name"], empty["tokens_available"], empty["tokens_needed"], empty["repetition"]) == (
        "empty",
        0,
        0,
        0.0,
    )
