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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix.errors import OlmixError, PlanError, Problem
from olmix.training.metrics import finite
from olmix.training.progress import Reporter

if TYPE_CHECKING:
    from olmix_generated.launch_plan import LaunchPlan, Run, Training

    from olmix.training.heldout import HeldoutLoss
    from olmix.training.olmocore import Selection

CPU_DEFAULTS = {"sequence_length": 128, "device_batch_size": 4, "heldout_tokens": 4096}
GPU_DEFAULTS = {"sequence_length": 1024, "heldout_tokens": 65536}
LEARNING_RATE = 4e-3
# Far past any model's context and any step's batch, and still small enough that an extra digit or two is refused
# with a message instead of an allocation of terabytes; the schemas state the same bound on the batch sizes.
MAX_SEQUENCE_LENGTH = 2**20
MAX_BATCH_SIZE = 2**20
EVAL_TOKENS = 8192  # per fixed evaluation set, at most, by default
# By default the held-out leaves and fixed evaluation sets together score at most this share of the tokens the
# run trains (each an equal part, at least one sequence, at most its default above); a forward pass costs about a
# third of a training step, so scoring takes a small fraction of training.
SCORING_SHARE = 0.25


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
    eval_tokens: int = EVAL_TOKENS  # per evaluation set
    downstream_batches: int | None = None  # batches per downstream task and evaluation; None: the whole task

    @property
    def global_batch_tokens(self) -> int:
        return self.global_batch_size * self.sequence_length


def load_run(plan_path: str | Path, run_name: str | None = None) -> tuple[LaunchPlan, Run]:
    """The validated plan and the run to train: the one named, else the plan's only run."""
    from olmix.planning.planfile import read_plan

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


def training_steps(run: Run, settings: Settings) -> int:
    """Steps the run trains: the planned ones, at most --max-steps."""
    steps = planned_steps(run, settings)
    return steps if settings.max_steps is None else min(steps, settings.max_steps)


def scoring_share(run: Run, settings: Settings) -> int:
    """Tokens per held-out leaf and per fixed evaluation set that keep scoring within SCORING_SHARE of the tokens
    trained: whole sequences, at least one."""
    trained = training_steps(run, settings) * settings.global_batch_tokens
    sets = max(1, len(run.leaves) + len(settings.eval_sets))
    sequences = int(SCORING_SHARE * trained / sets) // settings.sequence_length
    return max(1, sequences) * settings.sequence_length


def proportional_scoring(run: Run, settings: Settings, *, heldout: bool = True, fixed: bool = True) -> Settings:
    """The settings with the default held-out (`heldout`) and evaluation-set (`fixed`) sizes cut to the run's
    share (see SCORING_SHARE); a size set by hand is kept by passing False."""
    share = scoring_share(run, settings)
    return replace(
        settings,
        heldout_tokens=min(settings.heldout_tokens, share) if heldout else settings.heldout_tokens,
        eval_tokens=min(settings.eval_tokens, share) if fixed else settings.eval_tokens,
    )


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


def training_of(run: Run) -> Training:
    """The run's training block; a plan without one pretrains from scratch and evaluates nothing downstream."""
    from olmix_generated.launch_plan import Training

    return run.training if run.training is not None else Training()


def downstream_tasks(run: Run) -> list[str]:
    """The downstream tasks the trainer evaluates: none with no_eval."""
    training = training_of(run)
    return [] if training.no_eval else list(training.eval_tasks)


def evaluation_steps(steps: int, interval: int) -> list[int]:
    """The steps a downstream evaluation runs after: every `interval` steps and the last step, always."""
    return sorted({*range(interval, steps + 1, interval), steps})


def wandb_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the run's environment switches W&B on: an API key, or a mode (offline, online, disabled)."""
    env = os.environ if environ is None else environ
    return bool(env.get("WANDB_API_KEY") or env.get("WANDB_MODE"))


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
    downstream: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> its scores at the last evaluation
    eval_seconds: float = 0.0  # of `seconds`, spent in downstream evaluations


@dataclass(frozen=True)
class Scores:
    """The trained model's loss on each leaf's held-out tokens and on the fixed evaluation sets."""

    leaves: dict[str, HeldoutLoss]
    missing: list[str]  # leaves without held-out tokens
    fixed: dict[str, HeldoutLoss]
    seconds: float = 0.0


def train(
    run: Run,
    settings: Settings,
    out_dir: str | os.PathLike[str],
    *,
    checkpoint_interval: int | None = None,
    group: str | None = None,
) -> dict[str, Any]:
    """Train the run and measure it; the metrics (not yet written).

    With `checkpoint_interval`, a checkpoint is saved every that many steps
    into OUT/checkpoints, and training resumes from the latest one there (a
    requeued or restarted run loses at most that many steps). `group` is the
    plan's group: the run's W&B group.
    """
    from olmix.training import heldout, olmocore

    check_sizes(run, settings)
    fixed = heldout.eval_files(settings.eval_sets)
    _share_cores()
    olmocore.require_train_extra()
    if downstream_tasks(run):
        olmocore.require_extra("olmo_eval", "downstream evaluation (eval_tasks)", "eval")
    if wandb_enabled():
        olmocore.require_extra("wandb", "W&B logging (WANDB_API_KEY is set)", "wandb")
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
    steps = training_steps(run, settings)
    reporter = Reporter(Path(out_dir) if rank() == 0 else None)

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
                tokenizer=tokenizer,
                device=device,
                checkpoint_interval=checkpoint_interval,
                group=group,
                reporter=reporter,
            )
            scoring_started = time.perf_counter()
            scores = score(trained.model, run, settings, fixed, device=device, reporter=reporter)
            scores = replace(scores, seconds=time.perf_counter() - scoring_started)
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


def train_module_config(settings: Settings, steps: int, world: int, *, anneal: bool = False) -> Any:
    """OLMo-core's `TransformerTrainModuleConfig` for this run: DDP over `world` > 1 processes, bf16 autocast on
    GPUs (fp32 weights and optimizer state; the CPU has no fast bf16 matmul to gain from it).

    Pretraining warms up over 10% of the steps, then decays on a cosine to 10% of the peak; an anneal
    (which starts from trained weights) decays linearly from the peak to 0 with no warm-up."""
    from olmo_core.config import DType
    from olmo_core.distributed.parallel import DataParallelType
    from olmo_core.optim import AdamWConfig, CosWithWarmup, LinearWithWarmup
    from olmo_core.train.train_module import TransformerDataParallelConfig, TransformerTrainModuleConfig

    return TransformerTrainModuleConfig(
        rank_microbatch_size=settings.device_batch_size * settings.sequence_length,
        max_sequence_length=settings.sequence_length,
        optim=AdamWConfig(lr=settings.learning_rate, weight_decay=0.1),
        scheduler=(
            LinearWithWarmup(warmup=0, alpha_f=0.0)
            if anneal
            else CosWithWarmup(warmup=max(1, steps // 10), alpha_f=0.1)
        ),
        max_grad_norm=1.0,
        compile_model=False,
        dp_config=TransformerDataParallelConfig(name=DataParallelType.ddp) if world > 1 else None,
        autocast_precision=DType.bfloat16 if settings.device == "cuda" else None,
    )


DOWNSTREAM_PREFIX = "eval/downstream/"  # OLMo-core logs `eval/downstream/<task> (<metric>)`
ACCURACY_LABELS = ("accuracy", "length-normalized accuracy", "accuracy v2", "length-normalized accuracy v2")
BPB_LABELS = ("BPB", "BPB v2")


def downstream_scores(step: int, metrics: Mapping[str, float], tasks: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each task's scores among one step's logged metrics: accuracy, bits per byte and every metric by label."""
    out: dict[str, dict[str, Any]] = {}
    for task in tasks:
        prefix = f"{DOWNSTREAM_PREFIX}{task} ("
        found = {
            name[len(prefix) : -1]: finite(float(value))
            for name, value in metrics.items()
            if name.startswith(prefix) and name.endswith(")")
        }
        if not found:
            continue
        accuracy = next((found[label] for label in ACCURACY_LABELS if label in found), None)
        bpb = next((found[label] for label in BPB_LABELS if label in found), None)
        out[task] = {"step": step, "accuracy": accuracy, "bits_per_byte": bpb, "metrics": found}
    return out


def downstream_callback(run: Run, settings: Settings, steps: int, tokenizer: Any) -> Any:
    """OLMo-core's downstream evaluator for the run's tasks: every eval_interval steps and at the last step."""
    from olmo_core.train import Duration
    from olmo_core.train.callbacks import DownstreamEvaluatorCallbackConfig

    training = training_of(run)
    at = evaluation_steps(steps, training.eval_interval)
    return DownstreamEvaluatorCallbackConfig(
        tasks=downstream_tasks(run),
        tokenizer=tokenizer,
        eval_interval=None,
        fixed_steps=at,
        eval_on_finish=steps <= 1,  # OLMo-core never evaluates after step 1 itself
        eval_duration=(
            Duration.steps(settings.downstream_batches) if settings.downstream_batches else Duration.epochs(1)
        ),
    )


def wandb_callback(run: Run, group: str | None) -> Any:
    """OLMo-core's W&B callback: the run's name, the plan's group, the mixture and model as config."""
    from olmo_core.train.callbacks import WandBCallback

    class WandB(WandBCallback):
        # OLMo-core 3.0.0 finishes a run with wandb.finish(quiet=True), a keyword newer wandb releases removed
        def finalize(self, exit_code: int = 0) -> None:
            if not self.finalized:
                self.wandb.finish(exit_code=exit_code)
                self._finalized = True

    training = training_of(run)
    return WandB(
        name=run.name,
        project=os.environ.get("WANDB_PROJECT") or training.wandb_project,
        entity=os.environ.get("WANDB_ENTITY") or None,
        group=group,
        notes=run.description or None,
        config={
            "model": run.model,
            "requested_tokens": run.requested_tokens,
            "seed": run.seed,
            "train_type": training.train_type,
            "mixture": {leaf.name: leaf.ratio for leaf in run.leaves},
        },
        cancel_tags=[],  # no polling of the W&B server for cancel tags: a run is cancelled through olmix
    )


def fit(
    run: Run,
    settings: Settings,
    steps: int,
    out: Path,
    *,
    tokenizer: Any,
    device: Any,
    checkpoint_interval: int | None = None,
    group: str | None = None,
    reporter: Reporter | None = None,
) -> Trained:
    """Build the run's data, model and OLMo-core trainer, and train for `steps` steps (resuming, with checkpoints).

    An anneal run starts from its checkpoint's weights (not from the step or optimizer state it holds);
    a run that resumes from its own checkpoints resumes from those instead.
    """
    from olmo_core.data import NumpyDataLoaderConfig
    from olmo_core.train import Duration, TrainerConfig
    from olmo_core.train.callbacks import Callback

    from olmix.training import olmocore

    work_dir = out / "work"
    losses: dict[int, float] = {}
    training = training_of(run)
    tasks = downstream_tasks(run)
    downstream: dict[str, dict[str, Any]] = {}
    progress = reporter or Reporter(None)

    class RecordLoss(Callback):
        def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
            if "train/CE loss" in metrics:
                losses[step] = float(metrics["train/CE loss"])
            downstream.update(downstream_scores(step, metrics, tasks))

        def pre_train(self) -> None:
            progress.write("training", int(self.step), steps, force=True)

        def post_step(self) -> None:
            progress.write("training", int(self.step), steps)

    dataset = olmocore.dataset_config(
        run,
        sequence_length=settings.sequence_length,
        global_batch_size=settings.global_batch_tokens,
        work_dir=work_dir,
        instance_filter=training.instance_filter,
    ).build()
    model = olmocore.model_config(run.model, vocab_size=tokenizer.padded_vocab_size()).build(init_device="cpu")
    anneal = training.train_type == "anneal"
    train_module = train_module_config(settings, steps, world_size(), anneal=anneal).build(model, device=device)
    loader = NumpyDataLoaderConfig(
        global_batch_size=settings.global_batch_tokens, seed=settings.seed, num_workers=0, work_dir=str(work_dir)
    ).build(dataset)
    config = TrainerConfig(
        save_folder=str(out / "checkpoints"),
        work_dir=str(work_dir),
        device=settings.device,
        save_overwrite=True,
        max_duration=Duration.steps(steps),
        metrics_collect_interval=1,
        cancel_check_interval=1000,
        no_checkpoints=checkpoint_interval is None,
        no_evals=not tasks,
    ).with_callback("olmix_loss", RecordLoss())
    if tasks:
        config = config.with_callback("downstream_evaluator", downstream_callback(run, settings, steps, tokenizer))
    if wandb_enabled():
        config = config.with_callback("wandb", wandb_callback(run, group))
    trainer = config.build(train_module, loader)
    eval_seconds = _timed_evaluations(trainer, progress, steps)
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
    if anneal and resumed_from is None:
        load_anneal_checkpoint(trainer, run, str(training.checkpoint_path))
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
        downstream,
        eval_seconds[0],
    )


def _timed_evaluations(trainer: Any, reporter: Reporter, steps: int) -> list[float]:
    """A one-item list the seconds of the trainer's downstream evaluations add up in; each evaluation is the
    `evaluating` phase of the run's progress, and logs each task as it starts, with its ETA."""
    total = [0.0]
    callback = trainer.callbacks.get("downstream_evaluator")
    if callback is None:
        return total
    perform = callback.perform_eval

    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        evaluators = callback.evaluators
        reporter.training_step = int(trainer.global_step)
        tasks = reporter.steps("evaluating", "downstream", [1.0] * len(evaluators))

        class Announced(list):  # type: ignore[type-arg]
            def __iter__(self) -> Any:
                for evaluator in super().__iter__():
                    tasks.next(str(evaluator.display_name))
                    yield evaluator

        callback.evaluators = Announced(evaluators)
        try:
            return perform(*args, **kwargs)
        finally:
            callback.evaluators = evaluators
            tasks.done()
            reporter.write("training", reporter.training_step, steps, force=True)
            total[0] += time.perf_counter() - began

    callback.perform_eval = timed
    return total


def load_anneal_checkpoint(trainer: Any, run: Run, path: str) -> None:
    """The weights of the checkpoint an anneal run starts from, through OLMo-core's checkpointer; the step
    and optimizer state stay new. A checkpoint that cannot be loaded is an error naming it."""
    from olmix.training.options import checkpoint_problem

    if (why := checkpoint_problem(path)) is not None:
        raise olmocore_unusable(run, why)
    try:
        trainer.load_checkpoint(path, load_trainer_state=False, load_optim_state=False)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise olmocore_unusable(run, f"checkpoint {path} could not be loaded: {type(exc).__name__}: {exc}") from None
    logging.getLogger("olmix.train").warning("olmix.train: annealing from the weights of %s", path)


def olmocore_unusable(run: Run, message: str) -> OlmixError:
    from olmix.training import olmocore

    return olmocore.unusable(run, ("training", "checkpoint_path"), message)


def score(
    model: Any,
    run: Run,
    settings: Settings,
    fixed: dict[str, list[str]],
    *,
    device: Any,
    reporter: Reporter | None = None,
) -> Scores:
    """The model's loss on each leaf's held-out tokens and on every fixed evaluation set (name -> its files); the
    `scoring` phase of the run's progress, each set logged as it starts, with the ETA."""
    from olmix.training import heldout

    per_leaf: dict[str, HeldoutLoss] = {}
    scoring: dict[str, Any] = {"dtype": run.dtype, "sequence_length": settings.sequence_length, "device": device}
    with_files = [(leaf.name, heldout.heldout_files(leaf.files)) for leaf in run.leaves]
    missing = [name for name, files in with_files if not files]
    leaves = [(name, files) for name, files in with_files if files]
    weights = [float(settings.heldout_tokens)] * len(leaves) + [float(settings.eval_tokens)] * len(fixed)
    sets = (reporter or Reporter(None)).steps("scoring", "held-out", weights)
    for name, files in leaves:
        sets.next(name)
        per_leaf[name] = heldout.evaluate(model, files, max_tokens=settings.heldout_tokens, **scoring)
    losses = {}
    for name, files in fixed.items():
        sets.next(f"--eval {name}")
        losses[name] = heldout.evaluate_set(model, files, max_tokens=settings.eval_tokens, **scoring)
    sets.done()
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
        # absent, not null, where a setting is unset: the schema tells the two apart
        "settings": {key: value for key, value in asdict(settings).items() if value is not None or key == "max_steps"},
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
        "downstream": trained.downstream,
        "wall_seconds": wall_seconds,
        "train_seconds": trained.seconds,
        "eval_seconds": trained.eval_seconds,
        "scoring_seconds": scores.seconds,
        "tokens_per_second": (
            finite((trained.tokens - trained.tokens_before) / trained.seconds) if trained.seconds > 0 else None
        ),
        "peak_rss_bytes": _peak_rss_bytes(),
    }
