from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from olmix import demodata, schemas
from olmix.cli import main
from olmix.errors import ConfigError
from olmix.leaves import leaves
from olmix.loading.config import load_config, load_document
from tests.conftest import REPO

SHIPPED = REPO / "config/studies/quality_thresholds.yaml"
SHIPPED_OUT = REPO / "config/examples/launch/quality_thresholds"
TOPICS = list(demodata.TOPICS)  # the study's topics are the demo corpus's
TEMPLATE = (
    "s3://ai2-llm/preprocessed/cc_all_dressed/all_dressed_v3/dclm_plus2_vigilantes/allenai/dolma2-tokenizer/"
    "{topic}/vigintile_{k:04d}/*.npy"
)
ARXIV = (
    "s3://ai2-llm/preprocessed/proof-pile-2/v0_decontaminated-0625_tokenized/arxiv/train/allenai/dolma2-tokenizer/*.npy"
)
WIKI = "s3://ai2-llm/preprocessed/wikipedia-dolma-0823/allenai/dolma2-tokenizer/*.npy"

# A small study: line numbers below count from its first line.
NAME_RULE = (
    "A name has no ':', no control, invisible or formatting character, no special space (and no space at "
    "either end), no combining mark of the generic blocks or variation selector, and no fullwidth form."
)
BASE = """\
experiment:
  name: q-top{pct}pct
  chinchilla_multiple: 0.5
  proxy_model_id: olmo3_14m
quality_source:
  name: web
  topics: [code, news]
  path_template: data/{topic}/{bucket}/*.npy
buckets:
  scheme: vigintile
thresholds: [0.1, 0.3]
sources:
  - name: arxiv
    paths: [data/arxiv/*.npy]
"""


def header(text: str) -> str:
    """The comment header after the modeline, its wrapped lines joined."""
    lines = text.splitlines()[1:]
    comments = [line[1:].strip() for line in lines[: next(i for i, x in enumerate(lines) if not x.startswith("#"))]]
    return " ".join(comments)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


# ---------------------------------------------------------------------------
# The shipped study and its five experiments


@pytest.mark.parametrize(("pct", "first"), [(10, 19), (30, 15), (50, 11), (70, 7), (100, 1)])
def test_shipped_experiments_follow_the_arithmetic(pct: int, first: int) -> None:
    path = SHIPPED_OUT / f"quality_top{pct}pct.yaml"
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../../../schema/mixture.schema.json\n")
    config = load_config(path)
    assert config.name == f"quality-top{pct}pct"
    assert config.description == f"Quality threshold experiment - top {pct}% quality data"
    assert (config.chinchilla_multiple, config.proxy_model_id, config.cluster) == (0.5, "olmo3_14m", "ai2/jupiter")
    expected = [
        (f"all_dressed:{topic}:vigintile_{k:04d}", (TEMPLATE.format(topic=topic, k=k),), 1.0)
        for topic in TOPICS
        for k in range(first, 21)
    ]
    expected += [("arxiv", (ARXIV,), 1.5), ("wikipedia", (WIKI,), 2.0)]
    assert [(leaf.name, leaf.paths, leaf.max_repetition_factor) for leaf in leaves(config)] == expected
    assert all(n.weight is None for leaf in leaves(config) for n in leaf.ancestry)  # equal shares by default
    about = header(text)
    assert (
        "20 tokens/parameter × 14,000,000 parameters (olmo3_14m) × chinchilla_multiple 0.5 = 140,000,000 tokens"
        in about
    )
    assert "all_dressed 1/3 (each of its 6 topics 1/18); arxiv 1/3; wikipedia 1/3" in about
    assert f"olmix launch run --config config/examples/launch/quality_thresholds/quality_top{pct}pct.yaml" in about
    assert "Missing buckets left out: none." in about
    assert f"Threshold {pct / 100:g}: the top {pct}% of 20 vigintile buckets" in about
    assert config.varied is not None
    assert (config.varied.quality_threshold, config.varied.profile) == (pct / 100, None)


def test_regenerating_the_shipped_study_changes_nothing(tmp_path: Path) -> None:
    # A copy of the project's layout, so the relative paths in the headers come out the same.
    (tmp_path / "schema").mkdir()
    shutil.copy(REPO / "schema/mixture.schema.json", tmp_path / "schema")
    (tmp_path / "config/studies").mkdir(parents=True)
    shutil.copy(SHIPPED, tmp_path / "config/studies")
    out = tmp_path / "config/examples/launch/quality_thresholds"
    code, output = run(
        "generate", "quality-thresholds", str(tmp_path / "config/studies/quality_thresholds.yaml"), "--out", str(out)
    )
    assert code == 0, output
    made = sorted(p.name for p in out.iterdir())
    assert made == sorted(p.name for p in SHIPPED_OUT.iterdir())
    for name in made:
        assert (out / name).read_bytes() == (SHIPPED_OUT / name).read_bytes(), name


def test_the_check_option_reports_drift(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["generate", "quality-thresholds", str(SHIPPED), "--out", str(out)]
    assert run(*args, "--check")[0] == 1  # nothing written yet: all missing
    assert run(*args)[0] == 0
    assert run(*args, "--check") == (0, f"5 file(s) match {SHIPPED}\n")
    (out / "quality_top30pct.yaml").write_text((out / "quality_top30pct.yaml").read_text() + "# edited\n")
    (out / "quality_top20pct.yaml").write_text("stale\n")
    code, output = run(*args, "--check")
    assert code == 1
    assert "quality_top30pct.yaml: differs" in output
    assert "quality_top20pct.yaml: stale" in output


# ---------------------------------------------------------------------------
# Generation


def test_missing_bucket_is_named_and_left_out(tmp_path: Path) -> None:
    variant = tmp_path / "study.yaml"
    variant.write_text(SHIPPED.read_text() + "missing_buckets:\n  all: [vigintile_0019]\n")
    out = tmp_path / "out"
    code, output = run("generate", "quality-thresholds", str(variant), "--out", str(out))
    assert code == 0, output
    for path in sorted(out.iterdir()):
        text = path.read_text()
        assert "vigintile_0019" not in [leaf.name.rsplit(":", 1)[-1] for leaf in leaves(load_config(path))]
        assert "/vigintile_0019/" not in text
        assert "Missing buckets left out (not in the data): vigintile_0019 under every topic." in header(text)
    top10 = load_config(out / "quality_top10pct.yaml")
    assert [leaf.name for leaf in leaves(top10)][:2] == [
        "all_dressed:science_math_and_technology:vigintile_0020",
        "all_dressed:software_development:vigintile_0020",
    ]


def test_output_is_byte_identical_and_writes_are_atomic(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["generate", "quality-thresholds", str(SHIPPED), "--out", str(out)]
    assert run(*args)[0] == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    code, output = run(*args)
    assert code == 0
    assert output.count("unchanged ") == 5
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # no temporary files left either


def test_a_differing_file_is_kept_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["generate", "quality-thresholds", str(SHIPPED), "--out", str(out)]
    run(*args)
    edited = out / "quality_top50pct.yaml"
    edited.write_text("# my notes\n" + edited.read_text())
    (out / "quality_top10pct.yaml").unlink()
    code, output = run(*args)
    assert code == 1
    assert "1 existing file(s) differ" in output and "quality_top50pct.yaml" in output and "--force" in output
    assert edited.read_text().startswith("# my notes\n")
    assert not (out / "quality_top10pct.yaml").exists()  # nothing written when one file would be lost
    code, output = run(*args, "--force")
    assert code == 0
    assert "overwrote" in output and "wrote" in output
    assert not edited.read_text().startswith("# my notes\n")


def test_profiles_multiply_the_grid(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    text = BASE.replace("q-top{pct}pct", "q-top{pct}pct-{profile}") + (
        "profiles:\n  - name: even\n    topic_weights: {code: 1}\n  - name: heavy_code\n    topic_weights: {code: 3}\n"
    )
    out = tmp_path / "out"
    code, output = run("generate", "quality-thresholds", str(write("s.yaml", text)), "--out", str(out))
    assert code == 0, output
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml"))
    assert made == [
        "even/quality_top10pct.yaml",
        "even/quality_top30pct.yaml",
        "heavy_code/quality_top10pct.yaml",
        "heavy_code/quality_top30pct.yaml",
    ]
    config = load_config(out / "heavy_code/quality_top30pct.yaml")
    assert config.name == "q-top30pct-heavy_code"
    weights = {leaf.name: leaf.ancestry[1].weight for leaf in leaves(config) if leaf.source == "web"}
    assert weights["web:code:vigintile_0015"] == 3
    assert weights["web:news:vigintile_0015"] == 1
    about = header((out / "heavy_code/quality_top30pct.yaml").read_text())
    assert "web 1/2 (code 3/8, news 1/8); arxiv 1/2" in about
    assert "Topic weights: profile heavy_code." in about
    assert config.varied is not None
    assert (config.varied.quality_threshold, config.varied.profile) == (0.3, "heavy_code")


def test_a_source_without_topics(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    text = BASE.replace("  topics: [code, news]\n", "").replace("data/{topic}/{bucket}", "data/{bucket}")
    text = text.replace("scheme: vigintile", "prefix: tercile\n  count: 3").replace(
        "[0.1, 0.3]", "[0.3333333333333333, 1]"
    )
    out = tmp_path / "out"
    code, output = run("generate", "quality-thresholds", str(write("s.yaml", text)), "--out", str(out))
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["quality_top100pct.yaml", "quality_top33p33pct.yaml"]
    config = load_config(out / "quality_top33p33pct.yaml")
    assert [(leaf.name, leaf.paths) for leaf in leaves(config)] == [
        ("web:tercile_0003", ("data/tercile_0003/*.npy",)),
        ("arxiv", ("data/arxiv/*.npy",)),
    ]
    assert "Threshold 1/3: the top 33.33% of 3 tercile buckets" in header(
        (out / "quality_top33p33pct.yaml").read_text()
    )


def test_generated_files_are_checked_as_experiments(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    # The base fields are copied as they are; a name the mixture rules reject fails before anything is written.
    text = BASE.replace("  proxy_model_id: olmo3_14m\n", "  proxy_model_id: olmo3_14m\n  manual_prior: {arxv: 1}\n")
    out = tmp_path / "out"
    code, output = run("generate", "quality-thresholds", str(write("s.yaml", text)), "--out", str(out))
    assert code == 1
    assert "no source is named 'arxv'; did you mean 'arxiv'?" in output
    assert not out.exists()


# ---------------------------------------------------------------------------
# Rules beyond the schema: (replace in BASE, appended text, every problem as "LINE:COL PATH: message")

RULES = [
    (
        ("[0.1, 0.3]", "[0.1, 0.33]"),
        "",
        [
            "11:19 $.thresholds[1]: threshold 0.33 does not fall on a vigintile boundary (multiples of 1/20); "
            "nearest valid: 0.3 and 0.35"
        ],
    ),
    (("[0.1, 0.3]", "[0.1, 0.10]"), "", ["11:19 $.thresholds[1]: duplicate threshold 0.1 (first at line 11)"]),
    (
        ("[code, news]", "[code, code]"),
        "",
        ["7:18 $.quality_source.topics[1]: duplicate topic 'code' (first at line 7)"],
    ),
    (
        ("[code, news]", '[code, "\\uFF43ode"]'),  # fullwidth: refused by the schema's Name pattern
        "",
        [
            '7:18 $.quality_source.topics[1]: "\\uff43ode" has U+FF43 FULLWIDTH LATIN SMALL LETTER C at character 1: '
            + NAME_RULE
        ],
    ),
    (
        ("[code, news]", '["\\u212Bngstrom", "\\u00C5ngstrom"]'),  # one name under NFKC
        "",
        [
            "7:29 $.quality_source.topics[1]: duplicate topic '\u00c5ngstrom' (\\xc5ngstrom): once normalised "
            "(Unicode NFKC) it is '\u212bngstrom' (\\u212bngstrom), first at line 7; the two print alike"
        ],
    ),
    (("name: arxiv", "name: web"), "", ["13:11 $.sources[0].name: duplicate source name 'web' (first at line 6)"]),
    (
        ("name: arxiv", 'name: "\\U0001D430eb"'),  # a mathematical bold w: 'web' under NFKC
        "",
        ["13:11 $.sources[0].name: duplicate source name '\U0001d430eb' (first at line 6; 'web' under Unicode NFKC)"],
    ),
    (
        ("{pct}", "{pc}"),
        "",
        [
            "2:9 $.experiment.name: needs {pct} or {threshold}: every threshold's experiment needs its own name",
            "2:9 $.experiment.name: unknown placeholder '{pc}'; did you mean '{pct}'?",
        ],
    ),
    (
        ("{bucket}", "{buckett}"),
        "",
        [
            "8:18 $.quality_source.path_template: needs {bucket}: every bucket has its own files",
            "8:18 $.quality_source.path_template: unknown placeholder '{buckett}'; did you mean '{bucket}'?",
        ],
    ),
    (
        ("data/{topic}/", "data/"),
        "",
        ["8:18 $.quality_source.path_template: needs {topic}: every topic has its own files"],
    ),
    (
        None,
        "missing_buckets:\n  all: [vigintile_0021]\n",
        [
            "16:9 $.missing_buckets.all[0]: no bucket 'vigintile_0021' in the vigintile scheme; "
            "did you mean 'vigintile_0020'? (vigintile_0001 … vigintile_0020)"
        ],
    ),
    (
        None,
        "missing_buckets:\n  topics:\n    cod: [vigintile_0019]\n",
        ["17:5 $.missing_buckets.topics.cod: the quality source has no topic 'cod'; did you mean 'code'?"],
    ),
    (
        None,
        "missing_buckets:\n  topics:\n    code: [vigintile_0019, vigintile_0020]\n",
        [
            "11:14 $.thresholds[0]: threshold 0.1 keeps only buckets missing under topic code "
            "(vigintile_0019, vigintile_0020)"
        ],
    ),
    (
        None,
        "profiles:\n  - {name: a, topic_weights: {code: 1}}\n  - {name: a, topic_weights: {news: 0, code: 0}}\n",
        [
            "2:9 $.experiment.name: needs {profile}: every profile's experiment needs its own name",
            "17:5 $.profiles[1]: duplicate profile name 'a' (first at line 16)",
            "17:30 $.profiles[1].topic_weights: all topic weights are 0: at least one must be positive",
        ],
    ),
    (
        None,
        "profiles:\n  - {name: a, topic_weights: {sports: 2}}\n",
        ["16:31 $.profiles[0].topic_weights.sports: the quality source has no topic 'sports'"],
    ),
]


@pytest.mark.parametrize(("replace", "extra", "expected"), RULES)
def test_rules(
    write: Callable[[str, str], Path], replace: tuple[str, str] | None, extra: str, expected: list[str]
) -> None:
    text = (BASE.replace(*replace) if replace else BASE) + extra
    path = write("s.yaml", text)
    if not expected:
        load_document(path, "study")
        return
    with pytest.raises(ConfigError) as info:
        load_document(path, "study")
    assert [f"{p.line}:{p.column} {p.as_dict()['path']}: {p.message}" for p in info.value.problems] == expected


# Schema problems are reported like a mixture's: (replace in BASE, the first problem)
SCHEMA = [
    (("thresholds: [0.1, 0.3]", "thresholds: [0, 0.3]"), "11:14 $.thresholds[0]: must be greater than 0, not 0"),
    (("thresholds: [0.1, 0.3]", "thresholds: [1.5]"), "11:14 $.thresholds[0]: must be at most 1, not 1.5"),
    (("thresholds: [0.1, 0.3]", "thresholds: []"), "11:13 $.thresholds: must not be empty"),
    (("thresholds: [0.1, 0.3]", "thresholds: [true]"), "11:14 $.thresholds[0]: must be a number, not a boolean"),
    (
        ("thresholds: [0.1, 0.3]", "thresholds: ['0.5']"),
        '11:14 $.thresholds[0]: must be a number, not the string "0.5"',
    ),
    (
        ("scheme: vigintile", "scheme: vigintle"),
        '10:11 $.buckets.scheme: the string "vigintle" is not allowed; '
        "did you mean 'vigintile'? (allowed: quintile, decile, vigintile, percentile)",
    ),
    (
        ("scheme: vigintile", "scheme: vigintile\n  count: 3"),
        "10:3 $.buckets: a bucket scheme has exactly one of 'scheme', 'count' or 'prefix', but this one has "
        "'scheme' (line 10), 'count' (line 11)",
    ),
    (
        ("  chinchilla_multiple: 0.5\n", "  chinchila_multiple: 0.5\n"),
        "3:3 $.experiment.chinchila_multiple: unknown key 'chinchila_multiple'; did you mean 'chinchilla_multiple'?",
    ),
    (
        ("scheme: vigintile", 'prefix: "tercile\\n"\n  count: 3'),
        "10:11 $.buckets.prefix: \"tercile\\n\": A bucket prefix is letters, digits and '_'.",
    ),
    (
        ("name: q-top{pct}pct", "name: ../q-top{pct}pct"),
        '2:9 $.experiment.name: "../q-top{pct}pct": An experiment name pattern is 1 to 100 characters: letters, '
        "digits, '_', '-', '.' and placeholders in braces, starting with a letter, a digit or a placeholder.",
    ),
    (
        ("sources:", "profiles:\n  - {name: plan.json, topic_weights: {code: 1}}\nsources:"),
        "13:12 $.profiles[0].name: \"plan.json\": A run name is 1 to 128 characters: letters, digits, '_', '-', "
        "and '.' followed by a digit (as in 0.3), starting with a letter or digit.",
    ),
]


@pytest.mark.parametrize(("replace", "first"), SCHEMA)
def test_schema_problems(write: Callable[[str, str], Path], replace: tuple[str, str], first: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_document(write("s.yaml", BASE.replace(*replace)), "study")
    got = [f"{p.line}:{p.column} {p.as_dict()['path']}: {p.message}" for p in info.value.problems]
    assert got[0] == first


def test_validate_picks_the_study_schema_by_modeline() -> None:
    code, output = run("validate", "--format", "json", str(SHIPPED), str(SHIPPED_OUT / "quality_top10pct.yaml"))
    assert code == 0, output
    assert [(f["schema"], f["valid"]) for f in json.loads(output)["files"]] == [("study", True), ("mixture", True)]


def test_base_fields_mean_what_they_mean_in_an_experiment() -> None:
    # The study schema is self-contained for editors; its copies of the mixture's definitions must not drift.
    mixture, studied = schemas.load("mixture"), schemas.load("study")
    base = studied["$defs"]["Experiment"]["properties"]
    assert set(base) == set(mixture["properties"]) - {"sources", "varied"}  # the expansion writes `varied`
    for key, prop in base.items():
        if key not in ("name", "description"):
            assert prop == mixture["properties"][key], key
    for name, definition in mixture["$defs"].items():
        assert studied["$defs"][name] == definition, name
