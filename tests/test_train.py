"""`python -m olmix.train` end to end: one tiny real training on the CPU, and its failures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from olmix import train
from olmix.metrics import read_metrics
from tests.conftest import REPO, needs_train
from tests.tokenfiles import run_plan

LEAVES = [
    ("web:topic:vigintile_0020", 0.5, [20_000]),
    ("web:topic:vigintile_0019", 0.25, [20_000]),
    ("arxiv", 0.25, [20_000]),
]


def olmix_train(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "olmix.train", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_plan(tmp_path, leaves=LEAVES, requested_tokens=64 * 4 * 30, **kwargs):
    plan = run_plan(tmp_path / "data", leaves, requested_tokens=requested_tokens, heldout_tokens=1024, **kwargs)
    path = tmp_path / "runs" / "g" / "run" / "plan.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(plan))
    return path


@needs_train
def test_a_tiny_run_trains_for_real_and_writes_its_metrics(tmp_path):
    plan = write_plan(tmp_path)
    done = olmix_train("--plan", str(plan), "--sequence-length", "64", "--heldout-tokens", "512")
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((plan.parent / "metrics.json").read_text())
    assert read_metrics(plan.parent / "metrics.json").steps == metrics["steps"]  # valid against its schema
    assert metrics["steps"] == 30  # 64 × 4 × 30 requested tokens in batches of 4 × 64
    assert metrics["tokens_trained"] == 30 * 4 * 64
    losses = [loss for _, loss in metrics["train_loss"]]
    assert len(losses) == 30
    assert metrics["final_train_loss"] == losses[-1] < losses[0]
    assert set(metrics["heldout"]["leaves"]) == {name for name, _, _ in LEAVES}
    assert set(metrics["heldout"]["sources"]) == {"web", "arxiv"}
    for result in metrics["heldout"]["leaves"].values():
        assert result["tokens"] == 512 - 512 // 64  # every window's first token is context only
        assert 0 < result["loss"] < 12
        assert result["bits_per_byte"] is None  # the test files carry no byte counts
    assert metrics["heldout"]["missing"] == []
    assert metrics["settings"]["sequence_length"] == 64
    assert metrics["peak_rss_bytes"] > 0
    selected = {leaf: m["selected_tokens"] for leaf, m in metrics["mixture"].items()}
    assert selected["web:topic:vigintile_0020"] > selected["arxiv"]


@needs_train
@pytest.mark.parametrize(
    ("leaves", "requested", "message"),
    [
        (
            [("short", 0.5, [2_000]), ("long", 0.5, [50_000])],
            20_000,
            "infeasible: Insufficient tokens for source: short",
        ),
        ([("leaf", 1.0, [2_000])], 1_000, None),  # made bad below: a file not ending with EOS
    ],
)
def test_an_infeasible_mixture_or_bad_data_fails_fast_with_a_message(tmp_path, leaves, requested, message):
    plan = write_plan(tmp_path, leaves, requested_tokens=requested)
    if message is None:
        data = json.loads(plan.read_text())
        path = next(iter(data["runs"][0]["leaves"][0]["files"]))
        with open(path, "r+b") as f:
            f.seek(-4, 2)
            f.write((5).to_bytes(4, "little"))
        message = "does not end with the end-of-document token"
    done = olmix_train("--plan", str(plan), timeout=120)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (plan.parent / "metrics.json").exists()


def test_a_missing_train_extra_names_the_extra(tmp_path):
    plan = write_plan(tmp_path, [("leaf", 1.0, [1_000])], requested_tokens=500)
    code = (
        "import sys; sys.modules['olmo_core'] = None; sys.modules['torch'] = None; from olmix.train import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "--plan", str(plan), "--device", "cpu"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "pip install 'olmix[train]'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("content", "run", "message"),
    [
        ("{not json", None, "not a JSON plan"),
        ('{"runs": []}', None, "the plan has no runs"),
        ('{"runs": [{"name": "a", "leaves": []}, {"name": "b", "leaves": []}]}', None, "choose one with --run (a, b)"),
        ('{"runs": [{"name": "a", "leaves": []}]}', "c", "no run named 'c' (runs: a)"),
    ],
)
def test_plan_files_that_name_no_run_are_reported(tmp_path, content, run, message):
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(train.PlanFileError) as caught:
        train.load_run(path, run)
    assert message in str(caught.value)


def test_a_run_is_chosen_by_name_and_a_bare_run_is_a_plan_of_one(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text('{"runs": [{"name": "a", "leaves": [1]}, {"name": "b", "leaves": [2]}]}')
    assert train.load_run(path, "b")[1]["leaves"] == [2]
    path.write_text('{"name": "solo", "leaves": [3]}')
    assert train.load_run(path)[1]["name"] == "solo"


@pytest.mark.parametrize(
    ("device", "run", "expected"),
    [
        ("cpu", {"seed": 7}, (128, 4, 4, 7)),
        ("cpu", {"global_batch_size": 16, "device_batch_size": 8}, (128, 4, 16, 42)),
        ("cuda", {"device_batch_size": 2}, (1024, 2, 2, 42)),
        ("cuda", {"global_batch_size": 32}, (1024, 8, 32, 42)),
    ],
)
def test_documented_defaults(device, run, expected):
    s = train.default_settings(run, device)
    assert (s.sequence_length, s.device_batch_size, s.global_batch_size, s.seed) == expected
    assert s.learning_rate == 4e-3


@pytest.mark.parametrize(("requested", "steps"), [(512, 1), (513, 2), (5120, 10), (1, 1)])
def test_steps_cover_the_requested_tokens(requested, steps):
    settings = train.default_settings({}, "cpu")  # 4 × 128 tokens per step
    assert train.planned_steps({"requested_tokens": requested}, settings) == steps


def test_the_cli_does_not_import_torch():
    code = "import sys; from olmix.cli import main; import olmix.train, olmix.results; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"
