"""`olmix migrate`: upstream olmix configs in, mixture configs that validate and plan out.

The upstream-layout inputs under tests/migrate/upstream are written for these
tests (the upstream's own configs are measured by tools/migrate_upstream.py).
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest

from olmix import migrate
from olmix.loading.validation import schema_of
from tests.support.olmixcli import Run
from tests.support.tokenfiles import write_tokens

UPSTREAM = Path(__file__).resolve().parents[2] / "migrate" / "upstream"


def _notes(result: migrate.Migrated) -> set[str]:
    return {f"{n.line}:{n.column} {'.'.join(map(str, n.path))}" for n in result.notes}


def test_every_upstream_key_is_carried_or_named_in_a_located_note() -> None:
    # the keys of each fixture that olmix has no setting for, at their line:column in the fixture
    expected = {
        "launch.yaml": {
            "15:3 infra.scratch_disk",
            "23:3 training.lr_schedule",
            "28:5 data.sources.0.weight",  # upstream's launch takes the mix's weights instead
            "46:3 eval.tasks",  # task ids carried; families and metric names not
            "51:1 group_id",
        },
        "generation.yaml": {
            "19:1 priors",
            "38:3 swarm.repetition_factor",
            "39:3 swarm.existing_mix_file",
            "40:1 max_tokens",
        },
        "fit.yaml": {
            "5:1 priors",
            "14:3 regression.seed",
            "15:3 regression.n_test",
            "16:3 regression.train_split",
            "26:3 constraints.target_tokens",
        },
    }
    for name, notes in expected.items():
        result = migrate.migrate_file(UPSTREAM / name)
        assert _notes(result) == notes, name
        assert all(n.file == str(UPSTREAM / name) for n in result.notes)


def test_launch_config_carries_every_section_as_the_upstream_reads_it() -> None:
    result = migrate.migrate_file(UPSTREAM / "launch.yaml")
    config = result.config
    assert result.kind == "launch" and config is not None
    infra = {"budget": "ai2/oe-base", "workspace": "ai2/oe-data", "cluster": "ai2/jupiter", "priority": "high"}
    assert {k: config[k] for k in infra} == infra
    assert (config["preemptible"], config["weka"], config["nodes"], config["gpus"]) == (False, False, 1, 2)
    assert config["seed"] == 1234  # `1_234` is a number to the upstream (YAML 1.1)
    assert (config["proxy_model_id"], config["chinchilla_multiple"], config["eval_interval"]) == (
        "olmo3_14m",
        0.0001,
        250,
    )
    # a task ai2-olmo-eval does not know is not carried (the config would not validate) but named in a note
    assert config["eval_tasks"] == ["arc_easy_rc_5shot"]
    assert any("'gsm8k_bpb_5shot'" in n.message and "not carried" in n.message for n in result.notes)
    dclm, wiki = config["sources"]
    assert (dclm["weight"], dclm["max_repetition_factor"], wiki["weight"], wiki["max_repetition_factor"]) == (
        0.6,
        2.0,
        0.4,
        3.0,
    )
    low = dclm["topics"][1]["quality"][1]
    assert (low["name"], low["weight"], low["max_repetition_factor"]) == ("low", 0.25, 1.5)


def _corpus(root: Path) -> Path:
    for leaf in ("dclm/code", "dclm/science/high", "dclm/science/low", "wiki"):
        write_tokens(root / leaf / "part-0.npy", 10_000)
    return root


def test_migrated_launch_config_validates_and_plans_with_the_upstream_shares(run_olmix: Run, tmp_path: Path) -> None:
    out = tmp_path / "migrated"
    done = run_olmix("migrate", str(UPSTREAM), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "launch.yaml:15:3: $.infra.scratch_disk: not carried" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["generation.yaml", "launch.yaml"]  # a fit config is a command
    assert run_olmix("validate", str(out)).returncode == 0
    for path in out.iterdir():
        assert schema_of(path.read_bytes()) == "mixture"
        modeline = path.read_text().splitlines()[0]
        assert (path.parent / modeline.split("$schema=", 1)[1]).resolve().name == "mixture.schema.json"
    corpus = _corpus(tmp_path / "corpus")
    plan_file = tmp_path / "plan.json"
    preview = run_olmix(
        "launch", "preview", "--config", str(out / "launch.yaml"), "--path-map", f"s3://bkt/={corpus}/",
        "--plan-out", str(plan_file),
    )  # fmt: skip
    assert preview.returncode == 0, preview.stderr
    (run,) = json.loads(plan_file.read_text())["runs"]
    got = {leaf["name"]: (leaf["ratio"], leaf["max_repetition_factor"]) for leaf in run["leaves"]}
    # the upstream's share of a leaf is the product of the mix's weights on its path; its cap the nearest one set
    want = {
        "dclm:code": (0.6 * 0.5, 2.0),
        "dclm:science:high": (0.6 * 0.5 * 0.75, 2.0),
        "dclm:science:low": (0.6 * 0.5 * 0.25, 1.5),
        "wiki": (0.4, 3.0),
    }
    assert set(got) == set(want)
    for name, (ratio, cap) in want.items():
        assert math.isclose(got[name][0], ratio, rel_tol=1e-9) and got[name][1] == cap, name


def test_a_mix_that_normalises_differently_is_written_as_shares_of_the_whole() -> None:
    text = b"""name: m
infra: {budget: b, workspace: w, cluster: c, gpus: 1}
data:
  sources:
  - name: web
    topics:
    - {name: a, paths: [pa]}
    - {name: b, paths: [pb]}
  - name: wiki
    paths: [pw]
mix:
  web:
    weight: 0.5
    a: {weight: 0.5}
    b: {weight: 0.25}
  wiki: {weight: 0.5}
"""
    result = migrate.convert(migrate.read(text, "m.yaml"), "m")
    assert result.config is not None
    web, wiki = result.config["sources"]
    # upstream: web:a 0.25, web:b 0.125, wiki 0.5 of 0.875 in all; sibling-normalised 0.5/0.25 would give a 2/3 of web
    total = 0.5 * 0.5 + 0.5 * 0.25 + 0.5
    share_a = (
        web["weight"]
        / (web["weight"] + wiki["weight"])
        * web["topics"][0]["weight"]
        / sum(t["weight"] for t in web["topics"])
    )
    assert math.isclose(share_a, 0.25 / total, rel_tol=1e-12)
    assert any("share of the whole mixture" in n.message for n in result.notes)


def test_fit_config_becomes_the_olmix_fit_command(run_olmix: Run, tmp_path: Path) -> None:
    from olmix.commands.fit import fit

    result = migrate.migrate_file(UPSTREAM / "fit.yaml")
    assert result.config is None and result.fit_command is not None
    args = result.fit_command[2:]
    with fit.make_context("fit", list(args)) as ctx:  # every flag is one olmix fit takes
        params = ctx.params
    assert (params["ratios"], params["metrics"], params["kl_reg"], params["repetition_factor"]) == (
        "ratios.csv",
        "metrics.csv",
        0.05,
        4.0,
    )
    assert params["objective"] == ("eval/a (BPB v2)=0.25", "eval/b (BPB v2)=0.75")  # "1/4" as upstream reads it
    done = run_olmix("migrate", str(UPSTREAM / "fit.yaml"), "--out", str(tmp_path / "o"))
    assert done.returncode == 0 and shlex.join(result.fit_command) in done.stdout


def test_names_with_colons_are_renamed_with_a_note() -> None:
    text = b"name: g\ndata:\n  sources:\n  - name: old\n    topics:\n"
    text += b"    - {name: 'dclm:code', paths: [p]}\nmax_tokens: 10\n"
    result = migrate.convert(migrate.read(text, "g.yaml"), "g")
    assert result.config is not None and result.config["sources"][0]["topics"][0]["name"] == "dclm/code"
    assert "6:8 data.sources.0.topics.0.name" in _notes(result)


def test_nothing_is_written_when_one_source_cannot_be_converted(run_olmix: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsources:\n  - {name: a, paths: [p]}\n")  # a mixture config already
    out = tmp_path / "out"
    done = run_olmix("migrate", str(UPSTREAM / "launch.yaml"), str(bad), "--out", str(out))
    assert done.returncode == 1
    assert f"{bad}:1:1: $: not an upstream olmix config: a mixture config already" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("name", ["launch.yaml", "generation.yaml", "fit.yaml"])
def test_validate_says_in_one_line_that_a_file_is_upstream_and_names_migrate(run_olmix: Run, name: str) -> None:
    done = run_olmix("validate", str(UPSTREAM / name))
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert "upstream olmix" in line and f"olmix migrate {UPSTREAM / name} --out DIR" in line


def test_detect_tells_the_kinds_apart_and_leaves_mixture_configs_alone() -> None:
    assert migrate.detect({"name": "x", "infra": {}, "training": {}, "data": {}, "mix": {}}) == "launch"
    assert migrate.detect({"data": {}, "priors": {}, "swarm": {}, "max_tokens": 1}) == "generation"
    assert migrate.detect({"swarm": {"ratios": "r.csv", "metrics": "m.csv"}, "priors": {}}) == "fit"
    assert migrate.detect({"name": "x", "swarm": {"variants": 2}, "sources": []}) is None
    assert migrate.detect({"name": "x"}) is None


def test_a_value_the_schema_refuses_names_the_upstream_file_and_nothing_is_written(
    run_olmix: Run, tmp_path: Path
) -> None:
    source = tmp_path / "up.yaml"
    source.write_text((UPSTREAM / "launch.yaml").read_text().replace("priority: high", "priority: asap"))
    out = tmp_path / "out"
    done = run_olmix("migrate", str(source), "--out", str(out))
    assert done.returncode == 1
    assert '$.priority: the string "asap" is not allowed' in done.stderr and f"(migrated from {source})" in done.stderr
    assert not out.exists()
