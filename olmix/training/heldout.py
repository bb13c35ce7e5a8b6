"""Held-out text per leaf, and a model's loss on it.

A leaf's held-out tokens live in a `heldout/` folder beside each folder of
its training files (`.../vigintile_0015/heldout/*.npy` for
`.../vigintile_0015/part-00000.npy`): tokens the run never trains on, since a
leaf's `*.npy` glob matches one folder level only. `olmix demo-data` writes
this layout. A held-out file may carry its text's size in UTF-8 bytes in a
sidecar `<file>.json` (`{"bytes": N}`); then bits per byte are reported too.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from olmix.errors import OlmixError
from olmix.training.metrics import finite

HELDOUT = "heldout"


def heldout_files(training_files: Iterable[str]) -> list[str]:
    """The held-out files that go with a leaf's training files, sorted."""
    folders = sorted({os.path.dirname(str(path)) for path in training_files})
    found: set[str] = set()
    for folder in folders:
        heldout = Path(folder) / HELDOUT
        if heldout.is_dir():
            found.update(str(p) for p in heldout.glob("*.npy") if p.is_file())
    return sorted(found)


def byte_count(path: str) -> int | None:
    """The UTF-8 size of the file's text, from its sidecar, if known."""
    try:
        with open(f"{path}.json") as f:
            value = json.load(f).get("bytes")
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


@dataclass(frozen=True)
class HeldoutLoss:
    """Mean next-token loss (nats) over `tokens` predicted held-out tokens, whose text is `bytes` long if known."""

    tokens: int
    loss: float
    bytes: float | None
    files: tuple[str, ...]

    @property
    def bits_per_byte(self) -> float | None:
        if not self.bytes or not self.tokens:
            return None
        return self.loss * self.tokens / math.log(2) / self.bytes

    def as_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "loss": finite(self.loss),
            "bits_per_byte": finite(self.bits_per_byte),
            "files": list(self.files),
        }


def combine(parts: Sequence[HeldoutLoss]) -> HeldoutLoss:
    """Token-weighted loss over several leaves; bits per byte only when every part has it."""
    tokens = sum(p.tokens for p in parts)
    nats = sum(p.loss * p.tokens for p in parts)
    known = [p.bytes for p in parts if p.bytes]
    size = sum(known) if parts and len(known) == len(parts) else None
    files = tuple(f for p in parts for f in p.files)
    return HeldoutLoss(tokens, nats / tokens if tokens else math.nan, size, files)


def evaluate(
    model: Any,
    files: Sequence[str],
    *,
    dtype: str,
    sequence_length: int,
    max_tokens: int,
    device: Any,
    batch_size: int = 4,
) -> HeldoutLoss:
    """The model's loss on up to `max_tokens` held-out tokens, read in order from `files`.

    Tokens are cut into windows of `sequence_length` as in training; within a
    window every token after the first is predicted from those before it.
    When a file's byte count is known, its bytes are scaled by the share of
    its tokens evaluated.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    windows: list[Any] = []
    bytes_seen = 0.0
    bytes_known = True
    budget = max_tokens
    for path in files:
        if budget < sequence_length:
            break
        tokens = np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<"))
        n = min(len(tokens), budget) // sequence_length * sequence_length
        if n == 0:
            continue
        windows.append(tokens[:n].astype(np.int64).reshape(-1, sequence_length))
        budget -= n
        file_bytes = byte_count(path)
        if file_bytes is None:
            bytes_known = False
        else:
            bytes_seen += file_bytes * n / len(tokens)
    if not windows:
        return HeldoutLoss(0, math.nan, None, tuple(files))
    data = torch.from_numpy(np.concatenate(windows))
    nats = 0.0
    predicted = 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            batch = data[start : start + batch_size].to(device)
            logits = model(batch)
            logits = getattr(logits, "logits", logits)
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(), batch[:, 1:].reshape(-1), reduction="sum"
            )
            nats += float(loss)
            predicted += batch[:, 1:].numel()
    model.train(was_training)
    # bytes of the predicted tokens only: each window's first token is context
    size = bytes_seen * predicted / data.numel() if bytes_known and bytes_seen > 0 else None
    return HeldoutLoss(predicted, nats / predicted, size, tuple(files))


def by_source(leaves: Mapping[str, HeldoutLoss], separator: str = ":") -> dict[str, HeldoutLoss]:
    """Token-weighted held-out loss per source (the first part of a leaf's name)."""
    groups: dict[str, list[HeldoutLoss]] = {}
    for name, result in leaves.items():
        if result.tokens:
            groups.setdefault(name.split(separator, 1)[0], []).append(result)
    return {source: combine(parts) for source, parts in groups.items()}


class EvalSetError(OlmixError):
    """A fixed evaluation set (`--eval NAME=GLOB`) whose glob matches no file."""


def eval_files(sets: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Each fixed evaluation set's files (`**` recurses), sorted; EvalSetError names every glob that matches none.

    Called before training, so a mistyped glob costs no training and never reports a loss of null.
    """
    import glob

    found = {name: sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)) for name, pattern in sets}
    empty = [f"--eval {name}={pattern}" for name, pattern in sets if not found[name]]
    if empty:
        raise EvalSetError("no file matches " + "; ".join(empty))
    return found


def evaluate_set(
    model: Any, files: Sequence[str], *, dtype: str, sequence_length: int, max_tokens: int, device: Any
) -> HeldoutLoss:
    """The loss on the set's files (from eval_files), `max_tokens` spread evenly over them."""
    if not files:
        return HeldoutLoss(0, math.nan, None, ())
    share = max(sequence_length, max_tokens // len(files))
    parts = [
        evaluate(model, [path], dtype=dtype, sequence_length=sequence_length, max_tokens=share, device=device)
        for path in files
    ]
    return combine(parts)
