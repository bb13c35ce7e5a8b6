"""`olmix leaves`: the leaves a config flattens to."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from olmix.cli import echo, reports_errors
from olmix.commands.options import examples, format_option, set_option
from olmix.render import table, to_json

if TYPE_CHECKING:
    from olmix.leaves import Node


def _weights(ancestry: tuple[Node, ...]) -> str:
    return " × ".join("-" if node.weight is None else f"{node.weight:g}" for node in ancestry)


@click.command(
    epilog=examples(
        "olmix leaves config/examples/launch/quality_thresholds/quality_top30pct.yaml",
        "olmix leaves my.yaml --set sources[0].weight=2 --format json",
    )
)
@click.argument("config_file", metavar="CONFIG", type=click.Path(dir_okay=False))
@format_option("text", "json")
@set_option
@reports_errors
def leaves(config_file: str, fmt: str, overrides: tuple[str, ...]) -> None:
    """The leaves of CONFIG in config order: name, repetition cap, weights along the ancestry, paths.

    A weight of "-" is unset: shares then follow the planned defaults (equal among
    sources and topics; quality buckets in proportion to their tokens).
    """
    from olmix.leaves import leaves as flatten
    from olmix.loading.config import load_config

    found = flatten(load_config(config_file, overrides))
    if fmt == "json":
        rows = [
            {
                "name": leaf.name,
                "source": leaf.source,
                "parent": leaf.parent,
                "paths": list(leaf.paths),
                "max_repetition_factor": leaf.max_repetition_factor,
                "max_topic_ratio": leaf.max_topic_ratio,
                "ancestry": [
                    {
                        "level": node.level,
                        "name": node.name,
                        "weight": node.weight,
                        "max_repetition_factor": node.max_repetition_factor,
                    }
                    for node in leaf.ancestry
                ],
            }
            for leaf in found
        ]
        echo(to_json(rows))
        return
    cells = []
    for leaf in found:
        more = f" (+{len(leaf.paths) - 1} more)" if len(leaf.paths) > 1 else ""
        cells.append((leaf.name, f"{leaf.max_repetition_factor:g}", _weights(leaf.ancestry), leaf.paths[0] + more))
    echo(table(("LEAF", "REPEAT", "WEIGHTS", "PATHS"), cells))
    echo(f"{len(found)} leaves")
