"""The bridge to OLMo-core: a run of a launch plan as OLMo-core's own configs.

A plan's run names its leaves with their files, target ratios and repetition
caps; OLMo-core's `SourceMixtureConfig` takes exactly these (leaf name →
`source_name`, ratio → `target_ratio`, files → `paths`,
max_repetition_factor → `max_repetition_ratio`), and the run's
`requested_tokens` becomes the mixture's token budget. The run's `model` (an
olmix model id such as `olmo3_14m`) names one of OLMo-core's
`TransformerConfig` presets.

OLMo-core and torch are the `olmix[train]` extra: they are imported inside the
functions that need them, never at module level.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from olmix.catalogue import ITEMSIZE, TOKENIZERS, model
from olmix.errors import OlmixError

EXTRA_HINT = "install it with: pip install 'olmix[train]'"


class TrainExtraMissing(OlmixError):
    """OLMo-core or torch is not installed."""


class PlanError(OlmixError):
    """A run plan that cannot be trained as it stands."""


class DataError(OlmixError):
    """A token file that is missing or malformed."""


class InfeasibleMixture(OlmixError):
    """A leaf holds too few tokens for its share of the budget."""


def require_train_extra() -> None:
    """Fail with a message naming the extra unless OLMo-core and torch import."""
    missing = []
    for module in ("torch", "olmo_core", "numpy"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise TrainExtraMissing(f"training needs {', '.join(missing)}, which is not installed; {EXTRA_HINT}")


def model_constructor(model_id: str) -> str:
    """OLMo-core's `TransformerConfig` constructor name for an olmix model id."""
    return model(model_id).olmo_core


def tokenizer_config(name: str) -> Any:
    """OLMo-core's `TokenizerConfig` for a plan's tokenizer name."""
    from olmo_core.data import TokenizerConfig

    if name not in TOKENIZERS:
        raise PlanError(f"unknown tokenizer {name!r} (known: {', '.join(sorted(TOKENIZERS))})")
    return getattr(TokenizerConfig, TOKENIZERS[name])()


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


def run_leaves(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The run's leaves, checked for what a trainer needs."""
    leaves = run.get("leaves")
    if not isinstance(leaves, list) or not leaves:
        raise PlanError(f"run {run.get('name', '?')!r} has no leaves")
    for leaf in leaves:
        if not leaf.get("files"):
            raise PlanError(f"leaf {leaf.get('name', '?')!r} of run {run.get('name', '?')!r} lists no files")
    total = sum(float(leaf["ratio"]) for leaf in leaves)
    if abs(total - 1.0) > 1e-6:
        raise PlanError(f"the ratios of run {run.get('name', '?')!r} sum to {total}, not 1")
    return leaves


def check_token_files(run: Mapping[str, Any], *, eos_token_id: int) -> None:
    """Every file exists, holds whole tokens and ends with EOS (OLMo-core's own errors say none of this).

    Reads the last token of each file only.
    """
    itemsize = ITEMSIZE.get(str(run.get("dtype", "uint32")))
    if itemsize is None:
        raise PlanError(f"unknown dtype {run.get('dtype')!r} (known: {', '.join(ITEMSIZE)})")
    problems = []
    for leaf in run_leaves(run):
        for path in leaf["files"]:
            problem = _token_file_problem(path, itemsize, eos_token_id)
            if problem:
                problems.append(f"leaf {leaf['name']}: {path}: {problem}")
    if problems:
        raise DataError("bad token files:\n  " + "\n  ".join(problems))


def _token_file_problem(path: str, itemsize: int, eos_token_id: int) -> str | None:
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "empty file"
        if size % itemsize:
            return f"{size} bytes is not a whole number of {itemsize}-byte tokens"
        with open(path, "rb") as f:
            f.seek(size - itemsize)
            last = int.from_bytes(f.read(itemsize), "little")
    except OSError as exc:
        return exc.strerror or str(exc)
    if last != eos_token_id:
        return f"does not end with the end-of-document token {eos_token_id} (last token {last})"
    return None


def source_mixture_config(
    run: Mapping[str, Any],
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
            source_name=str(leaf["name"]),
            target_ratio=float(leaf["ratio"]),
            paths=list(leaf["files"]),
            max_repetition_ratio=float(leaf.get("max_repetition_factor", 1.0)),
        )
        for leaf in run_leaves(run)
    ]
    return SourceMixtureDatasetConfig(
        source_list=SourceMixtureList(sources=sources),
        requested_tokens=int(run["requested_tokens"]),
        global_batch_size=global_batch_size,
        processes=processes,
        seed=int(run.get("seed", 42) if seed is None else seed),
        render_tables=False,
        quiet=True,
    )


def dataset_config(
    run: Mapping[str, Any],
    *,
    sequence_length: int,
    global_batch_size: int,
    work_dir: str | os.PathLike[str],
    seed: int | None = None,
) -> Any:
    """OLMo-core's `NumpyFSLDatasetConfig` over the run's mixture; `global_batch_size` in tokens."""
    from olmo_core.data import NumpyFSLDatasetConfig

    mixture = source_mixture_config(run, global_batch_size=global_batch_size, seed=seed)
    return NumpyFSLDatasetConfig.from_src_mix(
        mixture,
        tokenizer=tokenizer_config(str(run.get("tokenizer", "dolma2"))),
        sequence_length=sequence_length,
        dtype=str(run.get("dtype", "uint32")),
        work_dir=str(work_dir),
    )


@dataclass(frozen=True)
class Selection:
    """What OLMo-core selected for one leaf."""

    leaf: str
    target_ratio: float
    tokens: int


def build_mixture(run: Mapping[str, Any], *, sequence_length: int, global_batch_size: int) -> list[Selection]:
    """Let OLMo-core apportion the run's budget over its leaves; what it selected per leaf.

    OLMo-core's "insufficient tokens" becomes `InfeasibleMixture`, a missing
    file `DataError`.
    """
    import numpy as np
    from olmo_core.exceptions import OLMoConfigurationError

    config = source_mixture_config(run, global_batch_size=global_batch_size)
    npdtype = getattr(np, str(run.get("dtype", "uint32")))
    try:
        mixture = config.build(npdtype=npdtype, sequence_length=sequence_length)
    except OLMoConfigurationError as exc:
        message = str(exc)
        if "Insufficient tokens" in message:
            raise InfeasibleMixture(f"run {run.get('name', '?')!r} is infeasible: {message}") from None
        raise PlanError(f"run {run.get('name', '?')!r}: {message}") from None
    except FileNotFoundError as exc:
        raise DataError(f"run {run.get('name', '?')!r}: {exc}") from None
    ratios = {leaf["name"]: float(leaf["ratio"]) for leaf in run_leaves(run)}
    return [
        Selection(outcome.name, ratios[outcome.name], sum(p.tokens for p in outcome.path_tokens))
        for outcome in mixture.sources
    ]


def shares(selections: Sequence[Selection]) -> dict[str, float]:
    """Each leaf's share of the selected tokens."""
    total = sum(s.tokens for s in selections) or 1
    return {s.leaf: s.tokens / total for s in selections}
