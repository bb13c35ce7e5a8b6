"""From a config to a launch plan: resolve, weigh, budget, check feasibility.

`build_plan` is the one builder a dry run and a real launch share, so a dry
run shows exactly what a launch submits. The plan is a JSON document with its
own schema (schema/launch-plan.schema.json); olmix.planning.planfile writes and reads it,
olmix.planning.listing finds the files behind each leaf.

Budget: requested tokens = 20 × parameters(proxy_model_id) × chinchilla_multiple,
with the nominal parameter counts of olmix.catalogue (which the mixture schema's
ModelId is held to). Feasibility: a leaf needs ceil(requested × ratio)
tokens, and its available tokens × its repetition cap (1.0 when the config sets
allow_repetition: false) must cover that; every short leaf is reported at once.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olmix.catalogue import ITEMSIZE, MODELS, VOCABULARY, parameters
from olmix.errors import ConfigError, Problem
from olmix.leaves import leaves, node_paths
from olmix.loading.configfiles import config_files
from olmix.loading.yamlsource import Document
from olmix.planning.budget import (
    BudgetError,
    Fit,
    Shortage,
    ShortageSummary,
    largest_budget,
    requested_tokens,
    shortage_summary,
    shortfalls,
    tokens_needed,
)
from olmix.planning.listing import resolve_leaves, utc_stamp
from olmix.planning.planfile import PLAN_VERSION, without_gc_pauses
from olmix.planning.resolve import Listings, PathMap, Progress, ResolveError
from olmix.planning.weights import WeightError, ratios

if TYPE_CHECKING:
    from olmix_generated.launch_plan import LaunchPlan


class ShortError(ConfigError):
    """Leaves short of tokens, with one summary of the group (`summary`) beside every problem: `problems` holds
    each short leaf's (`leaf_problems`) and any other problem of the configs."""

    def __init__(self, problems: Sequence[Problem], leaf_problems: Sequence[Problem], summary: ShortageSummary) -> None:
        super().__init__(problems)
        self.leaf_problems = sorted(leaf_problems)
        self.summary = summary


class _RunShort(ConfigError):
    def __init__(self, problems: Sequence[Problem], shortage: Shortage) -> None:
        super().__init__(problems)
        self.shortage = shortage


# -- the builder --------------------------------------------------------------------------------------------


def _preflight(doc: Document, config: Any) -> list[Problem]:
    problems = []
    if config.proxy_model_id is None:
        known = ", ".join(MODELS)
        problems.append(doc.problem((), f"proxy_model_id is required to plan a run (known: {known})"))
    else:
        try:
            requested_tokens(config.proxy_model_id, config.chinchilla_multiple)
        except BudgetError as exc:
            problems.append(doc.problem(("chinchilla_multiple",), str(exc)))
    vocabulary, largest = VOCABULARY.get(config.tokenizer), 256 ** ITEMSIZE[config.dtype] - 1
    if vocabulary is not None and largest < vocabulary - 1:
        # every document ends with the end-of-document token, near the top of the vocabulary: files of this
        # dtype cannot hold what the tokenizer writes (the trainer reads every file's ids against the vocabulary)
        problems.append(
            doc.problem(
                ("dtype",),
                f"dtype {config.dtype} holds token ids up to {largest:,}, but the {config.tokenizer} tokenizer's "
                f"go up to {vocabulary - 1:,}: its token files are "
                + " or ".join(d for d, size in ITEMSIZE.items() if 256**size >= vocabulary),
            )
        )
    return problems


def plan_run(
    config_path: Path,
    *,
    path_map: PathMap = (),
    use_cache: bool = True,
    cache_directory: Path | None = None,
    progress: Progress | None = None,
    overrides: Sequence[str] = (),
    listed: Listings | None = None,
    now: float | None = None,
    loaded: tuple[Document, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """One config's run: its name and the run's plan (JSON data); ConfigError lists every problem.

    `loaded` is the config already loaded (its document and model), else it is loaded from `config_path`
    with `overrides`. `use_cache`, `listed` and `now` are resolve_leaves'."""
    from olmix.loading.config import load_document
    from olmix.training.options import plan_tokenizer, training_block

    doc, config = loaded or load_document(config_path, "mixture", overrides)
    problems = _preflight(doc, config)
    training, training_problems = training_block(doc, config)
    tokenizer, tokenizer_problems = plan_tokenizer(doc, config)
    problems += training_problems + tokenizer_problems
    where = node_paths(doc.data)
    lvs = leaves(config)
    dtype = config.dtype
    listed_at = 0.0
    try:
        resolved, listed_at = resolve_leaves(
            lvs,
            dtype,
            path_map,
            use_cache=use_cache,
            cache_directory=cache_directory,
            progress=progress,
            listed=listed,
            now=now,
        )
    except ResolveError as exc:
        problems += [doc.problem((*where[i.leaf], "paths", i.index), str(i)) for i in exc.issues]
    if problems:
        raise ConfigError(problems)

    available = {r.name: r.tokens for r in resolved}
    try:
        shares = ratios(lvs, available)
    except WeightError as exc:
        raise ConfigError([doc.problem(where.get(i.node, ()), str(i)) for i in exc.issues]) from None

    requested = requested_tokens(config.proxy_model_id, config.chinchilla_multiple)
    rows = []
    for leaf, res in zip(lvs, resolved, strict=True):
        ratio = shares[leaf.name]
        if ratio <= 0:
            continue  # a weight of 0 leaves the leaf out of the run
        cap = leaf.max_repetition_factor if config.allow_repetition else 1.0
        need = tokens_needed(requested, ratio)
        rows.append((leaf, res, ratio, cap, need))
    short = shortfalls([(leaf.name, res.tokens, need, cap) for leaf, res, _, cap, need in rows])
    if short:
        shortage = Shortage(
            run=config.name,
            config=str(config_path),
            model=config.proxy_model_id,
            chinchilla_multiple=config.chinchilla_multiple,
            requested=requested,
            available=sum(res.tokens for _, res, _, _, _ in rows),
            leaves=len(rows),
            short=short,
            largest_budget=largest_budget([(res.tokens, ratio, cap) for _, res, ratio, cap, _ in rows]),
        )
        raise _RunShort([doc.problem(where[s.leaf], str(s)) for s in short], shortage)

    run = {
        "name": config.name,
        "description": config.description,
        "config": {"path": str(config_path), "sha256": hashlib.sha256(config_path.read_bytes()).hexdigest()},
        "model": config.proxy_model_id,
        "parameters": parameters(config.proxy_model_id),
        "chinchilla_multiple": config.chinchilla_multiple,
        "requested_tokens": requested,
        "seed": config.seed,
        "dtype": dtype,
        "tokenizer": tokenizer,
        "global_batch_size": config.global_batch_size,
        "device_batch_size": config.device_batch_size,
        "listed_at": utc_stamp(listed_at),
        "training": training,
        **({"varied": config.varied.model_dump(exclude_none=True)} if config.varied is not None else {}),
        "leaves": [
            {
                "name": leaf.name,
                "ratio": ratio,
                "max_repetition_factor": cap,
                "tokens_available": res.tokens,
                "tokens_needed": need,
                "repetition": need / res.tokens if res.tokens else 0.0,  # no tokens: need is 0, or it was short
                "files": res.files,
            }
            for leaf, res, ratio, cap, need in rows
        ],
    }
    return config.name, run


def _rows(run: dict[str, Any]) -> list[tuple[int, float, float]]:
    return [(leaf["tokens_available"], leaf["ratio"], leaf["max_repetition_factor"]) for leaf in run["leaves"]]


def group_name(paths: Sequence[str | Path], run_names: Sequence[str]) -> str:
    """A folder given alone names the group after itself; one config after its experiment;
    several after what their experiment names share."""
    if len(paths) == 1 and Path(paths[0]).is_dir():
        return Path(paths[0]).resolve().name
    if len(run_names) == 1:
        return run_names[0]
    shared = os.path.commonprefix(list(run_names)).rstrip("-_.")  # noqa: RUF071 - a name, not a path
    return shared or "group"


def mixture_name(run: dict[str, Any]) -> str:
    """The run's name without its replicate suffix."""
    return str(run["replicate"]["mixture"]) if "replicate" in run else str(run["name"])


@dataclass(frozen=True)
class Built:
    """A plan and the validated config of each of its runs, in order: loaded once, passed on."""

    plan: LaunchPlan
    configs: list[Any]


def build_plan(
    config_path: str | Path | Sequence[str | Path],
    *,
    path_map: PathMap = (),
    use_cache: bool = True,
    cache_directory: Path | None = None,
    progress: Progress | None = None,
    overrides: Sequence[str] = (),
) -> LaunchPlan:
    """The plan of `build`."""
    return build(
        config_path,
        path_map=path_map,
        use_cache=use_cache,
        cache_directory=cache_directory,
        progress=progress,
        overrides=overrides,
    ).plan


@without_gc_pauses
def build(
    config_path: str | Path | Sequence[str | Path],
    *,
    path_map: PathMap = (),
    use_cache: bool = True,
    cache_directory: Path | None = None,
    progress: Progress | None = None,
    overrides: Sequence[str] = (),
) -> Built:
    """Load, resolve, weigh, budget and check each config (files, or folders of them); one run each.

    Every config is planned before anything is reported: ConfigError lists
    every problem of every config (invalid config, unresolvable patterns,
    weights that cannot be met, short leaves); StorageError when the data
    store cannot be read. The overrides apply to every config.

    With `use_cache` (a preview's choice) a cached listing may stand in for
    the store, and each run's `listed_at` says how old it is. `use_cache=False`
    lists every folder during this call, each once whatever the number of
    configs sharing it, and replaces the cache entries: the plan a launch
    submits is built from what the store holds now.
    """
    from olmix_generated.launch_plan import LaunchPlan

    from olmix import __version__

    given = [config_path] if isinstance(config_path, str | Path) else list(config_path)
    files = config_files(given)
    if not files:
        raise ConfigError([Problem(", ".join(map(str, given)), 0, 0, (), "no config files (*.yaml, *.yml) here")])
    runs: list[dict[str, Any]] = []
    configs: list[Any] = []
    problems: list[Problem] = []
    shortages: list[Shortage] = []
    short_problems: list[Problem] = []
    listed: Listings = {}
    now = time.time()
    for path in files:
        try:
            from olmix.loading.config import load_document
            from olmix.swarm.expand import replicates, variants  # N variants × M replicates: N × M runs, one group

            for loaded in variants(
                *load_document(path, "mixture", overrides), path_map, use_cache=use_cache, listed=listed, now=now
            ):
                try:
                    planned = plan_run(
                        path,
                        path_map=path_map,
                        use_cache=use_cache,
                        cache_directory=cache_directory,
                        progress=progress,
                        listed=listed,
                        now=now,
                        loaded=loaded,
                    )[1]
                except _RunShort as exc:  # every run is planned: the summary says what fits them all
                    shortages.append(exc.shortage)
                    short_problems += exc.problems
                    continue
                for run, config in replicates(*loaded, planned):
                    runs.append(run)
                    configs.append(config)
        except ConfigError as exc:
            problems += exc.problems
    seen: dict[str, str] = {}
    for run in runs:
        if run["name"] in seen:
            problems.append(
                Problem(
                    run["config"]["path"],
                    0,
                    0,
                    ("name",),
                    f"run name '{run['name']}' is also the name in {seen[run['name']]}",
                )
            )
        seen.setdefault(run["name"], run["config"]["path"])
    if shortages:
        fits = [Fit(s.model, s.largest_budget) for s in shortages]
        fits += [Fit(r["model"], largest_budget(_rows(r))) for r in runs]
        summary = shortage_summary(shortages, fits)
        raise ShortError([*problems, *short_problems], short_problems, summary)
    if problems:
        raise ConfigError(problems)

    if len(runs) == 1:
        digest, where = runs[0]["config"]["sha256"], runs[0]["config"]["path"]
    else:
        digest = hashlib.sha256("\0".join(r["config"]["sha256"] for r in runs).encode()).hexdigest()
        where = ", ".join(map(str, given))
    # the group id names the configs' content, and the overrides when there are any
    identity = hashlib.sha256("\0".join([digest, *overrides]).encode()).hexdigest() if overrides else digest
    data = {
        "plan_version": PLAN_VERSION,
        "olmix_version": __version__,
        # named after the mixtures: the replicates of one config's mixture make a group named after the config
        "group": f"{group_name(given, list(dict.fromkeys(mixture_name(r) for r in runs)))}-{identity[:8]}",
        "config": {"path": where, "sha256": digest, "overrides": list(overrides)},
        "path_map": [[prefix, replacement] for prefix, replacement in path_map],
        "runs": runs,
    }
    return Built(LaunchPlan.model_validate(data), configs)
