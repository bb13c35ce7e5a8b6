"""A config's training fields as the plan's `training` block, checked before anything is submitted.

The planner calls `training_block` for each run; the trainer reads the block back from the plan
(schema/launch-plan.schema.json, `Training`). Checked here, each at its place in the config:
- `train_type: anneal` needs `checkpoint_path`, and `checkpoint_path` is read by anneal runs only;
- a local `checkpoint_path` must be an OLMo-core checkpoint (a folder holding
  `model_and_optim/.metadata`); a URL is read by the trainer, on the machine that has access to it;
`eval_tasks` are checked with the config's rules (olmix.loading.rules), so `olmix validate` refuses an
unknown task too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix.training import tasks

if TYPE_CHECKING:
    from olmix.errors import Problem
    from olmix.loading.yamlsource import Document

WANDB_PROJECT = "olmix"
WANDB_DEBUG_PROJECT = "olmix-debug"
CHECKPOINT_METADATA = Path("model_and_optim") / ".metadata"


def checkpoint_problem(path: str) -> str | None:
    """Why `path` is not a checkpoint an anneal run can load; None when it is, or when it is a URL."""
    if "://" in path:
        return None
    folder = Path(path).expanduser()
    if not folder.exists():
        return f"checkpoint {path} does not exist"
    if not folder.is_dir():
        return f"checkpoint {path} is not a folder (an OLMo-core checkpoint is a step folder)"
    try:
        readable = (folder / CHECKPOINT_METADATA).is_file()
    except OSError as exc:
        return f"checkpoint {path}: {exc.strerror or exc}"
    if not readable:
        return f"checkpoint {path} holds no OLMo-core checkpoint ({CHECKPOINT_METADATA} is missing)"
    return None


def plan_tokenizer(doc: Document, config: Any) -> tuple[str, list[Problem]]:
    """The tokenizer the plan names: a known name as it is, a local tokenizer.json as an absolute path (a relative
    one is relative to the working folder, as the config's data paths are), which must exist."""
    name = config.tokenizer
    if not name.endswith(".json") or "://" in name:
        return name, []
    path = Path(name).expanduser().resolve()
    if not path.is_file():
        return name, [doc.problem(("tokenizer",), f"tokenizer file {path} does not exist")]
    return str(path), []


def training_block(doc: Document, config: Any) -> tuple[dict[str, Any], list[Problem]]:
    """The plan's `training` block for `config`, and every problem with its training fields."""
    problems = []
    if "WANDB_API_KEY" in (config.env or {}):
        problems.append(
            doc.problem(
                ("env", "WANDB_API_KEY"), "WANDB_API_KEY is a secret: name it in secrets, not in env", at_key=True
            )
        )
    if config.train_type == "anneal":
        if config.checkpoint_path is None:
            problems.append(
                doc.problem(("train_type",), "an anneal run needs checkpoint_path, the checkpoint to start from")
            )
        elif (why := checkpoint_problem(config.checkpoint_path)) is not None:
            problems.append(doc.problem(("checkpoint_path",), why))
    elif config.checkpoint_path is not None:
        problems.append(
            doc.problem(("checkpoint_path",), "checkpoint_path is read by anneal runs only; set train_type: anneal")
        )
    block: dict[str, Any] = {
        "train_type": config.train_type,
        "eval_tasks": tasks.expand(config.eval_tasks or []),  # names checked with the config's rules
        "eval_interval": config.eval_interval,
        "no_eval": config.no_eval,
        "wandb_project": WANDB_DEBUG_PROJECT if config.wandb_debug else WANDB_PROJECT,
    }
    if config.checkpoint_path is not None:
        block["checkpoint_path"] = config.checkpoint_path
    if config.instance_filter is not None:
        block["instance_filter"] = config.instance_filter.model_dump(mode="json")
    return block, problems
