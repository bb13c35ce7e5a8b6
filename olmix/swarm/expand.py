"""`variants: N` and `replicates: N` at launch: one config becomes several runs of one group.

`variants: N` makes N runs, each a sampled mixture.

Each variant is the loaded config with its own name, `variants: 1` and a
weight on every node, validated again as data (the file is not read again),
so the planner plans it like any other run and the plan's leaves carry the
sampled ratios. The sampling is the one `olmix generate swarm` writes to
files: the same config and seed give the same runs either way. `replicates: N`
then makes N runs of each mixture, its plan copied with a name and seed each.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from olmix.loading.yamlsource import Document

RUN_NAME_LIMIT = 128  # the schema's RunName maxLength


def variants(
    doc: Document, config: Any, path_map: Any, *, use_cache: bool = True, listed: Any = None, now: float | None = None
) -> list[tuple[Document, Any]]:
    """Each run of a loaded config: (document, validated config); the config itself when it is not a swarm.

    `listed` (the planner's listings of this command) and `now` are resolve_leaves': the store is listed once."""
    from olmix.errors import ConfigError
    from olmix.leaves import leaves
    from olmix.loading.config import check
    from olmix.planning.listing import resolve_leaves
    from olmix.planning.resolve import ResolveError
    from olmix.swarm.configs import budget, refuse_unsupported, with_weights
    from olmix.swarm.sampler import Settings, SwarmError, sample

    if config.variants > 1:
        refuse_unsupported(doc, config)
    if config.variants <= 1 or config.proxy_model_id is None:
        return [(doc, config)]  # not a swarm, or one the planner will report on as it stands
    lvs = leaves(config)
    try:
        resolved, _ = resolve_leaves(lvs, config.dtype, path_map, use_cache=use_cache, listed=listed, now=now)
    except ResolveError:
        return [(doc, config)]  # the planner reports every pattern that matches nothing, with its place
    try:
        drawn = sample(
            lvs,
            {r.name: r.tokens for r in resolved},
            budget(config),
            Settings.of(config),
            allow_repetition=config.allow_repetition,
        )
    except SwarmError as exc:
        raise ConfigError([doc.problem(("variants",), str(exc))]) from None
    width = max(3, len(str(len(drawn))))
    out = []
    for i, variant in enumerate(drawn):
        data = with_weights(doc.data, dict(variant.shares))
        data["name"], data["variants"] = f"{config.name}-v{i:0{width}d}", 1
        one = dataclasses.replace(doc, data=data)
        instance, problems = check(one, "mixture")
        if problems:
            raise ConfigError(problems)
        out.append((one, instance))
    return out


def replicates(doc: Document, config: Any, run: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """`replicates: N`: one planned run (and its config) as N runs that differ only in name and seed.

    Replicate i is `<name>-r<i>` with seed `seed + i` (replicate 0 keeps the config's seed), and records which
    mixture it replicates, so results and fit pool them; with N = 1 the run is returned as it is."""
    from olmix.errors import ConfigError

    count = config.replicates
    if count <= 1:
        return [(run, config)]
    width = len(str(count - 1))
    longest = f"{run['name']}-r{count - 1:0{width}d}"
    if len(longest) > RUN_NAME_LIMIT:
        raise ConfigError(
            [doc.problem(("replicates",), f"run name '{longest}' would be longer than {RUN_NAME_LIMIT} characters")]
        )
    out = []
    for i in range(count):
        name, seed = f"{run['name']}-r{i:0{width}d}", config.seed + i
        replicate = {"mixture": run["name"], "index": i, "of": count}
        out.append(
            (
                {**run, "name": name, "seed": seed, "replicate": replicate},
                config.model_copy(update={"name": name, "seed": seed, "replicates": 1}),
            )
        )
    return out
