"""Differential fuzzing of the mixture schema's implementations.

Valid configs are drawn from the schema's own structure (properties,
required keys, bounds, patterns, oneOf shapes, enums); near-misses mutate
them (drop, duplicate, rename or retype a key; both or neither of the
exactly-one keys; bad numbers and names). Every example is written as YAML
text and must get the same verdict from olmix's loader, python-jsonschema and
the generated models (and, in batch, ajv); the loader raises only ConfigError.

    python -m tests.support.fuzzing [EXAMPLES [SEED]]   (`make fuzz`: 10,000 new examples, seed printed)
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from pydantic import ValidationError

from olmix import schemas
from olmix.errors import ConfigError
from olmix.loading import config, rules, yamlsource

REPO = Path(__file__).resolve().parents[2]
Schema = dict[str, Any]

# Names come from a small pool so that siblings sometimes share one (a rule olmix checks).
NAME_POOL = ["arxiv", "web", "code", "high", "low", "vigintile_0015", "t 1", "wikipédia"]
TEXT = st.text(st.sampled_from("abz_09 -./*é中\\\"'#&!|>%@`"), min_size=1, max_size=6)


# --------------------------------------------------------------------- valid data from the schema


def _resolve(root: Schema, node: Schema) -> Schema:
    while "$ref" in node:
        node = {**root["$defs"][node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _number(node: Schema, integer: bool) -> st.SearchStrategy[Any]:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    if integer:
        start = int(low if low is not None else -50) + (1 if "exclusiveMinimum" in node else 0)
        return st.integers(start, int(high) if high is not None else start + 1000)
    floats = st.floats(
        min_value=low,
        max_value=high if high is not None else 1e6,
        exclude_min="exclusiveMinimum" in node,
        exclude_max="exclusiveMaximum" in node,
        allow_nan=False,
        allow_infinity=False,
    )
    whole = st.integers(math.ceil(low) if low is not None else -5, math.floor(high) if high is not None else 100)

    def allowed(n: int) -> bool:
        return low is None or "exclusiveMinimum" not in node or n > low

    whole = whole.filter(allowed)
    return st.one_of(floats, whole)


def _deferred(root: Schema, node: Schema) -> st.SearchStrategy[Any]:
    """from_schema(root, node), built when first drawn from (schemas refer to themselves)."""
    return st.deferred(lambda: from_schema(root, node))


def _string(node: Schema) -> st.SearchStrategy[str]:
    if node.get("title") == "Run name":  # a folder name: its own alphabet and length
        longest = node["maxLength"]
        names: st.SearchStrategy[str] = st.from_regex(str(node["pattern"]), fullmatch=True)
        return st.one_of(st.sampled_from(RUN_NAMES), names).filter(lambda s: len(s) <= longest and "\n" not in s)
    if node.get("pattern") == "^[^:]+$" or ("examples" in node and node.get("title", "").endswith("name")):
        return st.one_of(st.sampled_from(NAME_POOL), TEXT.map(str.strip).filter(lambda s: s and ":" not in s))
    return TEXT if node.get("minLength") else st.one_of(st.just(""), TEXT)


_STRATEGIES: dict[int, st.SearchStrategy[Any]] = {}


def from_schema(root: Schema, node: Schema) -> st.SearchStrategy[Any]:
    """Values the schema node accepts (not every such value; enough to reach every keyword)."""
    if id(node) not in _STRATEGIES:  # nodes of the cached schema live as long as the process
        _STRATEGIES[id(node)] = _from_schema(root, node)
    return _STRATEGIES[id(node)]


def _from_schema(root: Schema, node: Schema) -> st.SearchStrategy[Any]:
    node = _resolve(root, node)
    if "oneOf" in node:
        if all("const" in b for b in node["oneOf"]):
            return st.sampled_from([b["const"] for b in node["oneOf"]])
        return st.one_of([from_schema(root, b) for b in node["oneOf"]])
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        required = set(node.get("required", []))
        if not props and isinstance(node.get("additionalProperties"), dict):
            return st.dictionaries(
                _string({"pattern": "^[^:]+$"}), from_schema(root, node["additionalProperties"]), max_size=3
            )
        strategies = {k: _deferred(root, v) for k, v in props.items()}
        optional = sorted(set(props) - required)
        # A few optional keys per object: drawing all ~50 top-level ones each time would be slow.
        chosen = (
            st.lists(st.sampled_from(optional), max_size=min(len(optional), 6), unique=True)
            if optional
            else st.just([])
        )
        return chosen.flatmap(
            lambda keys: st.fixed_dictionaries({k: strategies[k] for k in props if k in required or k in keys})
        )
    if kind == "array":
        return st.lists(from_schema(root, node.get("items", {})), min_size=node.get("minItems", 0), max_size=3)
    if kind in ("number", "integer"):
        return _number(node, kind == "integer")
    if kind == "string":
        return _string(node)
    if kind == "boolean":
        return st.booleans()
    return st.none()


# --------------------------------------------------------------------- near-miss mutations


class Pairs(list[tuple[str, Any]]):
    """A mapping written with a repeated key (only YAML text can hold one)."""


def _containers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    found: list[tuple[tuple[Any, ...], Any]] = []
    if isinstance(value, dict | list) and not isinstance(value, Pairs):
        found.append((path, value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            found += _containers(child, (*path, key))
    return found


def _typo(word: str, draw: st.DrawFn) -> str:
    i = draw(st.integers(0, max(len(word) - 1, 0)))
    how = draw(st.sampled_from(["drop", "double", "swap", "letter"]))
    if how == "drop" and len(word) > 1:
        return word[:i] + word[i + 1 :]
    if how == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if how == "letter":
        return word[:i] + draw(st.sampled_from("aeiorstxz_")) + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


OTHER_TYPES: list[Any] = ["text", 3, -2, 0, 0.5, 1e300, True, False, None, [], {}, ["x"], {"name": "x"}]
BAD_NUMBERS: list[Any] = [-1, 0, 0.5, -0.0, 1.5, 2.5, 1e-9, 10**12]
BAD_NAMES: list[Any] = ["", "a:b", ":", "web:code", " ", 7, "..", "../x", "/x", "plan.json", ".lock", "a\n", "\x1b[2J"]
# names that print like another: invisible, special-space, fullwidth, combining, astral tag, end spaces
BAD_NAMES += ["arxiv\u200b", "a\u00a0b", "\uff41", "e\u0301", "a\U000e0061", "x\ufe0f", " a", "a "]
RUN_NAMES = ["quality-top30pct", "q0.3", "x"]
EXACTLY_ONE = ("paths", "topics", "quality")
# Fresh copies: a mutation must never change a value another example will draw.
OTHER = st.sampled_from(OTHER_TYPES).map(copy.deepcopy)


@st.composite
def mutate(draw: Any, value: dict[str, Any], root: Schema) -> Any:
    spots = _containers(value)
    path, target = draw(st.sampled_from(spots))
    if isinstance(target, list):
        if target and draw(st.booleans()):
            target.pop(draw(st.integers(0, len(target) - 1)))
        else:
            target.append(draw(OTHER))
        return value
    how = draw(st.sampled_from(["drop", "rename", "retype", "number", "name", "exactly-one", "duplicate"]))
    keys = list(target)
    if how == "exactly-one" and "name" in target:
        present = [k for k in EXACTLY_ONE if k in target]
        if present and draw(st.booleans()):
            del target[present[0]]  # neither
        else:  # both (or a topic/bucket given a key its shape lacks)
            extra = draw(st.sampled_from([k for k in EXACTLY_ONE if k not in target] or ["paths"]))
            shape = {"paths": "Paths", "topics": "SourceWithTopics", "quality": "SourceWithQuality"}[extra]
            sub = root["$defs"][shape]
            sample = draw(from_schema(root, sub["properties"][extra] if "properties" in sub else sub))
            target[extra] = sample
        return value
    if not keys:
        target[draw(st.sampled_from(["name", "paths", "x"]))] = draw(OTHER)
        return value
    key = draw(st.sampled_from(keys))
    if how == "drop":
        del target[key]
    elif how == "rename":
        target[_typo(key, draw)] = target.pop(key)
    elif how == "retype":
        target[key] = draw(OTHER)
    elif how == "number":
        target[key] = draw(st.sampled_from(BAD_NUMBERS))
    elif how == "name":
        target["name" if "name" in target else key] = draw(st.sampled_from(BAD_NAMES))
    elif how == "duplicate":
        pairs = Pairs(target.items())
        pairs.append((key, draw(st.one_of(st.just(copy.deepcopy(target[key])), OTHER))))
        if not path:
            return pairs
        parent = value
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = pairs
    return value


@st.composite
def configs(draw: Any) -> Any:
    root = schemas.load("mixture")
    value = draw(from_schema(root, root))
    for _ in range(draw(st.integers(0, 2))):
        if isinstance(value, dict):
            value = draw(mutate(value, root))
    return value


# --------------------------------------------------------------------- YAML text


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML whose scalars are JSON (so YAML 1.2 reads back exactly the data)."""
    pad = " " * indent
    if isinstance(value, dict | Pairs):
        pairs = list(value.items()) if isinstance(value, dict) else list(value)
        if not pairs:
            return "{}"
        lines = []
        for key, child in pairs:
            text = to_yaml(child, indent + 2)
            sep = "\n" if isinstance(child, dict | list | Pairs) and child else " "
            lines.append(f"{pad}{json.dumps(key, ensure_ascii=False)}:{sep}{text}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        return "\n".join(f"{pad}- {to_yaml(child, indent + 2).lstrip()}" for child in value)
    return json.dumps(value, ensure_ascii=False)


def has_pairs(value: Any) -> bool:
    if isinstance(value, Pairs):
        return True
    if isinstance(value, dict):
        return any(has_pairs(v) for v in value.values())
    return isinstance(value, list) and any(has_pairs(v) for v in value)


# --------------------------------------------------------------------- the comparison


@dataclass
class Tally:
    examples: int = 0
    valid: int = 0
    parse_errors: int = 0
    rule_errors: int = 0
    disagreements: list[str] = field(default_factory=list)
    instances: list[Any] = field(default_factory=list)  # (data, python verdict) for ajv
    verdicts: list[bool] = field(default_factory=list)


def compare(value: Any, tally: Tally) -> None:
    """Run one example through every implementation; record any disagreement."""
    from olmix_generated.mixture import ExperimentConfig

    tally.examples += 1
    text = to_yaml(value) + "\n"
    try:
        doc = yamlsource.parse(text.encode("utf-8"), "fuzz.yaml")
        _, problems = config.check(doc)
    except ConfigError as exc:
        if has_pairs(value) or not isinstance(value, dict):
            tally.parse_errors += 1
            return
        tally.disagreements.append(f"loader rejected well-formed YAML: {exc}\n{text}")
        return
    except Exception as exc:  # the point of fuzzing: nothing but ConfigError may escape
        tally.disagreements.append(f"loader raised {type(exc).__name__}: {exc}\n{text}")
        return
    if has_pairs(value):
        tally.disagreements.append(f"loader accepted a duplicate key\n{text}")
        return
    if doc.data != value or json.dumps(doc.data) != json.dumps(value):
        tally.disagreements.append(f"YAML text read back differently: {doc.data!r} != {value!r}")
        return
    by_schema = bool(schemas.validator("mixture").is_valid(value))
    try:
        ExperimentConfig.model_validate(value)
        by_models = True
    except ValidationError:
        by_models = False
    tally.instances.append(value)
    tally.verdicts.append(by_schema)
    if by_schema != by_models:
        tally.disagreements.append(f"python-jsonschema says {by_schema}, generated models {by_models}\n{text}")
    if any(p.line < 1 or not p.message for p in problems):
        tally.disagreements.append(f"a problem without line or message: {problems}\n{text}")
    expected = rules.check(doc) if by_schema else None
    if by_schema and problems != expected:
        tally.disagreements.append(f"schema-valid, but the loader reports {[str(p) for p in problems]}\n{text}")
    if not by_schema and not problems:
        tally.disagreements.append(f"python-jsonschema rejects, the loader accepts\n{text}")
    if not problems:
        tally.valid += 1
    elif by_schema:
        tally.rule_errors += 1


def run(examples: int, tally: Tally, seed: int | None = None) -> None:
    """Compare `examples` configs: the same ones for the same seed, new ones each call without."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],  # disagreements are recorded, never raised: nothing to shrink
    )
    @given(configs())
    def one(value: Any) -> None:
        compare(value, tally)

    (one if seed is None else hypothesis_seed(seed)(one))()


def ajv_verdicts(node: str, instances: list[Any]) -> list[bool]:
    """ajv's verdict on each instance, from one node process."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(instances, f)
    try:
        out = subprocess.run(
            [node, str(REPO / "tests/conformance/run-ajv.mjs"), "instances", str(schemas.path("mixture")), f.name],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(f.name).unlink()
    verdicts: list[bool] = json.loads(out.stdout)
    return verdicts


def ajv_disagreements(node: str, tally: Tally) -> list[str]:
    got = ajv_verdicts(node, tally.instances)
    return [
        f"python-jsonschema says {want}, ajv {have}: {json.dumps(instance)}"
        for instance, want, have in zip(tally.instances, tally.verdicts, got, strict=True)
        if want != have
    ]


def main(argv: list[str]) -> int:
    import random
    import shutil
    import time

    examples = int(argv[0]) if argv else 10_000
    seed = int(argv[1]) if len(argv) > 1 else random.randrange(2**32)  # printed, so a finding can be replayed
    tally = Tally()
    start = time.perf_counter()
    run(examples, tally, seed)
    python_s = time.perf_counter() - start
    node = shutil.which("node")
    ajv_note = "ajv skipped (node not installed)"
    if node:
        start = time.perf_counter()
        tally.disagreements += ajv_disagreements(node, tally)
        ajv_note = f"ajv checked {len(tally.instances)} instances in {time.perf_counter() - start:.1f} s"
    print(
        f"seed {seed}: {tally.examples} examples in {python_s:.1f} s: {tally.valid} valid, "
        f"{tally.examples - tally.valid - tally.parse_errors - tally.rule_errors} rejected by the schema, "
        f"{tally.rule_errors} by the rules, {tally.parse_errors} at parse; {ajv_note}"
    )
    print(f"{len(tally.disagreements)} disagreements")
    for text in tally.disagreements[:20]:
        print("---", text, sep="\n")
    return 1 if tally.disagreements else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
