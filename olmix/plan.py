"""From a config to a launch plan: resolve, weigh, budget, check feasibility.

`build_plan` is the one builder a dry run and a real launch share, so a dry
run shows exactly what a launch submits. The plan is a JSON document with its
own schema (schema/launch-plan.schema.json), validated when written and read.

Budget: requested tokens = 20 × parameters(proxy_model_id) × chinchilla_multiple,
with the nominal parameter counts stated in the mixture schema's ModelId (one
table, read from the schema). Feasibility: a leaf needs ceil(requested × ratio)
tokens, and its available tokens × its repetition cap (1.0 when the config sets
allow_repetition: false) must cover that; every short leaf is reported at once.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from olmix import cache as resolve_cache
from olmix.errors import ConfigError, JsonPath, OlmixError, Problem
from olmix.fileio import write_atomic
from olmix.leaves import SEPARATOR, Leaf, leaves
from olmix.resolve import PathMap, Progress, ResolvedLeaf, ResolveError, resolve
from olmix.weights import WeightError, ratios
from olmix.yamlsource import Document

if TYPE_CHECKING:
    from olmix_generated.launch_plan import LaunchPlan

PLAN_VERSION = 1
TOKENS_PER_PARAMETER = 20

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _without_gc_pauses(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `function` with Python's cycle collector paused.

    A plan of a million files is millions of new objects, and the collector
    would scan them again and again while they are made (a quarter of the
    time); reference counting still frees everything, and cycles are
    collected as usual once the function returns.
    """

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not gc.isenabled():
            return function(*args, **kwargs)
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.enable()

    return wrapper


class UnknownModelError(OlmixError):
    pass


@cache
def model_parameters() -> dict[str, int]:
    """Model id -> nominal parameter count, from the mixture schema's ModelId descriptions."""
    from olmix import schemas

    out = {}
    for option in schemas.load("mixture")["$defs"]["ModelId"]["oneOf"]:
        match = re.search(r"\(([\d,]+)\)", option["description"])
        if match is None:  # the schema's own test keeps every description in this form
            raise ValueError(f"ModelId {option['const']}: no parameter count in {option['description']!r}")
        out[option["const"]] = int(match.group(1).replace(",", ""))
    return out


def parameters(model_id: str) -> int:
    known = model_parameters()
    if model_id not in known:
        raise UnknownModelError(f"unknown model id '{model_id}' (known: {', '.join(known)})")
    return known[model_id]


def requested_tokens(model_id: str, chinchilla_multiple: float) -> int:
    return round(TOKENS_PER_PARAMETER * parameters(model_id) * chinchilla_multiple)


def tokens_needed(requested: int, ratio: float) -> int:
    # ceil, tolerant of float noise in the ratio product (0.1 × 140e6 must be 14e6, not 14e6 + 1)
    return max(0, math.ceil(requested * ratio - 1e-6))


def sufficient_cap(have: int, need: int) -> float | None:
    """The smallest cap (rounded up to 2 decimals) that covers `need`; None when nothing does."""
    if have <= 0:
        return None
    return max(1.0, math.ceil(need / have * 100 - 1e-9) / 100)


@dataclass(frozen=True)
class Shortfall:
    leaf: str
    have: int
    need: int
    cap: float
    suffices: float | None

    def __str__(self) -> str:
        fix = f"a cap of {self.suffices} would suffice" if self.suffices else "it holds no tokens, no cap suffices"
        return (
            f"leaf '{self.leaf}' is short: has {self.have:,} tokens, needs {self.need:,}; "
            f"cap {self.cap} allows {math.floor(self.have * self.cap):,}; {fix}"
        )


def shortfalls(rows: Sequence[tuple[str, int, int, float]]) -> list[Shortfall]:
    """(leaf, have, need, cap) rows whose have × cap does not cover need."""
    return [Shortfall(n, h, d, c, sufficient_cap(h, d)) for n, h, d, c in rows if h * c < d]


# -- locations of names in the config ----------------------------------------------------------------------


def node_paths(data: dict[str, Any]) -> dict[str, JsonPath]:
    """Every source, topic and leaf name (':'-joined) -> its JSON path in the config."""
    out: dict[str, JsonPath] = {}

    def walk(items: list[dict[str, Any]], path: JsonPath, prefix: str) -> None:
        for i, item in enumerate(items):
            name = f"{prefix}{item['name']}"
            out[name] = (*path, i)
            for key in ("topics", "quality"):
                if key in item:
                    walk(item[key], (*path, i, key), f"{name}{SEPARATOR}")

    walk(data["sources"], ("sources",), "")
    return out


# -- the builder --------------------------------------------------------------------------------------------


def resolve_leaves(
    lvs: Sequence[Leaf],
    dtype: str,
    path_map: PathMap,
    *,
    use_cache: bool = True,
    cache_directory: Path | None = None,
    progress: Progress | None = None,
) -> list[ResolvedLeaf]:
    """resolve() behind the on-disk cache."""
    if use_cache:
        hit = resolve_cache.load(lvs, dtype, path_map, cache_directory)
        if hit is not None:
            return hit
    resolved = resolve(lvs, dtype, path_map, progress=progress)
    if use_cache:
        with contextlib.suppress(OSError):  # an unwritable cache costs a re-listing next time, nothing else
            resolve_cache.store(lvs, dtype, path_map, resolved, cache_directory)
    return resolved


def _preflight(doc: Document, config: Any) -> list[Problem]:
    problems = []
    if config.proxy_model_id is None:
        known = ", ".join(model_parameters())
        problems.append(doc.problem((), f"proxy_model_id is required to plan a run (known: {known})"))
    return problems


def plan_run(
    config_path: Path,
    *,
    path_map: PathMap = (),
    use_cache: bool = True,
    cache_directory: Path | None = None,
    progress: Progress | None = None,
    overrides: Sequence[str] = (),
) -> tuple[str, dict[str, Any]]:
    """One config's run: its name and the run's plan (JSON data); ConfigError lists every problem."""
    from olmix.config import load_document

    doc, config = load_document(config_path, "mixture", overrides)
    problems = _preflight(doc, config)
    where = node_paths(doc.data)
    lvs = leaves(config)
    dtype = config.dtype
    try:
        resolved = resolve_leaves(
            lvs, dtype, path_map, use_cache=use_cache, cache_directory=cache_directory, progress=progress
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
        raise ConfigError([doc.problem(where[s.leaf], str(s)) for s in short])

    run = {
        "name": config.name,
        "config": {"path": str(config_path), "sha256": hashlib.sha256(config_path.read_bytes()).hexdigest()},
        "model": config.proxy_model_id,
        "parameters": parameters(config.proxy_model_id),
        "chinchilla_multiple": config.chinchilla_multiple,
        "requested_tokens": requested,
        "seed": config.seed,
        "dtype": dtype,
        "tokenizer": config.tokenizer,
        "global_batch_size": config.global_batch_size,
        "device_batch_size": config.device_batch_size,
        "leaves": [
            {
                "name": leaf.name,
                "ratio": ratio,
                "max_repetition_factor": cap,
                "tokens_available": res.tokens,
                "tokens_needed": need,
                "repetition": need / res.tokens,
                "files": res.files,
            }
            for leaf, res, ratio, cap, need in rows
        ],
    }
    return config.name, run


def config_files(paths: Sequence[str | Path]) -> list[Path]:
    """Config files named, and the *.yaml / *.yml directly in folders named, in a stable order."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            out.append(path)
    return out


def group_name(paths: Sequence[str | Path], run_names: Sequence[str]) -> str:
    """A folder given alone names the group after itself; one config after its experiment;
    several after what their experiment names share."""
    if len(paths) == 1 and Path(paths[0]).is_dir():
        return Path(paths[0]).resolve().name
    if len(run_names) == 1:
        return run_names[0]
    shared = os.path.commonprefix(list(run_names)).rstrip("-_.")  # noqa: RUF071 - a name, not a path
    return shared or "group"


@_without_gc_pauses
def build_plan(
    config_path: str | Path | Sequence[str | Path],
    *,
    path_map: PathMap = (),
    use_cache: bool = True,
    cache_directory: Path | None = None,
    progress: Progress | None = None,
    overrides: Sequence[str] = (),
) -> LaunchPlan:
    """Load, resolve, weigh, budget and check each config (files, or folders of them); one run each.

    Every config is planned before anything is reported: ConfigError lists
    every problem of every config (invalid config, unresolvable patterns,
    weights that cannot be met, short leaves); StorageError when the data
    store cannot be read. The overrides apply to every config.
    """
    from olmix_generated.launch_plan import LaunchPlan

    from olmix import __version__

    given = [config_path] if isinstance(config_path, str | Path) else list(config_path)
    files = config_files(given)
    if not files:
        raise ConfigError([Problem(", ".join(map(str, given)), 0, 0, (), "no config files (*.yaml, *.yml) here")])
    runs: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for path in files:
        try:
            from olmix.swarm.expand import variant_overrides  # variants: N is N runs of one group

            for extra in variant_overrides(path, overrides, path_map, use_cache=use_cache):
                runs.append(
                    plan_run(
                        path,
                        path_map=path_map,
                        use_cache=use_cache,
                        cache_directory=cache_directory,
                        progress=progress,
                        overrides=[*overrides, *extra],
                    )[1]
                )
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
        "group": f"{group_name(given, [r['name'] for r in runs])}-{identity[:8]}",
        "config": {"path": where, "sha256": digest, "overrides": list(overrides)},
        "path_map": [[prefix, replacement] for prefix, replacement in path_map],
        "runs": runs,
    }
    return LaunchPlan.model_validate(data)


# -- the plan on disk ---------------------------------------------------------------------------------------


class PlanError(ConfigError):
    """A plan file that is not a valid plan."""


def plan_json(plan: LaunchPlan) -> str:
    return plan.model_dump_json(indent=2)


def _validated(text: str | bytes, name: str) -> LaunchPlan:
    from olmix_generated.launch_plan import LaunchPlan
    from pydantic import ValidationError

    from olmix import schemacheck, yamlsource

    try:
        return LaunchPlan.model_validate_json(text)
    except ValidationError as exc:
        raw = text.encode() if isinstance(text, str) else text
        try:
            doc = yamlsource.parse(raw, name)  # JSON is YAML: the same positions for the messages
        except ConfigError as parse_error:
            raise PlanError(parse_error.problems) from None
        problems = schemacheck.check(doc, "launch-plan")
        raise PlanError(problems or [doc.problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]) from None


@_without_gc_pauses
def write_plan(plan: LaunchPlan, path: str | Path) -> None:
    """Validate `plan` against the plan schema and write it atomically."""
    text = plan_json(plan)
    _validated(text, str(path))
    write_atomic(path, text.encode() + b"\n")


@_without_gc_pauses
def read_plan(path: str | Path) -> LaunchPlan:
    """The validated plan at `path`; PlanError lists every problem."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PlanError([Problem(str(path), 0, 0, (), f"cannot read: {exc.strerror or exc}")]) from None
    return _validated(raw, str(path))
