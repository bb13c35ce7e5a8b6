from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from olmix.errors import ConfigError
from olmix.leaves import leaves
from olmix.loading.config import load_config
from tests.conftest import REPO

HEAD = "name: x\n"
SRC = "sources:\n  - name: a\n    paths: [p]\n"

# (config text, every problem expected as "LINE:COL PATH: message")
CASES = [
    (
        HEAD + "chinchila_multiple: 0.5\n" + SRC,
        ["2:1 $.chinchila_multiple: unknown key 'chinchila_multiple'; did you mean 'chinchilla_multiple'?"],
    ),
    (HEAD + "chinchilla_multiple: 0\n" + SRC, ["2:22 $.chinchilla_multiple: must be greater than 0, not 0"]),
    (HEAD + "nodes: '2'\n" + SRC, ['2:8 $.nodes: must be a whole number, not the string "2"']),
    (HEAD + "nodes: 2.5\n" + SRC, ["2:8 $.nodes: must be a whole number, not the number 2.5"]),
    (
        HEAD + "priority: asap\n" + SRC,
        ['2:11 $.priority: the string "asap" is not allowed (allowed: low, normal, high, urgent)'],
    ),
    (
        HEAD + "dtype: uint31\n" + SRC,
        [
            "2:8 $.dtype: the string \"uint31\" is not allowed; did you mean 'uint32'? "
            "(allowed: uint8, uint16, uint32, uint64)"
        ],
    ),
    (HEAD + "weka: yes\n" + SRC, ['2:7 $.weka: must be true or false, not the string "yes"']),
    (HEAD + "sources: []\n", ["2:10 $.sources: must not be empty"]),
    ("sources:\n  - name: a\n    paths: [p]\n", ["1:1 $: missing required key 'name'"]),
    (
        HEAD + "sources:\n  - name: a\n    weight: 1\n",
        ["3:5 $.sources[0]: a source needs exactly one of 'paths', 'topics' or 'quality'; none is given"],
    ),
    (
        HEAD + "sources:\n  - name: a\n    paths: [p]\n    topics:\n      - {name: t, paths: [q]}\n",
        [
            "3:5 $.sources[0]: a source has exactly one of 'paths', 'topics' or 'quality', "
            "but this one has 'paths' (line 4), 'topics' (line 5)"
        ],
    ),
    (
        HEAD + "sources:\n  - name: a\n    topics:\n      - name: t\n        paths: [p]\n"
        "        quality: [{name: q, paths: [r]}]\n",
        [
            "5:9 $.sources[0].topics[0]: a topic has exactly one of 'paths' or 'quality', "
            "but this one has 'paths' (line 6), 'quality' (line 7)"
        ],
    ),
    (
        HEAD + "sources:\n  - name: a\n    paths: [p]\n    max_repetiton_factor: 2\n",
        [
            "5:5 $.sources[0].max_repetiton_factor: unknown key 'max_repetiton_factor'; "
            "did you mean 'max_repetition_factor'?"
        ],
    ),
    (
        HEAD + "sources:\n  - name: a\n    paths: [p]\n    max_repetition_factor: -1\n",
        ["5:28 $.sources[0].max_repetition_factor: must be at least 1, not -1"],
    ),
    (HEAD + "sources:\n  - name: a\n    paths: []\n", ["4:12 $.sources[0].paths: must not be empty"]),
    (HEAD + "sources:\n  - name: a\n    paths: ['']\n", ["4:13 $.sources[0].paths[0]: must not be empty"]),
    (
        HEAD + "sources:\n  - name: 'a:b'\n    paths: [p]\n",
        ["3:11 $.sources[0].name: \"a:b\" must not contain ':' (it separates the parts of leaf names)"],
    ),
    (HEAD + "sources:\n  - name: a\n    weight: 1\n    paths: [p]\n", []),
    (
        HEAD + "sources:\n  - name: a\n    paths: [p]\n  - name: a\n    paths: [q]\n",
        ["5:11 $.sources[1].name: duplicate source name 'a' (first used at line 3)"],
    ),
    (
        HEAD + "sources:\n  - name: s\n    quality:\n      - {name: hi, paths: [p]}\n      - {name: hi, paths: [q]}\n",
        ["6:16 $.sources[0].quality[1].name: duplicate quality bucket name 'hi' (first used at line 5)"],
    ),
    (
        HEAD + "sources:\n  - name: a\n    weight: 1\n    paths: [p]\n  - name: b\n    paths: [q]\n",
        [
            "4:13 $.sources[0].weight: weight is set on some sources but not on b: set it on all siblings or none, "
            "e.g. weight: 1 on b (the mean of the weights set)"
        ],
    ),
    (
        HEAD + "sources:\n  - {name: a, weight: 0.6, paths: [p]}\n  - {name: b, weight: 0.2, paths: [p]}\n"
        "  - name: c\n    topics:\n      - {name: x, weight: 0.25, paths: [p]}\n"
        "      - {name: y, weight: 0.05, paths: [p]}\n"
        "  - {name: d, paths: [p]}\n",
        [
            "3:23 $.sources[0].weight: weight is set on some sources but not on c, d: set it on all siblings or none, "
            "e.g. weight: 0.3 on c (its topics' weights total 0.3); weight: 0.4 on d (the mean of the weights set)"
        ],
    ),
    (
        HEAD + "sources:\n  - name: s\n    quality:\n      - {name: hi, weight: 3, paths: [p]}\n"
        "      - {name: lo, paths: [p]}\n",
        [
            "5:28 $.sources[0].quality[0].weight: weight is set on some quality buckets but not on lo: set it on all "
            "siblings or none, e.g. weight: 3 on lo (the mean of the weights set)"
        ],
    ),
    (HEAD + "manual_prior: {arxv: 1}\n" + SRC, ["2:16 $.manual_prior.arxv: no source is named 'arxv'"]),
    (
        HEAD + "proxy_model_id: olmo3_14M\n" + SRC,
        [
            "2:17 $.proxy_model_id: the string \"olmo3_14M\" is not allowed; did you mean 'olmo3_14m'? (allowed: "
            "olmo2_1m, olmo2_30m, olmo2_60m, olmo2_190m, olmo2_1b, olmo2_7b, olmo3_1m, olmo3_14m, olmo3_30m, "
            "olmo3_60m, olmo3_100m, olmo3_190m, olmo3_370m, olmo3_600m, olmo3_760m, olmo3_1b, olmo3_3b, olmo3_7b, "
            "olmo3_13b, olmo3_32b)"
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_every_problem_is_reported_where_it_is(
    write: Callable[[str, str], Path], text: str, expected: list[str]
) -> None:
    path = write("c.yaml", text)
    if not expected:
        assert load_config(path).name == "x"
        return
    with pytest.raises(ConfigError) as info:
        load_config(path)
    prefix = f"{path}:"
    got = [str(p).removeprefix(prefix).replace(": $", " $", 1) for p in info.value.problems]
    assert got == expected


def test_all_problems_in_one_error(write: Callable[[str, str], Path]) -> None:
    path = write("c.yaml", "name: x\nnodes: 0\ngpus: 0\nsources:\n  - name: a\n    path: [p]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [(p.line, p.path) for p in info.value.problems] == [
        (2, ("nodes",)),
        (3, ("gpus",)),
        (5, ("sources", 0)),
        (6, ("sources", 0, "path")),
    ]


def test_minimal_config_flattens_to_its_leaves() -> None:
    config = load_config(REPO / "config/examples/minimal.yaml")
    assert config.chinchilla_multiple == 0.5
    assert [(leaf.name, leaf.max_repetition_factor) for leaf in leaves(config)] == [
        ("all_dressed:science_math_and_technology:vigintile_0015", 1.0),
        ("arxiv", 1.5),
    ]


def test_did_you_mean_offers_only_a_key_that_takes_the_kind_of_value_given(tmp_path: Path) -> None:
    # `swarm:` and `priors:` are the upstream's sections: a mapping is no `slurm` (other keys) or `priority` (a string)
    text = (
        HEAD
        + "swarm:\n  variants: 4\npriors:\n  relative_sizes: {a: 1}\n"
        + "slurn:\n  partition: gpu\npriorty: high\n"
        + SRC
        + "    wieght: 1\n"
    )
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    messages = {".".join(map(str, p.path)): p.message for p in exc.value.problems}
    assert "did you mean" not in messages["swarm"] and "did you mean" not in messages["priors"]
    assert messages["slurn"].endswith("did you mean 'slurm'?")
    assert messages["priorty"].endswith("did you mean 'priority'?")
    assert messages["sources.0.wieght"].endswith("did you mean 'weight'?")


def test_the_rules_judge_the_parts_of_an_invalid_file_that_are_well_formed(write: Callable[[str, str], Path]) -> None:
    text = (
        "name: x\nnodes: two\nsources:\n  - name: a\n    paths: [p]\n  - name: a\n    paths: [q]\n"
        "  - paths: [r]\n  - name: b\n    weight: -1\n    paths: [s]\nnonzero_weight: [zz]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write("c.yaml", text))
    found = [f"{p.line}:{p.column} {p.message}" for p in info.value.problems]
    # the duplicate beside the schema's problems; no weight rule among siblings the schema rejected, and no
    # "no leaf is named" while a source has no name
    assert found == [
        '2:8 must be a whole number, not the string "two"',
        "6:11 duplicate source name 'a' (first used at line 4)",
        "8:5 missing required key 'name'",
        "10:13 must be at least 0, not -1",
    ]
