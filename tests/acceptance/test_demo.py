"""The main job, CI-sized: demo corpus → two quality-threshold runs launched locally → OLMo-core → results."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, needs_train

pytestmark = pytest.mark.slow  # trains two proxy models, end to end

OLMIX = str(Path(sys.executable).with_name("olmix"))
CONFIGS = REPO / "config/examples/launch/quality_thresholds"


def olmix(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", "/nonexistent-cache")}
    return subprocess.run([OLMIX, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env)


@needs_train
def test_two_thresholds_train_for_real_and_reach_the_results_table(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = olmix("demo-data", str(data), "--tokens-per-bucket", "2048")
    assert made.returncode == 0, made.stderr
    web = data / "cc_all_dressed/all_dressed_v3/dclm_plus2_vigilantes/allenai/dolma2-tokenizer"
    wikipedia = data / "wikipedia-dolma-0823/allenai/dolma2-tokenizer/heldout"
    trainer = (
        "{python} -m olmix.train --plan {plan} --out {run_dir} --heldout-tokens 128 --eval-tokens 1024 "
        f"--eval best_web={web}/*/vigintile_0020/heldout/*.npy --eval wikipedia={wikipedia}/*.npy"
    )
    launched = olmix(
        "launch",
        "run",
        "--config",
        str(CONFIGS / "quality_top10pct.yaml"),
        "--config",
        str(CONFIGS / "quality_top100pct.yaml"),
        "--path-map",
        f"s3://ai2-llm/preprocessed/={data}/",
        "--set",
        "proxy_model_id=olmo3_1m",
        "--set",
        "chinchilla_multiple=0.0003",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--max-parallel",
        "2",
        "--trainer-command",
        trainer,
        "--yes",
        "--wait",
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr
    (group,) = [p.name for p in (tmp_path / "runs").iterdir()]
    assert group.startswith("quality-top")  # the shared part of the two experiment names

    results = olmix("results", "--group", group, "--runs-dir", str(tmp_path / "runs"), "--json")
    assert results.returncode == 0, results.stderr
    runs = json.loads(results.stdout)["runs"]
    assert [(r["run"], r["threshold"]) for r in runs] == [("quality-top10pct", 0.1), ("quality-top100pct", 1.0)]
    requested = 20 * 1_000_000 * 0.0003  # olmo3_1m's nominal parameters × the chinchilla multiple
    for run in runs:
        assert run["tokens_trained"] >= requested
        losses = run["heldout_loss"]
        assert set(losses) == {"best_web", "wikipedia"}
        # trained: below the loss of a uniform guess over the dolma2 vocabulary (ln 100,278 ≈ 11.5)
        assert all(math.isfinite(v) and v < math.log(100_278) for v in losses.values())
    metrics = json.loads(next((tmp_path / "runs" / group).glob("quality-top10pct/metrics.json")).read_text())
    assert sorted(metrics["mixture"]) == sorted(
        leaf["name"]
        for leaf in json.loads((tmp_path / "runs" / group / "quality-top10pct" / "plan.json").read_text())["runs"][0][
            "leaves"
        ]
    )
