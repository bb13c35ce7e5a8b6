from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from olmix.leaves import leaves
from olmix.loading.config import load_config

HEAD = "name: x\nsources:\n"

# (sources block, every leaf as (name, paths, repetition cap, weights along the ancestry, source, parent))
CASES = [
    (
        "  - name: arxiv\n    paths: [a/*.npy]\n",
        [("arxiv", ("a/*.npy",), 1.0, (None,), "arxiv", "")],
    ),
    (
        "  - name: arxiv\n    max_repetition_factor: 1.5\n    quality:\n"
        "      - {name: high, paths: [h1, h2]}\n      - {name: low, paths: [l], max_repetition_factor: 3}\n",
        [
            ("arxiv:high", ("h1", "h2"), 1.5, (None, None), "arxiv", "arxiv"),
            ("arxiv:low", ("l",), 3.0, (None, None), "arxiv", "arxiv"),
        ],
    ),
    (
        "  - name: dclm\n    weight: 2\n    topics:\n      - {name: software_development, weight: 0.4, paths: [s]}\n"
        "      - {name: news, weight: 0.6, paths: [n], max_repetition_factor: 2}\n"
        "  - name: wiki\n    weight: 1\n    paths: [w]\n",
        [
            ("dclm:software_development", ("s",), 1.0, (2, 0.4), "dclm", "dclm"),
            ("dclm:news", ("n",), 2.0, (2, 0.6), "dclm", "dclm"),
            ("wiki", ("w",), 1.0, (1,), "wiki", ""),
        ],
    ),
    (
        "  - name: all_dressed\n    max_repetition_factor: 2\n    topics:\n"
        "      - name: software_development\n        max_repetition_factor: 1.25\n        quality:\n"
        "          - {name: vigintile_0018, paths: [a], weight: 3}\n"
        "          - {name: vigintile_0020, paths: [b], weight: 1}\n"
        "      - name: art\n        quality:\n          - {name: vigintile_0020, paths: [c]}\n",
        [
            (
                "all_dressed:software_development:vigintile_0018",
                ("a",),
                1.25,
                (None, None, 3),
                "all_dressed",
                "all_dressed:software_development",
            ),
            (
                "all_dressed:software_development:vigintile_0020",
                ("b",),
                1.25,
                (None, None, 1),
                "all_dressed",
                "all_dressed:software_development",
            ),
            ("all_dressed:art:vigintile_0020", ("c",), 2.0, (None, None, None), "all_dressed", "all_dressed:art"),
        ],
    ),
]


@pytest.mark.parametrize(("sources", "expected"), CASES)
def test_leaves_in_config_order(
    write: Callable[[str, str], Path], sources: str, expected: list[tuple[object, ...]]
) -> None:
    config = load_config(write("c.yaml", HEAD + sources))
    got = [
        (
            leaf.name,
            leaf.paths,
            leaf.max_repetition_factor,
            tuple(n.weight for n in leaf.ancestry),
            leaf.source,
            leaf.parent,
        )
        for leaf in leaves(config)
    ]
    assert got == expected


def test_ancestry_levels_and_topic_ratio(write: Callable[[str, str], Path]) -> None:
    text = HEAD + (
        "  - name: s\n    topics:\n      - name: t\n        max_topic_ratio: 0.25\n"
        "        quality: [{name: q, paths: [p]}]\n"
    )
    (leaf,) = leaves(load_config(write("c.yaml", text)))
    assert [(n.level, n.name) for n in leaf.ancestry] == [("source", "s"), ("topic", "t"), ("quality", "q")]
    assert leaf.max_topic_ratio == 0.25


def test_leaves_command_table_and_json(write: Callable[[str, str], Path]) -> None:
    import json

    from click.testing import CliRunner

    from olmix.cli import main

    path = write(
        "c.yaml",
        HEAD + "  - name: dclm\n    weight: 2\n    topics:\n      - {name: code, weight: 1, paths: [c1, c2]}\n"
        "  - name: wiki\n    weight: 1\n    max_repetition_factor: 2\n    paths: [w]\n",
    )
    table = CliRunner().invoke(main, ["leaves", str(path)])
    assert table.exit_code == 0, table.output
    assert [line.split() for line in table.output.splitlines()] == [
        ["LEAF", "REPEAT", "WEIGHTS", "PATHS"],
        ["dclm:code", "1", "2", "×", "1", "c1", "(+1", "more)"],
        ["wiki", "2", "1", "w"],
        ["2", "leaves"],
    ]
    as_json = CliRunner().invoke(main, ["leaves", "--json", str(path)])
    assert json.loads(as_json.output)[0] == {
        "name": "dclm:code",
        "source": "dclm",
        "parent": "dclm",
        "paths": ["c1", "c2"],
        "max_repetition_factor": 1.0,
        "max_topic_ratio": None,
        "ancestry": [
            {"level": "source", "name": "dclm", "weight": 2, "max_repetition_factor": None},
            {"level": "topic", "name": "code", "weight": 1, "max_repetition_factor": None},
        ],
    }


def test_leaves_command_reports_config_errors_without_traceback(write: Callable[[str, str], Path]) -> None:
    from click.testing import CliRunner

    from olmix.cli import main

    result = CliRunner().invoke(main, ["leaves", str(write("c.yaml", "name: x\n"))])
    assert result.exit_code == 1
    assert "c.yaml:1:1: $: missing required key 'sources'" in result.output
    assert "Traceback" not in result.output
