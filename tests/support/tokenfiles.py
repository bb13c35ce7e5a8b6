"""Token files and hand-built run plans for tests (the launch-plan contract, plan_version 1)."""

from __future__ import annotations

import array
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from olmix_generated.launch_plan import Run

EOS = 100257


def write_tokens(path: Path, n_tokens: int, *, seed: int = 0, doc_length: int = 200, end_with_eos: bool = True) -> Path:
    """A headerless uint32 token file of whole documents, each ending with EOS."""
    rng = random.Random(seed)
    tokens = array.array("I")
    while len(tokens) < n_tokens:
        length = min(doc_length, n_tokens - len(tokens))
        tokens.extend(rng.randrange(50_000) for _ in range(length - 1))
        tokens.append(EOS)
    if not end_with_eos:
        tokens[-1] = 7
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tokens.tobytes())
    return path


def run_plan(
    root: Path,
    leaves: Sequence[tuple[str, float, Sequence[int]]],
    *,
    requested_tokens: int,
    model: str = "olmo3_1m",
    cap: float = 1.0,
    name: str = "run",
    heldout_tokens: int = 0,
) -> dict[str, Any]:
    """A plan with one run; each leaf (name, ratio, tokens per file) gets its own folder of files.

    With `heldout_tokens`, each leaf folder also gets `heldout/part-00000.npy`.
    """
    plan_leaves = []
    for index, (leaf, ratio, sizes) in enumerate(leaves):
        folder = root / leaf.replace(":", "/")
        files = {
            str(write_tokens(folder / f"part-{i:05d}.npy", size, seed=index * 100 + i)): size
            for i, size in enumerate(sizes)
        }
        if heldout_tokens:
            write_tokens(folder / "heldout" / "part-00000.npy", heldout_tokens, seed=10_000 + index)
        needed = math.ceil(requested_tokens * ratio)
        plan_leaves.append(
            {
                "name": leaf,
                "ratio": ratio,
                "max_repetition_factor": cap,
                "tokens_available": sum(sizes),
                "tokens_needed": needed,
                "repetition": needed / sum(sizes),
                "files": files,
            }
        )
    return {
        "plan_version": 1,
        "olmix_version": "0.1.0",
        "group": f"{name}-00000000",
        "config": {"path": "config.yaml", "sha256": "0" * 64},
        "path_map": [],
        "runs": [
            {
                "name": name,
                "model": model,
                "parameters": 1_000_000,
                "chinchilla_multiple": 1.0,
                "requested_tokens": requested_tokens,
                "seed": 42,
                "dtype": "uint32",
                "tokenizer": "dolma2",
                "global_batch_size": None,
                "device_batch_size": 4,
                "leaves": plan_leaves,
            }
        ],
    }


def as_run(plan: dict[str, Any]) -> Run:
    """The only run of a hand-built plan, validated as a trainer reads it."""
    from olmix_generated.launch_plan import LaunchPlan

    return LaunchPlan.model_validate(plan).runs[0]
