"""`olmix launch run --dry-run` / `olmix launch preview` end to end, on synthetic local mirrors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from olmix.cli import main
from olmix.demodata import TOPICS
from olmix.planning.planfile import read_plan
from tests.conftest import REPO
from tests.support.tokenfiles import write_tokens
from tools.mirror import make_mirror

SHIPPED = REPO / "config" / "examples" / "launch" / "quality_thresholds"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("OLMIX_PATH_MAP", raising=False)


FIRST_KEPT = {10: 19, 30: 15, 50: 11, 70: 7, 100: 1}  # top pct -> first vigintile kept (through 20)


def quality_config(pct: int, tmp_path: Path) -> Path:
    """The shipped quality-threshold experiment."""
    return SHIPPED / f"quality_top{pct}pct.yaml"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("pct", sorted(FIRST_KEPT))
def test_quality_threshold_configs_plan_against_a_local_mirror(pct: int, tmp_path: Path) -> None:
    config = quality_config(pct, tmp_path)
    path_map = make_mirror(config, tmp_path / "mirror", files_per_pattern=2)
    flags = [f"--path-map={p}={r}" for p, r in path_map]
    out = tmp_path / "plan.json"
    code, stdout, stderr = invoke("launch", "run", "--config", str(config), "--dry-run", *flags, "--plan-out", str(out))
    assert code == 0, stderr
    plan = read_plan(out)
    (run,) = plan.runs
    kept = 21 - FIRST_KEPT[pct]
    assert len(run.leaves) == len(TOPICS) * kept + 2
    assert run.requested_tokens == 140_000_000
    assert sum(x.ratio for x in run.leaves) == pytest.approx(1.0)
    by_name = {x.name: x for x in run.leaves}
    assert by_name["arxiv"].ratio == pytest.approx(1 / 3)  # three sources, no weights: equal shares
    assert by_name["arxiv"].max_repetition_factor == 1.5
    assert by_name["wikipedia"].max_repetition_factor == 2.0
    for topic in TOPICS:  # a topic's buckets share its 1/18 in proportion to their tokens
        buckets = [x for x in run.leaves if x.name.startswith(f"all_dressed:{topic}:")]
        total = sum(x.tokens_available for x in buckets)
        for x in buckets:
            assert x.ratio == pytest.approx(x.tokens_available / total / 18)
    files = [path for x in run.leaves for path in x.files]
    assert all(f.startswith(str(tmp_path / "mirror")) for f in files)  # resolved paths, after the path map
    assert f"vigintile_{FIRST_KEPT[pct]:04d}" in stdout and "total" in stdout


def test_preview_prints_json_and_reads_path_map_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = quality_config(10, tmp_path)
    path_map = make_mirror(config, tmp_path / "mirror", files_per_pattern=1)
    monkeypatch.setenv("OLMIX_PATH_MAP", ";".join(f"{p}={r}" for p, r in path_map))
    code, stdout, stderr = invoke("launch", "preview", "--config", str(config), "--json")
    assert code == 0, stderr
    plan = json.loads(stdout)
    assert plan["path_map"] == [list(p) for p in path_map]
    assert [x["name"] for x in plan["runs"][0]["leaves"]][:2] == [
        "all_dressed:science_math_and_technology:vigintile_0019",
        "all_dressed:science_math_and_technology:vigintile_0020",
    ]


def test_table_has_a_row_per_leaf_and_totals(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write("d/a/x.npy", b"\0" * 4 * 700_000)
    write("d/b/y.npy", b"\0" * 4 * 300_000)
    config = write(
        "c.yaml",
        "name: t\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.05\nsources:\n"
        "  - name: a\n    paths: ['s3://bkt/a/*.npy']\n"
        "  - name: b\n    paths: ['s3://bkt/b/*.npy']\n    max_repetition_factor: 2\n",
    )
    code, stdout, stderr = invoke(
        "launch", "preview", "--config", str(config), "--path-map", f"s3://bkt/={tmp_path}/d/"
    )
    assert code == 0, stderr
    rows = [line.split() for line in stdout.splitlines()]
    assert ["a", "0.5000", "700,000", "500,000", "0.714", "1"] in rows
    assert ["b", "0.5000", "300,000", "500,000", "1.667", "2"] in rows
    assert ["total", "(2", "leaves,", "2", "files)", "1.0000", "1,000,000", "1,000,000"] in rows


def test_infeasible_config_exits_1_listing_every_problem(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write("d/a/x.npy", b"\0" * 4 * 100)
    config = write(
        "c.yaml",
        "name: t\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.05\nsources:\n"
        f"  - name: a\n    paths: ['{tmp_path}/d/a/*.npy']\n"
        f"  - name: b\n    paths: ['{tmp_path}/d/a/*.npy']\n",
    )
    code, _, stderr = invoke("launch", "run", "--config", str(config), "--dry-run")
    assert code == 1
    assert "Traceback" not in stderr
    # 1,000,000 tokens; each leaf has 100 and needs 500,000 of them: 5,000× repetition, a budget of 200 fits
    assert stderr.splitlines() == [
        f"not enough data for run t ({config}): 2 of its 2 leaves are short",
        "  budget:     1,000,000 tokens (20 × parameters of olmo3_1m × chinchilla_multiple 0.05)",
        "  available:  200 tokens in the leaves trained on",
        "  repetition: a short leaf would need up to 5000× (cap 1)",
        "  fits:       chinchilla_multiple ≤ 0.00001 with olmo3_1m",
        "  to fit:     --set chinchilla_multiple=0.00001",
        "  each short leaf: --verbose (or --format json)",
    ]
    code, _, verbose = invoke("launch", "run", "--config", str(config), "--dry-run", "--verbose")
    assert code == 1
    assert "leaf 'a' is short" in verbose and "leaf 'b' is short" in verbose
    assert verbose.splitlines()[-1].startswith("  to fit:")
    code, stdout, _ = invoke("launch", "preview", str(config), "--json")
    assert code == 1
    report = json.loads(stdout)
    assert report["set"] == [["chinchilla_multiple=0.00001"]]
    assert [leaf["leaf"] for leaf in report["shortages"][0]["short"]] == ["a", "b"]
    # the --set line it names makes the config plan
    code, _, stderr = invoke("launch", "preview", str(config), "--set", "chinchilla_multiple=0.00001")
    assert code == 0, stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["launch", "run", "--config", "c.yaml"], "proxy_model_id is required to plan a run"),
        (["launch", "preview", "--config", "c.yaml", "--path-map", "nonsense"], "PREFIX=REPLACEMENT"),
        (["launch", "preview", "--config", "missing.yaml"], "no such file"),
    ],
)
def test_usage_errors(args: list[str], message: str, write) -> None:  # type: ignore[no-untyped-def]
    config = write("c.yaml", "name: t\nsources:\n  - name: a\n    paths: ['x']\n")
    args = [str(config) if a == "c.yaml" else a for a in args]
    code, _, stderr = invoke(*args)
    assert code != 0
    assert message in stderr


def test_runs_dir_is_the_one_spelling_and_output_a_hidden_deprecated_alias(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    code, stdout, _ = invoke("launch", "list", "--runs-dir", str(tmp_path / "runs"))
    assert (code, stdout.strip()) == (0, f"no launched groups under {tmp_path / 'runs'}")
    code, stdout, stderr = invoke("launch", "list", "--output", str(tmp_path / "runs"))
    assert (code, stdout.strip()) == (0, f"no launched groups under {tmp_path / 'runs'}")
    assert "--output is deprecated" in stderr
    for command in ("run", "status", "cancel", "list"):
        _, help_text, _ = invoke("launch", command, "--help")
        assert "--runs-dir" in help_text and "--output" not in help_text


def test_the_dry_run_and_the_confirmation_show_tokens_and_flops_and_no_invented_gpu_hours(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_tokens(tmp_path / "data" / name / "part-0.npy", 600_000)
    config = tmp_path / "cost.yaml"
    config.write_text(
        "name: cost\nproxy_model_id: olmo3_14m\nchinchilla_multiple: 0.001\nsources:\n"
        + "".join(f"  - name: {n}\n    paths: ['{tmp_path}/data/{n}/*.npy']\n" for n in ("a", "b"))
    )
    tokens = 20 * 14_000_000 // 1000  # the budget: 20 tokens per parameter × chinchilla_multiple
    flops = f"{6 * 14_000_000 * tokens:.3g}"
    runs = ["--runs-dir", str(tmp_path / "runs")]
    code, stdout, stderr = invoke("launch", "run", str(config), *runs, "--dry-run")
    assert code == 0, stderr
    assert f"cost: {tokens:,} tokens, {flops} FLOPs" in stdout
    assert "GPU-hours not shown" in stdout
    result = CliRunner().invoke(main, ["launch", "run", str(config), *runs], input="n\n")
    assert result.exit_code == 1
    assert f"cost: {tokens:,} tokens, {flops} FLOPs" in result.stdout
    assert "Launch 1 run(s)" in result.stderr and not (tmp_path / "runs").exists()
