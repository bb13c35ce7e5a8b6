"""Train one run of a launch plan with OLMo-core: `python -m olmix.train --plan RUN_PLAN`.

The run's leaves become OLMo-core's source mixture (see `olmix.training.olmocore`),
its `model` one of OLMo-core's presets, and OLMo-core's own `Trainer` trains
it, on the GPU when there is one and on the CPU otherwise. Afterwards the
model's loss is measured on each leaf's held-out tokens (see
`olmix.training.heldout`), and `metrics.json` is written atomically into the output
folder (default: the plan's folder).

Defaults (each has a flag):

| setting | CPU | GPU |
| --- | --- | --- |
| `--sequence-length` | 128 | 1024 |
| `--device-batch-size` (instances) | 4 | the plan's `device_batch_size` |
| `--global-batch-size` (instances) | the plan's `global_batch_size`, else one device batch | same |
| `--learning-rate` (AdamW, cosine to 10% after 10% warm-up) | 4e-3 | 4e-3 |
| `--max-steps` | none: the plan's `requested_tokens` decide | same |
| `--heldout-tokens` (per leaf) | a share of the run, at most 4096 | a share, at most 65536 |
| `--eval-tokens` (per `--eval` set) | a share of the run, at most 8192 | same |

Steps = ceil(requested_tokens / (global batch × sequence length)); OLMo-core
apportions exactly that many instances over the leaves.

Scoring is sized to the run: by default the held-out leaves and `--eval` sets
together score at most a quarter of the tokens the run trains (SCORING_SHARE),
each an equal part in whole sequences, at least one sequence each; a forward
pass costs about a third of a training step, so scoring takes a small part of
the run. A size given as a flag is kept as given.

Under torchrun (`WORLD_SIZE` > 1) the run trains data-parallel: OLMo-core's
training environment starts the process group (gloo on the CPU, NCCL with
gloo beside it on GPUs), the model is replicated (OLMo-core's DDP), each rank
reads its own share of every global batch (a device batch never exceeds that
share) and rank 0 alone writes metrics.json; OLMo-core saves checkpoints
collectively. The same number of steps and tokens as one process. On GPUs the
forward pass runs under bf16 autocast, the weights and optimizer stay fp32.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from olmix.errors import OlmixError
from olmix.fileio import make_dir
from olmix.terminal import error_text, escape
from olmix.training.metrics import METRICS_FILE, write_metrics
from olmix.training.trainer import (
    MAX_BATCH_SIZE,
    MAX_SEQUENCE_LENGTH,
    Settings,
    default_settings,
    load_run,
    proportional_scoring,
    rank,
    train,
)

if TYPE_CHECKING:
    from olmix_generated.launch_plan import Run


def _eval_set(text: str) -> tuple[str, str]:
    name, sep, pattern = text.partition("=")
    if not sep or not name or not pattern:
        raise click.BadParameter(f"{text!r} is not NAME=GLOB", param_hint="--eval")
    return name, pattern


def _detect_device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def flag_settings(run: Run, device: str, flags: dict[str, Any]) -> Settings:
    """The defaults for `run` on `device`, with the flags given (None or () for a flag not given).

    A batch size given alone moves the other only as far as it must: a device
    batch never exceeds the global batch.
    """
    settings = default_settings(run, device)
    given = {key: value for key, value in flags.items() if value is not None and value != ()}
    if "eval_sets" in given:
        given["eval_sets"] = tuple(_eval_set(text) for text in given["eval_sets"])
    if "device_batch_size" in given and "global_batch_size" not in given:
        given["global_batch_size"] = max(given["device_batch_size"], settings.global_batch_size)
    if "global_batch_size" in given and "device_batch_size" not in given:
        given["device_batch_size"] = min(settings.device_batch_size, given["global_batch_size"])
    chosen = replace(settings, **given)
    return proportional_scoring(run, chosen, heldout="heldout_tokens" not in given, fixed="eval_tokens" not in given)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--plan", "plan_path", required=True, type=click.Path(dir_okay=False), help="Launch plan (JSON).")
@click.option("--run", "run_name", help="Which run of the plan (needed when it has several).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder [default: the plan's folder].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--sequence-length",
    type=click.IntRange(min=2, max=MAX_SEQUENCE_LENGTH),
    help="Tokens per instance [CPU 128, GPU 1024].",
)
@click.option("--device-batch-size", type=click.IntRange(min=1, max=MAX_BATCH_SIZE), help="Instances per forward pass.")
@click.option(
    "--global-batch-size", type=click.IntRange(min=1, max=MAX_BATCH_SIZE), help="Instances per optimizer step."
)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), help="Peak AdamW learning rate [4e-3].")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many steps.")
@click.option(
    "--heldout-tokens",
    type=click.IntRange(min=1),
    help="Held-out tokens evaluated per leaf [a share of the run: CPU at most 4096, GPU 65536].",
)
@click.option("--seed", type=int, help="[default: the run's seed]")
@click.option(
    "--eval",
    "eval_sets",
    multiple=True,
    metavar="NAME=GLOB",
    help="A fixed evaluation set (repeatable), the same for every run of a study; its loss is reported "
    "under `eval` in metrics.json and preferred by `olmix results`.",
)
@click.option(
    "--eval-tokens",
    type=click.IntRange(min=1),
    help="Tokens per --eval set, spread over its files [a share of the run, at most 8192].",
)
@click.option(
    "--downstream-batches",
    type=click.IntRange(min=1),
    help="Batches each downstream task (the plan's eval_tasks) evaluates at most [the whole task].",
)
@click.option(
    "--checkpoint-interval",
    type=click.IntRange(min=1),
    help="Save a checkpoint every N steps into OUT/checkpoints, and resume from the latest one there "
    "(a requeued or restarted run loses at most N steps). Default: no checkpoints.",
)
def main(
    plan_path: str,
    run_name: str | None,
    out_dir: str | None,
    device: str,
    checkpoint_interval: int | None,
    **overrides: Any,
) -> None:
    """Train one run of a launch plan with OLMo-core and write its metrics.json."""
    from olmix.cli import skip_pydantic_plugins

    skip_pydantic_plugins()
    try:
        plan, run = load_run(plan_path, run_name)
        settings = flag_settings(run, _detect_device() if device == "auto" else device, overrides)
        out = Path(out_dir) if out_dir else Path(plan_path).resolve().parent
        make_dir(out)
        path = out / METRICS_FILE
        metrics = train(run, settings, out, checkpoint_interval=checkpoint_interval, group=plan.group)
        if rank() != 0:
            return  # every rank trained and measured the same model; rank 0 writes it down
        record = write_metrics(metrics, path)
    except OlmixError as exc:
        click.echo(error_text(f"olmix.train: {exc}"), err=True)
        sys.exit(1)
    loss = "none" if record.final_train_loss is None else f"{record.final_train_loss:.4f}"
    click.echo(escape(f"trained {record.steps} steps, {record.tokens_trained} tokens, final loss {loss}; wrote {path}"))


if __name__ == "__main__":
    main()
