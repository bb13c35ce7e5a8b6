"""`python -m olmix.train` end to end: one tiny real training on the CPU, and its failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from olmix.errors import OlmixError, PlanError
from olmix.training import trainer as train
from olmix.training.metrics import read_metrics
from tests.conftest import REPO, needs_train
from tests.support.tokenfiles import as_run, run_plan
from tests.support.trainings import LEAVES, Leaf, olmix_train, write_plan

if TYPE_CHECKING:
    from olmix_generated.launch_plan import Run


@pytest.mark.slow
@needs_train
def test_a_tiny_run_trains_for_real_and_writes_its_metrics(tmp_path: Path) -> None:
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


@pytest.mark.slow
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
def test_an_infeasible_mixture_or_bad_data_fails_fast_with_a_message(
    tmp_path: Path, leaves: list[Leaf], requested: int, message: str | None
) -> None:
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


def test_a_missing_train_extra_names_the_extra(tmp_path: Path) -> None:
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


def two_run_plan(tmp_path: Path) -> Path:
    plan = run_plan(tmp_path / "data", [("leaf", 1.0, [1_000])], requested_tokens=500, name="a")
    plan["runs"].append({**plan["runs"][0], "name": "b", "seed": 7})
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan, indent=2))
    return path


@pytest.mark.parametrize(
    ("run", "message"),
    [
        (None, "plan.json: $.runs: the plan has 2 runs; choose one with --run (a, b)"),
        ("c", "plan.json: $.runs: no run named 'c' (runs: a, b)"),
    ],
)
def test_plan_files_that_name_no_run_are_reported(tmp_path: Path, run: str | None, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        train.load_run(two_run_plan(tmp_path), run)
    assert str(caught.value).endswith(message)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "plan.json:2:1: $: YAML syntax error"),
        ('{"runs": []}', "plan.json:1:10: $.runs: must not be empty"),
        ('{"name": "solo", "leaves": []}', "plan.json:1:1: $: missing required key 'plan_version'"),
    ],
)
def test_a_file_that_is_not_a_valid_plan_is_reported_where_it_is_wrong(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(PlanError) as caught:
        train.load_run(path)
    assert message in str(caught.value)


def test_a_run_is_chosen_by_name(tmp_path: Path) -> None:
    plan, run = train.load_run(two_run_plan(tmp_path), "b")
    assert (run.name, run.seed) == ("b", 7)
    assert [r.name for r in plan.runs] == ["a", "b"]


def a_run(**fields: Any) -> Run:
    plan = run_plan(Path("/nonexistent"), [], requested_tokens=1)
    plan["runs"][0].update(
        leaves=[
            {
                "name": "x",
                "ratio": 1.0,
                "max_repetition_factor": 1.0,
                "tokens_available": 1,
                "tokens_needed": 1,
                "repetition": 1.0,
                "files": {"/x.npy": 1},
            }
        ],
        **fields,
    )
    return as_run(plan)


@pytest.mark.parametrize(
    ("device", "run", "expected"),
    [
        ("cpu", {"seed": 7}, (128, 4, 4, 7)),
        ("cpu", {"global_batch_size": 16, "device_batch_size": 8}, (128, 4, 16, 42)),
        ("cuda", {"device_batch_size": 2}, (1024, 2, 2, 42)),
        ("cuda", {"global_batch_size": 32, "device_batch_size": 8}, (1024, 8, 32, 42)),
        ("cuda", {"global_batch_size": 2, "device_batch_size": 8}, (1024, 2, 2, 42)),
    ],
)
def test_documented_defaults(device: str, run: dict[str, int], expected: tuple[int, int, int, int]) -> None:
    s = train.default_settings(a_run(**run), device)
    assert (s.sequence_length, s.device_batch_size, s.global_batch_size, s.seed) == expected
    assert s.learning_rate == 4e-3


@pytest.mark.parametrize(("requested", "steps"), [(512, 1), (513, 2), (5120, 10), (1, 1)])
def test_steps_cover_the_requested_tokens(requested: int, steps: int) -> None:
    settings = train.default_settings(a_run(), "cpu")  # 4 × 128 tokens per step
    assert train.planned_steps(a_run(requested_tokens=requested), settings) == steps


def test_the_cli_does_not_import_torch() -> None:
    code = (
        "import sys; from olmix.cli import main; import olmix.train, olmix.results.collect; "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("flag", "value", "bound"),
    [
        ("--global-batch-size", "1000000000000", "1<=x<=1048576"),
        ("--device-batch-size", "1048577", "1<=x<=1048576"),
        ("--sequence-length", "1000000000000", "2<=x<=1048576"),
        ("--sequence-length", "1", "2<=x<=1048576"),
    ],
)
def test_absurd_sizes_in_the_flags_are_refused_before_anything_runs(
    tmp_path: Path, flag: str, value: str, bound: str
) -> None:
    from click.testing import CliRunner

    from olmix.train import main

    plan = write_plan(tmp_path, [("leaf", 1.0, [1_000])], requested_tokens=500)
    done = CliRunner().invoke(main, ["--plan", str(plan), "--device", "cpu", flag, value])
    assert done.exit_code == 2
    assert f"Invalid value for '{flag}': {value} is not in the range {bound}." in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


@pytest.mark.parametrize("field", ["global_batch_size", "device_batch_size"])
def test_absurd_batch_sizes_in_a_plan_are_refused_where_they_are(tmp_path: Path, field: str) -> None:
    plan = write_plan(tmp_path, [("leaf", 1.0, [1_000])], requested_tokens=500)
    data = json.loads(plan.read_text())
    data["runs"][0][field] = 10**12
    plan.write_text(json.dumps(data))
    done = olmix_train("--plan", str(plan), "--device", "cpu", timeout=120)
    assert done.returncode == 1
    assert f"$.runs[0].{field}: must be at most 1048576" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_schemas_bound_batch_sizes_as_the_trainer_does() -> None:
    for name, where in [("mixture", ()), ("study", ("$defs", "Experiment")), ("launch-plan", ("$defs", "Run"))]:
        node = json.loads((REPO / "schema" / f"{name}.schema.json").read_text())
        for key in where:
            node = node[key]
        for field in ("global_batch_size", "device_batch_size"):
            assert node["properties"][field]["maximum"] == train.MAX_BATCH_SIZE, (name, field)


def test_sizes_past_the_bounds_are_refused_however_they_were_set() -> None:
    from dataclasses import replace

    settings = replace(train.default_settings(a_run(), "cpu"), sequence_length=2**21, global_batch_size=0)
    with pytest.raises(OlmixError) as caught:
        train.check_sizes(a_run(), settings)
    assert str(caught.value) == (
        "run 'run': sequence length 2,097,152 is not between 2 and 1,048,576; "
        "global batch size 0 is not between 1 and 1,048,576"
    )


def test_a_sequence_longer_than_every_file_of_a_leaf_is_refused_naming_the_leaf(tmp_path: Path) -> None:
    from dataclasses import replace

    run = as_run(run_plan(tmp_path, [("long", 0.5, [5_000, 300]), ("short", 0.5, [200, 300])], requested_tokens=500))
    train.check_sequence_length(run, replace(train.default_settings(run, "cpu"), sequence_length=300))  # one fits
    with pytest.raises(OlmixError) as caught:
        train.check_sequence_length(run, replace(train.default_settings(run, "cpu"), sequence_length=301))
    assert str(caught.value) == (
        "sequence length 301 is longer than every file of leaf short (its longest file holds 300 tokens); "
        "OLMo-core cuts sequences within a file, so these would give no tokens: lower --sequence-length"
    )


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ((4, 128, 4), None),
        ((2**20, 128, 2**20), "the logits of one forward pass need 50,176.0 GiB"),
        ((1, 128, 2**30), "one step's token ids need 1,024.0 GiB"),
    ],
)
def test_batches_that_cannot_fit_in_the_devices_memory_are_refused(
    sizes: tuple[int, int, int], message: str | None
) -> None:
    from dataclasses import replace

    device_batch, length, global_batch = sizes
    settings = replace(
        train.default_settings(a_run(), "cpu"),
        device_batch_size=device_batch,
        sequence_length=length,
        global_batch_size=global_batch,
    )
    memory = 16 * 2**30
    if message is None:
        train.check_memory(settings, vocab_size=100_352, memory=memory)
        return
    with pytest.raises(OlmixError) as caught:
        train.check_memory(settings, vocab_size=100_352, memory=memory)
    assert message + ", the cpu has 16.0 GiB in all; lower --device-batch-size" in str(caught.value)


def test_an_eval_glob_that_matches_nothing_is_an_error_naming_it_before_training(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, [("leaf", 1.0, [1_000])], requested_tokens=500)
    found = tmp_path / "eval" / "wiki.npy"
    found.parent.mkdir()
    found.write_bytes(b"\0" * 8)
    missing = str(tmp_path / "nowhere" / "*.npy")
    args = ["--plan", str(plan), "--device", "cpu", "--eval", f"wiki={found}", "--eval", f"web={missing}"]
    done = olmix_train(*args, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == f"olmix.train: no file matches --eval web={missing}"
    assert not (plan.parent / "metrics.json").exists()


def a_run_of(leaves: int, requested_tokens: int) -> Run:
    run = a_run(requested_tokens=requested_tokens)
    leaf = run.leaves[0]
    return run.model_copy(update={"leaves": [leaf.model_copy(update={"name": f"x{i}"}) for i in range(leaves)]})


@pytest.mark.parametrize(
    ("leaves", "requested", "flags", "expected"),
    [
        # the README's one-run launch: 38 leaves, 40 steps of 4 × 128 tokens; a quarter of 20,480 tokens is
        # 5,120, 134 per leaf: one sequence of 128 each (and as much per --eval set, were there one)
        (38, 40 * 512, {}, (128, 128)),
        # 2 leaves and 2 --eval sets over 400 steps: 51,200 tokens to score, 12,800 each, in sequences: the
        # leaves at their cap (4,096), the sets at 12,800 // 128 × 128 = 12,800, over their cap of 8,192
        (2, 400 * 512, {"eval_sets": ("a=x", "b=y")}, (4096, 8192)),
        # 1 leaf and 1 set over 10 steps: 1,280 tokens, 640 each, 5 sequences
        (1, 10 * 512, {"eval_sets": ("a=x",)}, (640, 640)),
        # sizes given by hand are kept as given
        (38, 40 * 512, {"heldout_tokens": 4096, "eval_tokens": 9000}, (4096, 9000)),
        # --max-steps shortens the run, and its scoring with it: 4 steps, 512 tokens for 1 leaf
        (1, 400 * 512, {"max_steps": 4}, (512, 512)),
    ],
)
def test_default_scoring_is_a_share_of_the_tokens_the_run_trains(
    leaves: int, requested: int, flags: dict[str, Any], expected: tuple[int, int]
) -> None:
    from olmix.train import flag_settings

    run = a_run_of(leaves, requested)
    s = flag_settings(run, "cpu", {"heldout_tokens": None, "eval_tokens": None, "max_steps": None, **flags})
    assert (s.heldout_tokens, s.eval_tokens) == expected
    if not flags.keys() & {"heldout_tokens", "eval_tokens"}:
        trained = train.training_steps(run, s) * s.global_batch_tokens
        scored = leaves * s.heldout_tokens + len(s.eval_sets) * s.eval_tokens
        assert scored <= train.SCORING_SHARE * trained or s.heldout_tokens == s.sequence_length
