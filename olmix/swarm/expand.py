"""`variants: N` at launch: one config becomes N runs of one group, each a sampled mixture.

Each variant is the config plus `--set` overrides (its name, `variants: 1`
and a weight on every node), so the planner plans it like any other run and
the plan's leaves carry the sampled ratios. The sampling is the one
`olmix generate swarm` writes to files: the same config and seed give the
same runs either way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from olmix.errors import JsonPath


def _key(path: JsonPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def variant_overrides(
    config_path: Path, overrides: Sequence[str], path_map: Any, *, use_cache: bool = True
) -> list[list[str]]:
    """Per run of the config: the overrides that make it (one empty list when the config is not a swarm)."""
    from olmix.errors import ConfigError
    from olmix.leaves import leaves
    from olmix.listing import resolve_leaves
    from olmix.loading.config import load_document
    from olmix.plan import node_paths
    from olmix.resolve import ResolveError
    from olmix.swarm.configs import budget
    from olmix.swarm.sampler import Settings, SwarmError, sample

    doc, config = load_document(config_path, "mixture", overrides)
    if config.variants > 1:
        from olmix.swarm.configs import refuse_unsupported

        refuse_unsupported(doc, config)
    if config.variants <= 1 or config.proxy_model_id is None:
        return [[]]  # not a swarm, or one the planner will report on as it stands
    lvs = leaves(config)
    try:
        resolved, _ = resolve_leaves(lvs, config.dtype, path_map, use_cache=use_cache)
    except ResolveError:
        return [[]]  # the planner reports every pattern that matches nothing, with its place
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
    where = node_paths(doc.data)
    width = max(3, len(str(len(drawn))))
    out = []
    for i, variant in enumerate(drawn):
        sets = [f"name={json.dumps(f'{config.name}-v{i:0{width}d}')}", "variants=1"]
        sets += [f"{_key((*where[node], 'weight'))}={share!r}" for node, share in variant.shares.items()]
        out.append(sets)
    return out
