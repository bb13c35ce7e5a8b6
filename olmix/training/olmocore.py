"""The bridge to OLMo-core: a run of a launch plan as OLMo-core's own configs.

A plan's run names its leaves with their files, target ratios and repetition
caps; OLMo-core's `SourceMixtureConfig` takes exactly these (leaf name →
`source_name`, ratio → `target_ratio`, files → `paths`,
max_repetition_factor → `max_repetition_ratio`), and the run's
`requested_tokens` becomes the mixture's token budget. The run's `model` (an
olmix model id such as `olmo3_14m`) names one of OLMo-core's
`TransformerConfig` presets (olmix.catalogue names them).

A run here is a run of a validated plan (`planfile.read_plan`): its schema has
already ruled out a run without leaves, a leaf without files or an unknown
dtype, so what is checked here is only what a schema cannot state (ratios
that sum to 1, files that hold whole tokens ending with EOS).

OLMo-core and torch are the `olmix[train]` extra: they are imported inside the
functions that need them, never at module level.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from olmix.catalogue import ITEMSIZE, TOKENIZERS, model
from olmix.errors import ExtraMissing, JsonPath, OlmixError, PlanError, Problem

if TYPE_CHECKING:
    from olmix_generated.launch_plan import PlanLeaf, Run


class DataError(OlmixError):
    """A token file that is missing or malformed."""


class InfeasibleMixture(OlmixError):
    """A leaf holds too few tokens for its share of the budget."""


TRAIN_MODULES = ("torch", "olmo_core", "numpy")
"""What `python -m olmix.train` imports from the `train` extra."""


def runs_olmix_train(command: Sequence[str]) -> bool:
    """Whether a trainer command runs olmix's own trainer (`... -m olmix.train ...`)."""
    import itertools

    return any(a == "-m" and b == "olmix.train" for a, b in itertools.pairwise(command))


def train_extra_missing(python: str) -> list[str]:
    """The modules of the `train` extra that `python` cannot import, found without importing them: this
    interpreter is asked with importlib's finder, another one by a short subprocess that does the same."""
    import importlib.util
    import subprocess
    import sys

    if os.path.abspath(python) == os.path.abspath(sys.executable):  # a venv links to its base: not realpath
        return [m for m in TRAIN_MODULES if importlib.util.find_spec(m) is None]
    probe = f"import importlib.util as u; print(' '.join(m for m in {TRAIN_MODULES!r} if u.find_spec(m) is None))"
    try:
        out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []  # not a Python that answers: the program check and the run's log say what is wrong
    return out.stdout.split() if out.returncode == 0 else []


def require_train_extra() -> None:
    """Fail with a message naming the extra unless OLMo-core and torch import."""
    missing = []
    for module in TRAIN_MODULES:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ExtraMissing(f"training needs {', '.join(missing)}, which is not installed", "train")


def require_extra(module: str, what: str, extra: str) -> None:
    """Fail with the one-line message naming `extra` unless `module` imports."""
    try:
        __import__(module)
    except ImportError:
        raise ExtraMissing(f"{what} needs {module}, which is not installed", extra) from None


def model_constructor(model_id: str) -> str:
    """OLMo-core's `TransformerConfig` constructor name for an olmix model id."""
    return model(model_id).olmo_core


def unusable(run: Run, path: JsonPath, message: str) -> PlanError:
    """A run that a valid plan holds but a trainer cannot use, `path` inside the run."""
    return PlanError([Problem(f"run '{run.name}'", 0, 0, path, message)])


EOS_TOKENS = ("<|endoftext|>", "</s>", "<eos>", "[SEP]")
PAD_TOKENS = ("<|pad|>", "<pad>", "[PAD]")


def tokenizer_config(run: Run) -> Any:
    """OLMo-core's `TokenizerConfig` for the run's tokenizer: a name olmix knows (its hub identifier), or
    the path of a local `tokenizer.json` (its end-of-document token is the first of EOS_TOKENS it has; its
    padding token the first of PAD_TOKENS, else the end-of-document token)."""
    from olmo_core.data import TokenizerConfig

    if run.tokenizer.endswith(".json") or os.path.isfile(run.tokenizer):
        return local_tokenizer_config(run)
    if run.tokenizer not in TOKENIZERS:
        known = ", ".join(sorted(TOKENIZERS))
        raise unusable(run, ("tokenizer",), f"unknown tokenizer {run.tokenizer!r} (known: {known})")
    return getattr(TokenizerConfig, TOKENIZERS[run.tokenizer])()


def local_tokenizer_config(run: Run) -> Any:
    from olmo_core.data import TokenizerConfig

    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(run.tokenizer)
    except ImportError:
        raise ExtraMissing("a local tokenizer.json needs tokenizers, which is not installed", "eval") from None
    except Exception as exc:  # tokenizers raises its own Exception for a file it cannot parse
        raise unusable(run, ("tokenizer",), f"cannot read tokenizer {run.tokenizer}: {exc}") from None
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    eos = next((vocab[t] for t in EOS_TOKENS if t in vocab), None)
    if eos is None:
        raise unusable(run, ("tokenizer",), f"tokenizer {run.tokenizer} has none of {', '.join(EOS_TOKENS)}")
    pad = next((vocab[t] for t in PAD_TOKENS if t in vocab), eos)
    return TokenizerConfig(
        vocab_size=tokenizer.get_vocab_size(), eos_token_id=eos, pad_token_id=pad, identifier=run.tokenizer
    )


def model_config(model_id: str, *, vocab_size: int, attn_backend: str | None = "torch") -> Any:
    """OLMo-core's `TransformerConfig` for an olmix model id.

    The olmo3 presets default to flash attention, which needs a GPU and the
    flash-attn package; `attn_backend="torch"` (the default here) runs anywhere.
    `None` keeps the preset's own backend.
    """
    from olmo_core.nn.attention import AttentionBackendName
    from olmo_core.nn.transformer import TransformerConfig

    constructor = getattr(TransformerConfig, model_constructor(model_id))
    kwargs: dict[str, Any] = {"vocab_size": vocab_size}
    if attn_backend is not None:
        kwargs["attn_backend"] = AttentionBackendName(attn_backend)
    return constructor(**kwargs)


def run_leaves(run: Run) -> list[PlanLeaf]:
    """The run's leaves, once their ratios are checked to sum to 1 (which its schema cannot state)."""
    total = sum(leaf.ratio for leaf in run.leaves)
    if abs(total - 1.0) > 1e-6:
        raise unusable(run, ("leaves",), f"the ratios sum to {total}, not 1")
    return run.leaves


RANGE_CHUNK = 1 << 22  # tokens read at a time when looking for an id outside the vocabulary


def check_token_files(
    run: Run, *, eos_token_id: int, vocab_size: int, eval_sets: Mapping[str, Sequence[str]] | None = None
) -> None:
    """Every file the run reads exists, holds whole tokens whose ids are below `vocab_size`, and each training file
    ends with EOS. OLMo-core's own errors say none of this; an id past the vocabulary fails deep inside the model
    (or the GPU), naming no file.

    The files are the leaves' training files, their held-out files and the fixed evaluation sets' files
    (`eval_sets`: name -> files). A training file's last token is read for EOS; every file is read whole, a chunk at
    a time, for the range, unless the dtype cannot hold an id as large as `vocab_size`.
    """
    from olmix.training.heldout import heldout_files

    itemsize = ITEMSIZE[run.dtype]
    ranged = 256**itemsize > vocab_size
    checked: list[tuple[str, str, int | None]] = []  # (whose, path, the end-of-document token it must end with)
    for leaf in run_leaves(run):
        checked += [(f"leaf {leaf.name}", path, eos_token_id) for path in leaf.files]
        checked += [(f"leaf {leaf.name} (held out)", path, None) for path in heldout_files(leaf.files)]
    for name, files in (eval_sets or {}).items():
        checked += [(f"--eval {name}", path, None) for path in files]
    problems = []
    for whose, path, eos in checked:
        problem = _token_file_problem(path, itemsize, eos)
        if problem is None and ranged:
            problem = _out_of_vocabulary(path, run.dtype, vocab_size, run.tokenizer)
        if problem:
            problems.append(f"{whose}: {path}: {problem}")
    if problems:
        raise DataError("bad token files:\n  " + "\n  ".join(problems))


def _token_file_problem(path: str, itemsize: int, eos_token_id: int | None) -> str | None:
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "empty file"
        if size % itemsize:
            return f"{size} bytes is not a whole number of {itemsize}-byte tokens"
        if eos_token_id is None:
            return None
        with open(path, "rb") as f:
            f.seek(size - itemsize)
            last = int.from_bytes(f.read(itemsize), "little")
    except OSError as exc:
        return exc.strerror or str(exc)
    if last != eos_token_id:
        return f"does not end with the end-of-document token {eos_token_id} (last token {last})"
    return None


def _out_of_vocabulary(path: str, dtype: str, vocab_size: int, tokenizer: str) -> str | None:
    """The first token whose id is `vocab_size` or more, as a problem; None when every id is in range."""
    import numpy as np

    try:
        tokens = np.memmap(path, dtype=np.dtype(dtype).newbyteorder("<"), mode="r")
    except (OSError, ValueError) as exc:
        return str(exc)
    for start in range(0, len(tokens), RANGE_CHUNK):
        chunk = tokens[start : start + RANGE_CHUNK]
        if int(chunk.max()) >= vocab_size:
            at = int(np.argmax(chunk >= vocab_size))
            return (
                f"token {start + at:,} is id {int(chunk[at]):,}, outside the {tokenizer} tokenizer's "
                f"{vocab_size:,} ids (0 to {vocab_size - 1:,}): made with another tokenizer, or not {dtype}?"
            )
    return None


def source_mixture_config(
    run: Run,
    *,
    global_batch_size: int,
    seed: int | None = None,
    processes: int = 1,
) -> Any:
    """OLMo-core's `SourceMixtureDatasetConfig` for one run of a plan.

    `global_batch_size` is in tokens (OLMo-core's unit); the run's seed unless
    `seed` is given.
    """
    from olmo_core.data.source_mixture import SourceMixtureConfig, SourceMixtureDatasetConfig, SourceMixtureList

    sources = [
        SourceMixtureConfig(
            source_name=leaf.name,
            target_ratio=leaf.ratio,
            paths=list(leaf.files),
            max_repetition_ratio=leaf.max_repetition_factor,
        )
        for leaf in run_leaves(run)
    ]
    return SourceMixtureDatasetConfig(
        source_list=SourceMixtureList(sources=sources),
        requested_tokens=run.requested_tokens,
        global_batch_size=global_batch_size,
        processes=processes,
        seed=run.seed if seed is None else seed,
        render_tables=False,
        quiet=True,
    )


def dataset_config(
    run: Run,
    *,
    sequence_length: int,
    global_batch_size: int,
    work_dir: str | os.PathLike[str],
    seed: int | None = None,
    instance_filter: Any = None,
) -> Any:
    """OLMo-core's `NumpyFSLDatasetConfig` over the run's mixture; `global_batch_size` in tokens.

    `instance_filter` (the plan's, with its three repetition thresholds) becomes OLMo-core's
    `InstanceFilterConfig`: an instance it flags is masked out of the loss."""
    from olmo_core.data import NumpyFSLDatasetConfig
    from olmo_core.data.numpy_dataset import InstanceFilterConfig

    mixture = source_mixture_config(run, global_batch_size=global_batch_size, seed=seed)
    return NumpyFSLDatasetConfig.from_src_mix(
        mixture,
        tokenizer=tokenizer_config(run),
        sequence_length=sequence_length,
        dtype=run.dtype,
        work_dir=str(work_dir),
        instance_filter_config=(
            InstanceFilterConfig(
                repetition_min_period=instance_filter.repetition_min_period,
                repetition_max_period=instance_filter.repetition_max_period,
                repetition_max_count=instance_filter.repetition_max_count,
            )
            if instance_filter is not None
            else None
        ),
    )


@dataclass(frozen=True)
class Selection:
    """What OLMo-core selected for one leaf."""

    leaf: str
    target_ratio: float
    tokens: int


def build_mixture(run: Run, *, sequence_length: int, global_batch_size: int) -> list[Selection]:
    """Let OLMo-core apportion the run's budget over its leaves; what it selected per leaf.

    OLMo-core's "insufficient tokens" becomes `InfeasibleMixture`, a missing
    file `DataError`.
    """
    import numpy as np
    from olmo_core.exceptions import OLMoConfigurationError

    config = source_mixture_config(run, global_batch_size=global_batch_size)
    npdtype = getattr(np, run.dtype)
    try:
        mixture = config.build(npdtype=npdtype, sequence_length=sequence_length)
    except OLMoConfigurationError as exc:
        message = str(exc)
        if "Insufficient tokens" in message:
            raise InfeasibleMixture(f"run {run.name!r} is infeasible: {message}") from None
        raise unusable(run, (), message) from None
    except FileNotFoundError as exc:
        raise DataError(f"run {run.name!r}: {exc}") from None
    ratios = {leaf.name: leaf.ratio for leaf in run_leaves(run)}
    return [
        Selection(outcome.name, ratios[outcome.name], sum(p.tokens for p in outcome.path_tokens))
        for outcome in mixture.sources
    ]


def shares(selections: Sequence[Selection]) -> dict[str, float]:
    """Each leaf's share of the selected tokens."""
    total = sum(s.tokens for s in selections) or 1
    return {s.leaf: s.tokens / total for s in selections}
