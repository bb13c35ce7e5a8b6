"""One run's training stage: settings, OLMo-core's trainer, held-out scoring and the metrics document.

`python -m olmix.train` (olmix/train.py) is its command line; this package runs in
the trainer's process with the `train` extra (OLMo-core, torch), never in `olmix`'s.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix.errors import OlmixError, PlanError, Problem
from olmix.training.metrics import finite

if TYPE_CHECKING:
    from olmix_generated.launch_plan import LaunchPlan, Run

    from olmix.training.heldout import HeldoutLoss
    from olmix.training.olmocore import Selection

CPU_DEFAULTS = {"sequence_length": 128, "device_batch_size": 4, "heldout_tokens": 4096}
GPU_DEFAULTS = {"sequence_length": 1024, "heldout_tokens": 65536}
LEARNING_RATE = 4e-3
# Far past any model's context and any step's batch, and still small enough that an extra digit or two is refused
# with a message instead of an allocation of terabytes; the schemas state the same bound on the batch sizes.
MAX_SEQUENCE_LENGTH = 2**20
MAX_BATCH_SIZE = 2**20


@dataclass(frozen=True)
class Settings:
    """How to train a run; batch sizes in instances of `sequence_length` tokens."""

    device: str
    sequence_length: int
    device_batch_size: int
    global_batch_size: int
    learning_rate: float
    max_steps: int | None
    heldout_tokens: int
    seed: int
    eval_sets: tuple[tuple[str, str], ...] = ()  # (name, glob): fixed evaluation sets, the same for every run
    eval_tokens: int = 8192  # per evaluation set

    @property
    def global_batch_tokens(self) -> int:
        return self.global_batch_size * self.sequence_length


def load_run(plan_path: str | Path, run_name: str | None = None) -> tuple[LaunchPlan, Run]:
    """The validated plan and the run to train: the one named, else the plan's only run."""
    from olmix.planfile import read_plan

    plan = read_plan(plan_path)
    names = [run.name for run in plan.runs]
    if run_name is None:
        if len(plan.runs) == 1:
            return plan, plan.runs[0]
        message = f"the plan has {len(plan.runs)} runs; choose one with --run ({', '.join(names)})"
    else:
        for run in plan.runs:
            if run.name == run_name:
                return plan, run
        message = f"no run named {run_name!r} (runs: {', '.join(names)})"
    raise PlanError([Problem(str(plan_path), 0, 0, ("runs",), message)])


def default_settings(run: Run, device: str) -> Settings:
    """The documented defaults for a run on `device` ("cpu" or "cuda")."""
    defaults = CPU_DEFAULTS if device == "cpu" else GPU_DEFAULTS
    device_batch = CPU_DEFAULTS["device_batch_size"] if device == "cpu" else run.device_batch_size
    global_batch = run.global_batch_size or device_batch
    return Settings(
        device=device,
        sequence_length=defaults["sequence_length"],
        device_batch_size=min(device_batch, global_batch),
        global_batch_size=global_batch,
        learning_rate=LEARNING_RATE,
        max_steps=None,
        heldout_tokens=defaults["heldout_tokens"],
        seed=run.seed,
    )


def check_sizes(run: Run, settings: Settings) -> None:
    """Sizes no trainer can take, from the plan or the flags, as one error naming each (before anything is built)."""
    bounds = {
        "sequence_length": (2, MAX_SEQUENCE_LENGTH),
        "device_batch_size": (1, MAX_BATCH_SIZE),
        "global_batch_size": (1, MAX_BATCH_SIZE),
    }
    wrong = [
        f"{name.replace('_', ' ')} {getattr(settings, name):,} is not between {low:,} and {high:,}"
        for name, (low, high) in bounds.items()
        if not low <= getattr(settings, name) <= high
    ]
    if wrong:
        raise OlmixError(f"run {run.name!r}: " + "; ".join(wrong))


def check_sequence_length(run: Run, settings: Settings) -> None:
    """Every leaf has a file that holds one sequence: OLMo-core cuts sequences within a file, so a leaf whose
    files are all shorter would give no tokens (and a run whose leaves all do, a division by zero)."""
    from olmix.catalogue import ITEMSIZE

    short = []
    for leaf in run.leaves:
        longest = max(os.path.getsize(path) // ITEMSIZE[run.dtype] for path in leaf.files)
        if longest < settings.sequence_length:
            short.append(f"leaf {leaf.name} (its longest file holds {longest:,} tokens)")
    if short:
        raise OlmixError(
            f"sequence length {settings.sequence_length:,} is longer than every file of "
            + ", ".join(short)
            + "; OLMo-core cuts sequences within a file, so these would give no tokens: lower --sequence-length"
        )


def device_memory(device: str) -> int:
    """Bytes of memory the device has in all: the GPU's, or this machine's."""
    if device == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(settings: Settings, *, vocab_size: int, memory: int) -> None:
    """Batches whose least memory is more than the device has in all, refused before anything is allocated (a batch
    too large for memory otherwise ends in an allocation error, or the kernel killing the process, mid-build).

    The least: a forward pass's logits in float32 (device batch × sequence length × vocabulary × 4 bytes), and a
    step's token ids as the data loader holds them (global batch × sequence length × 8 bytes; a rank holds its
    share of them, so with several ranks this is an upper bound).
    """
    forward = settings.device_batch_size * settings.sequence_length
    needs = {
        "the logits of one forward pass": forward * vocab_size * 4,
        "one step's token ids": settings.global_batch_size * settings.sequence_length * 8,
    }
    over = [f"{what} need {size / 2**30:,.1f} GiB" for what, size in needs.items() if size > memory]
    if over:
        raise OlmixError(
            f"{settings.device_batch_size} × {settings.sequence_length} tokens per forward pass and "
            f"{settings.global_batch_size} × {settings.sequence_length} per step cannot fit: "
            + " and ".join(over)
            + f", the {settings.device} has {memory / 2**30:,.1f} GiB in all; "
            "lower --device-batch-size, --global-batch-size or --sequence-length"
        )


def _out_of_memory(exc: BaseException) -> bool:
    # torch raises OutOfMemoryError on a GPU and a plain RuntimeError from its CPU allocator
    return (
        isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(exc)
    )


def planned_steps(run: Run, settings: Settings) -> int:
    """Steps that consume the run's requested tokens once."""
    return max(1, math.ceil(run.requested_tokens / settings.global_batch_tokens))


def world_size() -> int:
    """Processes training this run together (torchrun sets WORLD_SIZE; 1 without it)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise OlmixError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number of processes") from None


def rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        raise OlmixError(f"RANK={os.environ['RANK']!r} is not a process rank") from None


def distributed_backend(device: str, world: int) -> str | None:
    """The process group OLMo-core's training environment starts: none for one process."""
    if world == 1:
        return None
    return "cpu:gloo,cuda:nccl" if device == "cuda" else "gloo"


def per_rank(settings: Settings, world: int) -> Settings:
    """The settings each of `world` data-parallel ranks trains with: its device batch fits its share."""
    if settings.global_batch_size % world:
        raise OlmixError(
            f"global batch size {settings.global_batch_size} cannot be split evenly over {world} processes"
        )
    share = settings.global_batch_size // world
    return replace(settings, device_batch_size=min(settings.device_batch_size, share))


def _peak_rss_bytes() -> int:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * 1024  # kilobytes on Linux


def _share_cores() -> None:
    # OLMo-core sets 8 OpenMP threads when it is imported and starts one index-preparing process per
    # file; on a small machine both oversubscribe the cores. So set both first; the environment wins.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(cores))
    os.environ.setdefault("OLMO_DATA_PREP_WORKERS", str(min(cores, 4)))


@dataclass(frozen=True)
class Trained:
    """What training left: the model, and what it did."""

    model: Any
    steps: int
    tokens: int
    seconds: float
    losses: list[tuple[int, float]]  # (step, training loss), in step order, of this process's steps
    resumed_from: int | None = None  # the step of the checkpoint training resumed from
    tokens_before: int = 0  # tokens the checkpoint it resumed from had trained (not this process's)


@dataclass(frozen=True)
class Scores:
    """The trained model's loss on each leaf's held-out tokens and on the fixed evaluation sets."""

    leaves: dict[str, HeldoutLoss]
    missing: list[str]  # leaves without held-out tokens
    fixed: dict[str, HeldoutLoss]


def train(
    run: Run, settings: Settings, out_dir: str | os.PathLike[str], *, checkpoint_interval: int | None = None
) -> dict[str, Any]:
    """Train the run and measure it; the metrics (not yet written).

    With `checkpoint_interval`, a checkpoint is saved every that many steps
    into OUT/checkpoints, and training resumes from the latest one there (a
    requeued or restarted run loses at most that many steps).
    """
    from olmix.training import heldout, olmocore

    check_sizes(run, settings)
    fixed = heldout.eval_files(settings.eval_sets)
    _share_cores()
    olmocore.require_train_extra()
    started = time.perf_counter()

    import torch
    from olmo_core.train import prepare_training_environment, teardown_training_environment

    world = world_size()
    settings = per_rank(settings, world)
    if (settings.global_batch_size // world) % settings.device_batch_size:
        raise OlmixError(
            f"global batch size {settings.global_batch_size} is not a multiple of "
            f"device batch size {settings.device_batch_size}" + (f" × {world} processes" if world > 1 else "")
        )
    tokenizer = olmocore.tokenizer_config(run)
    olmocore.check_token_files(
        run, eos_token_id=tokenizer.eos_token_id, vocab_size=tokenizer.vocab_size, eval_sets=fixed
    )
    check_sequence_length(run, settings)
    check_memory(settings, vocab_size=tokenizer.padded_vocab_size(), memory=device_memory(settings.device))
    selections = olmocore.build_mixture(
        run, sequence_length=settings.sequence_length, global_batch_size=settings.global_batch_tokens
    )
    steps = planned_steps(run, settings)
    if settings.max_steps is not None:
        steps = min(steps, settings.max_steps)

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    prepare_training_environment(seed=settings.seed, backend=distributed_backend(settings.device, world))
    try:
        device = torch.device(settings.device)
        try:
            trained = fit(
                run,
                settings,
                steps,
                Path(out_dir),
                vocab_size=tokenizer.padded_vocab_size(),
                device=device,
                checkpoint_interval=checkpoint_interval,
            )
            scores = score(trained.model, run, settings, fixed, device=device)
        except (MemoryError, RuntimeError) as exc:
            if not _out_of_memory(exc):
                raise
            raise OlmixError(
                f"out of memory on the {settings.device} with {settings.device_batch_size} instances of "
                f"{settings.sequence_length} tokens per forward pass and {settings.global_batch_size} per step; "
                "lower --device-batch-size, --global-batch-size or --sequence-length"
            ) from None
    finally:
        teardown_training_environment()  # type: ignore[no-untyped-call]
    return metrics_document(run, settings, selections, trained, scores, wall_seconds=time.perf_counter() - started)


def train_module_config(settings: Settings, steps: int, world: int) -> Any:
    """OLMo-core's `TransformerTrainModuleConfig` for this run: DDP over `world` > 1 processes, bf16 autocast on
    GPUs (fp32 weights and optimizer state; the CPU has no fast bf16 matmul to gain from it)."""
    from olmo_core.config import DType
    from olmo_core.distributed.parallel import DataParallelType
    from olmo_core.optim import AdamWConfig, CosWithWarmup
    from olmo_core.train.train_module import TransformerDataParallelConfig, TransformerTrainModuleConfig

    return TransformerTrainModuleConfig(
        rank_microbatch_size=settings.device_batch_size * settings.sequence_length,
        max_sequence_length=settings.sequence_length,
        optim=AdamWConfig(lr=settings.learning_rate, weight_decay=0.1),
        scheduler=CosWithWarmup(warmup=max(1, steps // 10), alpha_f=0.1),
        max_grad_norm=1.0,
        compile_model=False,
        dp_config=TransformerDataParallelConfig(name=DataParallelType.ddp) if world > 1 else None,
        autocast_precision=DType.bfloat16 if settings.device == "cuda" else None,
    )


def fit(
    run: Run,
    settings: Settings,
    steps: int,
    out: Path,
    *,
    vocab_size: int,
    device: Any,
    checkpoint_interval: int | None = None,
) -> Trained:
    """Build the run's data, model and OLMo-core trainer, and train for `steps` steps (resuming, with checkpoints)."""
    from olmo_core.data import NumpyDataLoaderConfig
    from olmo_core.train import Duration, TrainerConfig
    from olmo_core.train.callbacks import Callback

    from olmix.training import olmocore

    work_dir = out / "work"
    losses: dict[int, float] = {}

    class RecordLoss(Callback):
        def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
            if "train/CE loss" in metrics:
                losses[step] = float(metrics["train/CE loss"])

    dataset = olmocore.dataset_config(
        run, sequence_length=settings.sequence_length, global_batch_size=settings.global_batch_tokens, work_dir=work_dir
    ).build()
    model = olmocore.model_config(run.model, vocab_size=vocab_size).build(init_device="cpu")
    train_module = train_module_config(settings, steps, world_size()).build(model, device=device)
    loader = NumpyDataLoaderConfig(
        global_batch_size=settings.global_batch_tokens, seed=settings.seed, num_workers=0, work_dir=str(work_dir)
    ).build(dataset)
    trainer = (
        TrainerConfig(
            save_folder=str(out / "checkpoints"),
            work_dir=str(work_dir),
            device=settings.device,
            save_overwrite=True,
            max_duration=Duration.steps(steps),
            metrics_collect_interval=1,
            cancel_check_interval=1000,
            no_checkpoints=checkpoint_interval is None,
            no_evals=True,
        )
        .with_callback("olmix_loss", RecordLoss())
        .build(train_module, loader)
    )
    checkpointer = trainer.callbacks.get("checkpointer")
    resumed_from = None
    tokens_before = 0
    if checkpoint_interval is None:
        if checkpointer is not None:  # a proxy run keeps no checkpoints unless asked to
            checkpointer.enabled = False  # type: ignore[attr-defined]
    else:
        if checkpointer is not None:
            checkpointer.save_interval = checkpoint_interval  # type: ignore[attr-defined]
        if trainer.maybe_load_checkpoint(trainer.save_folder, load_trainer_state=True, load_optim_state=True):
            resumed_from = int(trainer.global_step)
            tokens_before = int(trainer.global_train_tokens_seen)
            logging.getLogger("olmix.train").warning(
                "olmix.train: resumed from the checkpoint at step %d in %s", resumed_from, trainer.save_folder
            )
    started = time.perf_counter()
    trainer.fit()  # type: ignore[no-untyped-call]
    seconds = time.perf_counter() - started
    return Trained(
        model,
        int(trainer.global_step),
        int(trainer.global_train_tokens_seen),
        seconds,
        sorted(losses.items()),
        resumed_from,
        tokens_before,
    )


def score(model: Any, run: Run, settings: Settings, fixed: dict[str, list[str]], *, device: Any) -> Scores:
    """The model's loss on each leaf's held-out tokens and on every fixed evaluation set (name -> its files)."""
    from olmix.training import heldout

    per_leaf: dict[str, HeldoutLoss] = {}
    missing: list[str] = []
    scoring: dict[str, Any] = {"dtype": run.dtype, "sequence_length": settings.sequence_length, "device": device}
    for leaf in run.leaves:
        files = heldout.heldout_files(leaf.files)
        if not files:
            missing.append(leaf.name)
            continue
        per_leaf[leaf.name] = heldout.evaluate(model, files, max_tokens=settings.heldout_tokens, **scoring)
    losses = {
        name: heldout.evaluate_set(model, files, max_tokens=settings.eval_tokens, **scoring)
        for name, files in fixed.items()
    }
    return Scores(per_leaf, missing, losses)


def metrics_document(
    run: Run,
    settings: Settings,
    selections: list[Selection],
    trained: Trained,
    scores: Scores,
    *,
    wall_seconds: float,
) -> dict[str, Any]:
    """The run's metrics.json document."""
    from olmix.training import heldout

    curve = trained.losses
    return {
        "metrics_version": 1,
        "run": run.name,
        "model": run.model,
        "device": settings.device,
        "settings": asdict(settings),
        "requested_tokens": run.requested_tokens,
        "steps": trained.steps,
        "tokens_trained": trained.tokens,
        "final_train_loss": finite(curve[-1][1]) if curve else None,
        "train_loss": [[step, finite(loss)] for step, loss in curve],
        "mixture": {s.leaf: {"target_ratio": s.target_ratio, "selected_tokens": s.tokens} for s in selections},
        "heldout": {
            "sources": {name: r.as_dict() for name, r in heldout.by_source(scores.leaves).items()},
            "leaves": {name: r.as_dict() for name, r in scores.leaves.items()},
            "missing": scores.missing,
        },
        "eval": {name: r.as_dict() for name, r in scores.fixed.items()},
        "wall_seconds": wall_seconds,
        "train_seconds": trained.seconds,
        "tokens_per_second": (
            finite((trained.tokens - trained.tokens_before) / trained.seconds) if trained.seconds > 0 else None
        ),
        "peak_rss_bytes": _peak_rss_bytes(),
    }
