"""Benchmark: what downstream evaluations and held-out scoring cost in a demo run, before and after sizing scoring
to the run.

Plans the README's one-run launch (the shipped top-30% config: 38 leaves, olmo3_1m, chinchilla_multiple 0.001,
40 steps of 4 × 128 tokens) over the demo corpus, with eval_tasks evaluated at the last step, and trains it
twice through `python -m olmix.train`: with the held-out size of before (4,096 tokens per leaf) and with the
default now (a share of the run). Prints each downstream task's cost (seconds per batch, its batches, the whole
task's estimate) and each run's share of wall time spent training, evaluating and scoring.

The demo corpus is dolma2 token ids, and dolma2's tokenizer comes from the Hugging Face hub; offline, the
evaluator tokenizes with a word-level tokenizer.json of dolma2's size and special ids instead, so the model
(olmo3_1m with dolma2's vocabulary) and its cost per batch are the demo's, the task's token counts near it.
Skipped with a note when the `olmix[train]` or `olmix[eval]` extra is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TASKS = ("arc_easy", "arc_challenge", "hellaswag", "piqa", "sciq")
BATCHES = 4  # per task: enough to time a batch; the whole task is estimated from its batch count
BEFORE_HELDOUT_TOKENS = 4096  # the CPU default per leaf before scoring was sized to the run
_TEXT = (
    "the of and to a in is was that for on as with by he it at from his an were are which this be or has had "
    "not but they their one all also its can when there been more who would many some what into other these "
    "water plant animal energy light heat sun earth food body cell air rock soil change time year day people "
    "most best because so how why which answer question use used make made move grow help need"
)
WORDS = list(dict.fromkeys(_TEXT.split()))


def write_tokenizer(path: Path) -> None:
    """A word-level tokenizer.json with dolma2's vocabulary size and its end-of-text and padding ids."""
    from olmo_core.data import TokenizerConfig
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    dolma2 = TokenizerConfig.dolma2()
    vocab = {f"<|unused_{i}|>": i for i in range(dolma2.vocab_size)}
    for i, word in enumerate(["[UNK]", *WORDS]):
        vocab.pop(f"<|unused_{i}|>")
        vocab[word] = i
    for name, token_id in (("<|endoftext|>", dolma2.eos_token_id), ("<|pad|>", dolma2.pad_token_id)):
        vocab.pop(f"<|unused_{token_id}|>")
        vocab[name] = token_id
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path))


def plan(corpus: Path, tokenizer: Path, run_dir: Path) -> Path:
    from olmix.planning.plan import build_plan
    from olmix.planning.planfile import write_plan

    config = Path(__file__).resolve().parents[1] / "config/examples/launch/quality_thresholds/quality_top30pct.yaml"
    built = build_plan(
        config,
        path_map=[("s3://ai2-llm/preprocessed/", f"{corpus}/")],
        use_cache=False,
        overrides=[
            "proxy_model_id=olmo3_1m",
            "chinchilla_multiple=0.001",
            f"tokenizer={tokenizer}",
            f"eval_tasks=[{', '.join(TASKS)}]",
            "eval_interval=100000",  # the last step only
        ],
    )
    write_plan(built, run_dir / "plan.json")
    return run_dir / "plan.json"


_RUNNING = re.compile(r"Running downstream '([^']+)' evals")
_STEP = re.compile(r"\[eval=downstream,step=(\d+)/(\d+)\]")
_FINISHED = re.compile(r"Finished downstream '([^']+)' evals in ([0-9.]+) seconds")


def task_costs(log: str) -> dict[str, tuple[float, int, int]]:
    """Per task, from OLMo-core's log: (seconds, batches evaluated, batches in the whole task)."""
    out: dict[str, tuple[float, int, int]] = {}
    batches = (0, 0)
    for line in log.splitlines():
        if _RUNNING.search(line):
            batches = (0, 0)
        elif m := _STEP.search(line):
            batches = (int(m.group(1)), int(m.group(2)))
        elif m := _FINISHED.search(line):
            out[m.group(1)] = (float(m.group(2)), *batches)
    return out


def train(plan_path: Path, *flags: str) -> tuple[dict[str, Any], str]:
    command = [sys.executable, "-m", "olmix.train", "--plan", str(plan_path), "--device", "cpu"]
    done = subprocess.run(
        [*command, "--downstream-batches", str(BATCHES), *flags],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
    )
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        sys.exit(1)
    return json.loads((plan_path.parent / "metrics.json").read_text()), done.stdout + done.stderr


def shares(metrics: dict[str, Any]) -> str:
    wall = metrics["wall_seconds"]
    training = metrics["train_seconds"] - metrics["eval_seconds"]
    return (
        f"wall {wall:.0f} s: training {training:.0f} s ({training / wall:.0%}), "
        f"evaluating {metrics['eval_seconds']:.0f} s ({metrics['eval_seconds'] / wall:.0%}), "
        f"scoring {metrics['scoring_seconds']:.0f} s ({metrics['scoring_seconds'] / wall:.0%}); "
        f"held-out {metrics['settings']['heldout_tokens']:,} tokens per leaf"
    )


def main() -> None:
    if any(importlib.util.find_spec(m) is None for m in ("torch", "olmo_core", "olmo_eval", "tokenizers")):
        print("bench_eval: skipped, needs the olmix[train] and olmix[eval] extras")
        return
    from olmix.demodata import write_corpus

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_corpus(root / "corpus", seed=0)
        write_tokenizer(root / "tokenizer.json")
        runs = {}
        for name, flags in (("before", ("--heldout-tokens", str(BEFORE_HELDOUT_TOKENS))), ("after", ())):
            run_dir = root / "runs" / "bench" / name
            run_dir.mkdir(parents=True)
            runs[name] = train(plan(root / "corpus", root / "tokenizer.json", run_dir), *flags)
    metrics, log = runs["after"]
    print(
        f"downstream evaluator on the demo proxy (olmo3_1m, cpu, {metrics['steps']} steps), {BATCHES} batches a task:"
    )
    for task, (seconds, batches, total) in task_costs(log).items():
        per_batch = seconds / batches if batches else float("nan")
        print(f"  {task}: {per_batch:.2f} s/batch; the whole task, {total} batches: about {per_batch * total:.0f} s")
    leaves = len(metrics["heldout"]["leaves"])
    for name, (found, _) in runs.items():
        print(f"{name} ({leaves} leaves): {shares(found)}")


if __name__ == "__main__":
    main()
