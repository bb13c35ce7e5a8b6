from __future__ import annotations

import pytest

from olmix.errors import ConfigError
from olmix.loading.yamlsource import parse

SCALARS = [
    ("1", 1),
    ("-3", -3),
    ("0x1f", 31),
    ("0o17", 15),
    ("1.5", 1.5),
    ("1e3", 1000.0),
    ("true", True),
    ("False", False),
    ("~", None),
    ("null", None),
    ("yes", "yes"),  # YAML 1.1 booleans are strings in YAML 1.2, as in editors
    ("on", "on"),
    ("2024-01-01", "2024-01-01"),  # no timestamps in JSON
    ("'3'", "3"),
    ('"true"', "true"),
    ("!!str 3", "3"),
    ("!!int '3'", 3),  # a typed tag resolves quoted text too
    ("!!float 1.5", 1.5),
    ("!!bool True", True),
    ("!!null ~", None),
    ("s3://bucket/*.npy", "s3://bucket/*.npy"),
]


@pytest.mark.parametrize(("text", "value"), SCALARS)
def test_scalars_follow_yaml_1_2_core(text: str, value: object) -> None:
    assert parse(f"k: {text}\n".encode(), "f.yaml").data == {"k": value}


def test_positions_of_keys_and_values() -> None:
    doc = parse(b"name: x\nsources:\n  - name: a\n    paths: [p]\n", "f.yaml")
    assert doc.positions.values[("sources", 0)] == (3, 5)
    assert doc.positions.keys[("sources", 0, "paths")] == (4, 5)
    assert doc.positions.values[("sources", 0, "paths", 0)] == (4, 13)


ERRORS = [
    (b"", "f.yaml:1:1: $: empty file: expected a mapping of experiment fields"),
    (b"# only a comment\n", "f.yaml:1:1: $: empty file: expected a mapping of experiment fields"),
    (b"- a\n- b\n", "f.yaml:1:1: $: the top level must be a mapping of experiment fields, not a list"),
    (b"hello\n", "f.yaml:1:1: $: the top level must be a mapping of experiment fields, not the scalar 'hello'"),
    (b"a: 1\na: 2\n", "f.yaml:2:1: $.a: duplicate key 'a' (first given at line 1)"),
    (b"a: [1\n", "f.yaml:2:1: $: YAML syntax error: did not find expected ',' or ']'"),
    (b"a: 1\n\xff\n", "f.yaml:2:1: $: not UTF-8 text (byte 0xff)"),
    (b"a\x00b", "f.yaml:1:1: $: binary file, not YAML text"),
    (b"a: .inf\n", "f.yaml:1:4: $.a: .inf is not a finite number"),
    (b"a: !!binary aGk=\n", "f.yaml:1:4: $.a: unsupported YAML tag tag:yaml.org,2002:binary"),
    # a mapping, list or key may carry only the core schema's tags, like a scalar
    (
        b"a: !!python/object/apply:os.system [ls]\n",
        "f.yaml:1:4: $.a: unsupported YAML tag tag:yaml.org,2002:python/object/apply:os.system",
    ),
    (b"a: !!set {x, y}\n", "f.yaml:1:4: $.a: unsupported YAML tag tag:yaml.org,2002:set"),
    (b"a: !!omap [x: 1]\n", "f.yaml:1:4: $.a: unsupported YAML tag tag:yaml.org,2002:omap"),
    (b"a:\n  - !foo {k: 1}\n", "f.yaml:2:5: $.a[0]: unsupported YAML tag !foo"),
    (b"--- !foo\nk: 1\n", "f.yaml:1:5: $: unsupported YAML tag !foo"),
    (b"a:\n  !bar k: 1\n", "f.yaml:2:3: $.a.k: unsupported YAML tag !bar"),
    # a typed core tag's text must be of its type, quoted or not, as other YAML 1.2 readers require
    (b"a: !!int abc\n", "f.yaml:1:4: $.a: YAML tag tag:yaml.org,2002:int: 'abc' is not an integer"),
    (b"a: !!bool 1\n", "f.yaml:1:4: $.a: YAML tag tag:yaml.org,2002:bool: '1' is not true or false"),
    (b"a: !!null x\n", "f.yaml:1:4: $.a: YAML tag tag:yaml.org,2002:null: 'x' is not null"),
    (
        b"a: !!float 1\n",
        "f.yaml:1:4: $.a: YAML tag tag:yaml.org,2002:float: '1' is not a float (with a '.' or an exponent)",
    ),
    (b"a: !!map [1]\n", "f.yaml:1:4: $.a: YAML tag tag:yaml.org,2002:map on a list"),
    (b"a: !!seq {k: 1}\n", "f.yaml:1:4: $.a: YAML tag tag:yaml.org,2002:seq on a mapping"),
    (b"a: !!str [1]\n", "f.yaml:1:4: $.a: YAML tag tag:yaml.org,2002:str on a list"),
    (b"a: 1\n---\nb: 2\n", "f.yaml:3:1: $: more than one YAML document; a config holds exactly one"),
    (b"? [a]\n: 1\n", "f.yaml:1:3: $: a key must be a plain name, not a list or mapping"),
    (b"a: &x [1, *x]\n", "f.yaml:1:11: $: YAML alias *x is inside the value it refers to"),
    (b"a: &x 1\nb: &x 2\n", "f.yaml:2:4: $: YAML anchor &x is defined twice (first at line 1)"),
    (b"a: *y\n", "f.yaml:1:4: $: YAML alias *y has no anchor &y before it"),
    (b"a: " + b"[" * 2000 + b"]" * 2000 + b"\n", "f.yaml:1:1003: $: YAML syntax error: exceeded maximum nesting depth"),
]


@pytest.mark.parametrize(("raw", "message"), ERRORS)
def test_bad_input_is_one_clear_located_error(raw: bytes, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(raw, "f.yaml")
    assert [str(p) for p in info.value.problems] == [message]


def test_core_tags_on_collections_are_kept() -> None:
    doc = parse(b"a: !!map {k: 1}\nb: !!seq [1]\nc: ! [2]\n!!str d: 3\n", "f.yaml")
    assert doc.data == {"a": {"k": 1}, "b": [1], "c": [2], "d": 3}


def test_an_alias_is_a_copy_located_at_its_anchor() -> None:
    doc = parse(b"base: &b\n  k: [1, 2]\nother: *b\n", "f.yaml")
    assert doc.data == {"base": {"k": [1, 2]}, "other": {"k": [1, 2]}}
    assert doc.data["other"] is not doc.data["base"]  # editing one must not change the other
    assert doc.positions.values[("other", "k", 1)] == doc.positions.values[("base", "k", 1)] == (2, 10)
    assert doc.positions.keys[("other",)] == (3, 1)


def test_a_value_after_a_bad_key_is_skipped_with_its_anchors_kept() -> None:
    # the duplicate's value is not built, but an anchor in it is still defined, as YAML says
    doc_text = b"a: 1\na: &x {k: [2]}\nb: *x\n"
    with pytest.raises(ConfigError) as info:
        parse(doc_text, "f.yaml")
    assert [str(p) for p in info.value.problems] == ["f.yaml:2:1: $.a: duplicate key 'a' (first given at line 1)"]
    assert parse(b"a: &x {k: [2]}\nb: *x\n", "f.yaml").data == {"a": {"k": [2]}, "b": {"k": [2]}}


def test_aliases_cannot_expand_without_bound() -> None:
    lines = ["a: &a [" + ", ".join(["1"] * 10) + "]"]
    for prev, name in zip("abcde", "bcdef", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(ConfigError) as info:
        parse(("\n".join(lines) + "\n").encode(), "f.yaml")
    [problem] = info.value.problems
    # *d is 12,222 events (a: 12; each level 10 × the last + 2): the 9th *d on line 5 passes 100,000
    assert problem.line == 5 and "YAML aliases expand to more than 100,000 values" in problem.message
