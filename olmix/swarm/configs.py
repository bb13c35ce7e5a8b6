"""A swarm as files: one mixture config per variant, with an explicit weight on every node.

Each variant is the source config with every source, topic and bucket given
its sampled share, `variants: 1` and its own name, so it plans and launches
like any hand-written config. Every file is validated before any is written.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from olmix.errors import ConfigError, OlmixError
from olmix.leaves import SEPARATOR, leaves
from olmix.swarm.sampler import Settings, Variant, moved_counts, sample

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def budget(config: Any) -> int:
    """Tokens of one proxy run: where the model catalogue keeps the budget rule."""
    from olmix.planning.budget import requested_tokens

    return requested_tokens(config.proxy_model_id, config.chinchilla_multiple)


def file_stem(name: str) -> str:
    """A run name as a file name: nothing but letters, digits, '.', '_' and '-', never hidden."""
    stem = _UNSAFE.sub("_", name).lstrip(".")
    return stem or "swarm"


def refuse_unsupported(doc: Any, config: Any) -> None:
    """Settings the schema accepts that a swarm cannot honour yet: an error, never ignored."""
    if config.existing_mix_file is not None:
        raise ConfigError(
            [
                doc.problem(
                    ("existing_mix_file",), "existing_mix_file is not supported; set the weights on the nodes instead"
                )
            ]
        )


def with_weights(data: dict[str, Any], shares: dict[str, float]) -> dict[str, Any]:
    """A copy of a config's data with `shares` as the weight of every named node."""
    out = copy.deepcopy(data)

    def walk(items: list[dict[str, Any]], prefix: str) -> None:
        for item in items:
            name = f"{prefix}{item['name']}"
            item["weight"] = shares[name]
            for key in ("topics", "quality"):
                if key in item:
                    walk(item[key], f"{name}{SEPARATOR}")

    walk(out["sources"], "")
    return out


def variant_files(
    config_path: Path,
    doc_data: dict[str, Any],
    config: Any,
    variants: list[Variant],
    seed: int,
    out_dir: Path = Path(),
) -> list[tuple[Path, bytes]]:
    """(file name relative to `out_dir`, YAML bytes) for every variant, each validated against the schema and
    starting with the modeline an editor finds the schema by from `out_dir`."""
    from olmix import schemas, yamlwrite
    from olmix.loading import config as configs
    from olmix.loading import yamlsource

    width = max(3, len(str(len(variants))))
    files: list[tuple[Path, bytes]] = []
    problems = []
    for i, variant in enumerate(variants):
        name = f"{config.name}-v{i:0{width}d}"
        data = with_weights(doc_data, variant.shares)
        data["name"] = name
        data["variants"] = 1
        header = (
            f"{schemas.modeline('mixture', out_dir)}\n"
            f"# Variant {i} of {len(variants)} sampled from {config_path.name} (seed {seed}, "
            f"strength {variant.strength:.4g}) by olmix generate swarm.\n"
        )
        if variant.moved:
            header += f"# Moved onto its constraints by: {', '.join(sorted(variant.moved))}.\n"
        text = (header + yamlwrite.dump(data)).encode("utf-8")
        file = Path(f"{file_stem(name)}.yaml")
        _, found = configs.check(yamlsource.parse(text, str(file)), "mixture")
        problems += found
        files.append((file, text))
    if problems:
        raise ConfigError(problems)
    return files


def swarm(
    config_path: str | Path,
    *,
    variants: int | None = None,
    seed: int | None = None,
    path_map: Any = (),
    use_cache: bool = True,
    out_dir: Path = Path(),
) -> tuple[list[tuple[Path, bytes]], list[str]]:
    """The swarm of the config at `config_path`: (file name, bytes) per variant to write into `out_dir`, nothing
    written, and notes saying how many draws each constraint moved."""
    from olmix.loading.config import load_document
    from olmix.planning.listing import resolve_leaves

    path = Path(config_path)
    doc, config = load_document(path, "mixture")
    refuse_unsupported(doc, config)
    if config.proxy_model_id is None:
        raise ConfigError([doc.problem((), "proxy_model_id is required to sample a swarm (it sets the budget)")])
    settings = Settings.of(config, variants, seed)
    if settings.variants < 2:
        raise OlmixError(f"{path}: a swarm needs at least 2 variants (set variants: N or pass --variants N)")
    lvs = leaves(config)
    resolved, _ = resolve_leaves(lvs, config.dtype, path_map, use_cache=use_cache)
    tokens = {r.name: r.tokens for r in resolved}
    drawn = sample(lvs, tokens, budget(config), settings, allow_repetition=config.allow_repetition)
    notes = [f"{why} moved {n} of {len(drawn)} draws" for why, n in sorted(moved_counts(drawn).items())]
    return variant_files(path, doc.data, config, drawn, settings.seed, out_dir), notes
