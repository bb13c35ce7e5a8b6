"""Upstream olmix configs (launch, generation, fit) in this project's terms.

The upstream splits a launch config into sections (`infra`, `training`,
`data`, `eval`, `mix`), a generation config into `data`, `priors`, `swarm`
and `max_tokens`, and keeps fit settings in a config of their own. A launch
or generation config becomes a mixture config; a fit config becomes the
`olmix fit` command that does the same, since olmix fit takes flags.

Files are read as the upstream reads them (PyYAML, YAML 1.1: `1_000` is a
number), with the position of every key. Every key of the input is carried
or named in a note with its position: `_Conversion.unhandled` walks the input
at the end and notes whatever no rule took, so nothing is dropped silently.
Nothing here prints.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from olmix.errors import ConfigError, JsonPath, OlmixError, Problem
from olmix.loading.yamlsource import Document, Positions

Kind = Literal["launch", "generation", "fit"]

# keys only an upstream config has at its top level, by kind
_LAUNCH_KEYS = {"infra", "training", "mix", "group_id"}
_GENERATION_KEYS = {"priors", "max_tokens"}
_FIT_KEYS = {"regression", "proposer", "constraints", "filtering"}
_UPSTREAM_KEYS = _LAUNCH_KEYS | _GENERATION_KEYS | _FIT_KEYS | {"data", "swarm"}

SECTIONS: dict[Kind, str] = {
    "launch": "infra, training, data, eval, mix",
    "generation": "data, priors, swarm, max_tokens",
    "fit": "swarm, priors, regression, proposer, constraints",
}

# upstream key -> mixture key, same meaning and value
_INFRA = (
    "budget",
    "workspace",
    "cluster",
    "priority",
    "preemptible",
    "nodes",
    "gpus",
    "weka",
    "shared_filesystem",
    "wandb_debug",
)
_TRAINING = (
    "proxy_model_id",
    "tokenizer",
    "chinchilla_multiple",
    "seed",
    "device_batch_size",
    "global_batch_size",
    "checkpoint_path",
    "train_type",
    "eval_interval",
    "no_eval",
    "instance_filter",
)
_SWARM = (
    "seed",
    "variants",
    "mix_temperature",
    "source_mix_temperature",
    "topic_mix_temperature",
    "min_strength",
    "max_strength",
    "min_source_strength",
    "max_source_strength",
    "min_topic_strength",
    "max_topic_strength",
    "minimum_weight",
    "minimum_source_weight",
    "minimum_topic_weight",
    "nonzero_weight",
    "manual_prior",
    "sample_multiplier",
)
_NODE_KEYS = ("name", "paths", "topics", "quality", "weight")
_MIX_PROPS = ("weight", "repetition_factor")
_SAME_SHARES = 1e-6  # upstream weights are written to 6 decimals: shares this close are the same mixture
_RUN_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?=[0-9]))*")


class MigrateError(ConfigError):
    """An upstream file that cannot be read or converted at all."""


@dataclass
class Migrated:
    """One upstream file in this project's terms.

    config: the mixture config (launch and generation configs), else None;
    fit_command: the `olmix fit` arguments (fit configs), else None;
    notes: what was not carried, or carried differently, each at its place in the source.
    """

    source: str
    kind: Kind
    config: dict[str, Any] | None = None
    fit_command: list[str] | None = None
    notes: list[Problem] = field(default_factory=list)


def detect(data: Any) -> Kind | None:
    """The kind of upstream config `data` is, or None if it is not one (a mixture config has `sources`)."""
    if not isinstance(data, dict) or "sources" in data:
        return None
    keys = set(data)
    swarm = data.get("swarm")
    if _LAUNCH_KEYS & keys or ("data" in keys and "eval" in keys and not _GENERATION_KEYS & keys):
        return "launch"
    if "data" in keys:
        return "generation"
    if _FIT_KEYS & keys or (isinstance(swarm, dict) and {"ratios", "metrics"} & set(swarm)):
        return "fit"
    return "generation" if _GENERATION_KEYS & keys else None


def upstream_hint(doc: Document) -> Problem | None:
    """One problem saying that `doc` is an upstream config and how to convert it, or None."""
    kind = detect(doc.data)
    if kind is None:
        return None
    return doc.problem(
        (),
        f"this is an upstream olmix {kind} config (sections {SECTIONS[kind]}), not a mixture config; "
        f"convert it with: olmix migrate {doc.file} --out DIR",
    )


# ---------------------------------------------------------------- reading


def _positions(node: Any, path: JsonPath, positions: Positions, file: str) -> None:
    import yaml

    positions.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise MigrateError(
                    [
                        Problem(
                            file,
                            line,
                            key_node.start_mark.column + 1,
                            (*path, key),
                            f"duplicate key (first at line {seen[key]})",
                        )
                    ]
                )
            seen[key] = line
            positions.keys[(*path, key)] = (line, key_node.start_mark.column + 1)
            _positions(value_node, (*path, key), positions, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _positions(item, (*path, i), positions, file)


def _plain(value: Any, path: JsonPath, doc_file: str, positions: Positions) -> Any:
    """`value` as JSON-like data; a date, bytes or a non-finite number is a located error."""
    if isinstance(value, dict):
        return {str(k): _plain(v, (*path, str(k)), doc_file, positions) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, (*path, i), doc_file, positions) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    line, col = positions.of_value(path)
    raise MigrateError([Problem(doc_file, line, col, path, f"cannot carry {type(value).__name__} value {value!r}")])


def read(raw: bytes, file: str) -> Document:
    """An upstream YAML file as the upstream reads it (YAML 1.1), with the position of every key and value."""
    import yaml

    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        problem = getattr(exc, "problem", None) or str(exc)
        raise MigrateError([Problem(file, line, col, (), f"not valid YAML: {problem}")]) from None
    finally:
        loader.dispose()
    positions = Positions()
    if node is not None:
        _positions(node, (), positions, file)
    return Document(file, _plain(data, (), file, positions), positions)


# ---------------------------------------------------------------- converting


def _leaves(source: Mapping[str, Any]) -> Iterator[tuple[str, ...]]:
    """Names along the ancestry of every leaf under an upstream source."""
    name = str(source.get("name"))
    if isinstance(source.get("topics"), list):
        for topic in source["topics"]:
            if isinstance(topic, dict) and isinstance(topic.get("quality"), list):
                for bucket in topic["quality"]:
                    yield (name, str(topic.get("name")), str(bucket.get("name")))
            elif isinstance(topic, dict):
                yield (name, str(topic.get("name")))
    elif isinstance(source.get("quality"), list):
        for bucket in source["quality"]:
            yield (name, str(bucket.get("name")))
    else:
        yield (name,)


class _Conversion:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.handled: set[JsonPath] = set()
        self.notes: list[Problem] = []
        self.out: dict[str, Any] = {}

    def note(self, path: JsonPath, message: str) -> None:
        self.handled.add(path)
        self.notes.append(self.doc.problem(path, message, at_key=bool(path)))

    def get(self, path: JsonPath) -> Any:
        value: Any = self.data
        for part in path:
            in_dict = isinstance(value, dict) and isinstance(part, str) and part in value
            if not in_dict and not (isinstance(value, list) and isinstance(part, int) and part < len(value)):
                return None
            value = value[part]
        return value

    def carry(self, path: JsonPath, key: str) -> None:
        """Copy the value at `path` to the output's `key` (null: left unset, as upstream's null means)."""
        self.handled.add(path)
        value = self.get(path)
        if value is not None:
            self.out[key] = value

    def section(self, name: str) -> dict[str, Any]:
        """The mapping under a top-level key (its keys are noted at the end unless a rule takes them)."""
        value = self.data.get(name)
        if value is None:
            self.handled.add((name,))  # absent or null: nothing to carry
            return {}
        if not isinstance(value, dict):
            self.note((name,), f"'{name}' is not a mapping; not carried")
            return {}
        return value

    def unhandled(self) -> None:
        """A note for every key of the input that no rule carried or noted."""

        def covered(path: JsonPath) -> bool:
            return any(path[:i] in self.handled for i in range(1, len(path) + 1))

        # a mapping some rule read into is walked key by key; any other key is noted whole
        read_into = {p[:i] for p in self.handled for i in range(1, len(p))}

        def walk(value: dict[str, Any], path: JsonPath) -> None:
            for key, item in value.items():
                sub = (*path, key)
                if covered(sub):
                    continue
                if isinstance(item, dict) and sub in read_into:
                    walk(item, sub)
                else:
                    self.note(sub, "not carried: olmix has no setting for it")

        if isinstance(self.data, dict):
            walk(self.data, ())

    # -- shared parts

    def name(self, fallback: str) -> None:
        self.handled.add(("name",))
        raw = self.data.get("name")
        name = raw if isinstance(raw, str) and raw else None
        if name is not None and _RUN_NAME.fullmatch(name) and len(name) <= 128:
            self.out["name"] = name
            return
        base = name or fallback
        fixed = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-_")[:128] or "migrated"
        self.out["name"] = fixed
        if "name" in self.data:
            self.note(("name",), f"{raw!r} is not a run name here; written as '{fixed}'")
        else:
            self.notes.append(self.doc.problem((), f"no name; named '{fixed}' after the file"))

    def sources(self, *, keep_weights: bool) -> list[dict[str, Any]]:
        data = self.section("data")
        self.handled.add(("data", "dtype"))
        if data.get("dtype") is not None:
            self.out["dtype"] = data["dtype"]
        raw = data.get("sources")
        self.handled.add(("data", "sources"))
        if not isinstance(raw, list):
            self.note(("data",), "no data.sources list; the config has no sources")
            return []
        return [self._node(s, ("data", "sources", i), keep_weights) for i, s in enumerate(raw)]

    def _node(self, node: Any, path: JsonPath, keep_weights: bool) -> Any:
        if not isinstance(node, dict):
            return node  # the schema says what is wrong with it
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("topics", "quality") and isinstance(value, list):
                out[key] = [self._node(v, (*path, key, i), keep_weights) for i, v in enumerate(value)]
            elif key == "weight" and not keep_weights:
                if value is not None:
                    self.note(
                        (*path, key), "ignored by the upstream's launch, which takes the mix's weights; not carried"
                    )
            elif key == "name" and isinstance(value, str) and ":" in value:
                out[key] = value.replace(":", "/")
                self.note(
                    (*path, key),
                    f"'{value}' written as '{out[key]}': ':' separates the parts of a leaf name here",
                )
            elif key in _NODE_KEYS:
                if value is not None:
                    out[key] = value
            else:
                self.note((*path, key), "not carried: a source, topic or quality bucket has no such key")
        return out

    # -- launch

    def launch(self) -> None:
        infra = self.section("infra")
        for key in _INFRA:
            if key in infra:
                self.carry(("infra", key), key)
        training = self.section("training")
        for key in _TRAINING:
            if key in training:
                self.carry(("training", key), key)
        self.eval_section()
        if "group_id" in self.data:
            self.note(("group_id",), "not carried: olmix names a launch's group itself (printed by `olmix launch run`)")
        has_mix = isinstance(self.data.get("mix"), dict)
        sources = self.sources(keep_weights=not has_mix)
        if has_mix:
            self.mix(sources)
        elif "mix" in self.data:
            self.section("mix")
        self.out["sources"] = sources

    def eval_section(self) -> None:
        evals = self.section("eval")
        if not evals:
            return
        self.handled.add(("eval", "type"))
        tasks = evals.get("tasks")
        self.handled.add(("eval", "tasks"))
        kind = evals.get("type", "inloop")
        if kind == "inloop" and isinstance(tasks, dict) and all(isinstance(f, dict) for f in tasks.values()):
            from olmix.training import tasks as catalogue

            ids = [str(t) for family in tasks.values() for t in family]
            unknown = {ids[i]: message for i, message in catalogue.problems(ids)}
            carried = [t for t in ids if t not in unknown]
            if carried:
                self.out["eval_tasks"] = carried
            self.note(
                ("eval", "tasks"),
                f"{len(carried)} task ids carried as eval_tasks; their families ({', '.join(map(str, tasks))}) and "
                "W&B metric names are not carried (olmix records each run's metrics under its own names)",
            )
            for message in unknown.values():
                self.note(("eval", "tasks"), f"not carried: {message} (ai2-olmo-eval has no task of that name)")
        else:
            self.note(("eval",), f"eval of type {kind!r} not carried: olmix runs in-loop evaluation from eval_tasks")

    def mix(self, sources: list[dict[str, Any]]) -> None:
        """Weights and repetition caps from the mix, the upstream's way.

        The upstream finds a leaf's entry by its name joined with ':' (the mix nested or flat), multiplies the
        weights along its path (a node without one: 1) and leaves out a leaf the mix does not name.
        """
        mix: dict[str, Any] = self.data["mix"]
        self.handled.add(("mix",))
        weights: dict[str, float] = {}  # joined name -> weight, repetition_factor, place in the mix
        reps: dict[str, float] = {}
        where: dict[str, JsonPath] = {}

        def number(value: Any) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool)

        def visit(name: str, node: Any, path: JsonPath) -> None:
            where[name] = path
            if not isinstance(node, dict):
                if number(node):
                    weights[name] = float(node)
                else:
                    self.note(path, "not a weight or a mapping; not carried")
                return
            for key, value in node.items():
                if key in _MIX_PROPS and number(value):
                    (weights if key == "weight" else reps)[name] = float(value)
                elif key in _MIX_PROPS and value is not None:
                    self.note((*path, key), f"{key} is not a number; not carried")
                elif key not in _MIX_PROPS:
                    visit(f"{name}:{key}", value, (*path, key))

        for key, value in mix.items():
            visit(str(key), value, ("mix", key))
        listed = self.get(("data", "sources"))
        leaves = [
            leaf for s in (listed if isinstance(listed, list) else []) if isinstance(s, dict) for leaf in _leaves(s)
        ]
        nodes = {leaf[:i] for leaf in leaves for i in range(1, len(leaf) + 1)}
        known = {":".join(n) for n in nodes}
        for name, path in where.items():
            if name not in known:
                self.note(
                    path, f"the mix names '{name}', which is no source, topic or bucket of data.sources; not carried"
                )

        def share(leaf: tuple[str, ...]) -> float:
            if ":".join(leaf) not in where:
                return 0.0
            return math.prod(weights.get(":".join(leaf[:i]), 1.0) for i in range(1, len(leaf) + 1))

        upstream = {leaf: share(leaf) for leaf in leaves}
        total = sum(upstream.values())
        if total <= 0:
            self.note(("mix",), "the mix gives every leaf a weight of 0; no weights carried")
            return
        for leaf in leaves:
            if ":".join(leaf) not in where:
                self.notes.append(
                    self.doc.problem(
                        ("mix",), f"leaf '{':'.join(leaf)}' is not in the mix: weight 0, as upstream", at_key=True
                    )
                )
        # the mix's own numbers when they give every leaf its upstream share, else each node's share of the whole
        chosen = {n: (weights.get(":".join(n), 1.0) if ":".join(n) in where else 0.0) for n in nodes}
        if not _same(chosen, upstream, total):
            chosen = {n: sum(v for leaf, v in upstream.items() if leaf[: len(n)] == n) for n in nodes}
            self.notes.append(
                self.doc.problem(
                    ("mix",),
                    "weights written as each node's share of the whole mixture, so that every leaf keeps "
                    "the upstream's share (the mix's own numbers normalise differently here)",
                    at_key=True,
                )
            )
        for out, given in zip(sources, listed if isinstance(listed, list) else [], strict=False):
            self._weigh(out, given, (), chosen, reps)

    def _weigh(
        self,
        out: Any,
        given: Any,
        parent: tuple[str, ...],
        weights: dict[tuple[str, ...], float],
        reps: dict[str, float],
    ) -> None:
        """Set the weight and repetition cap of output node `out` from the upstream node `given` it was made from."""
        if not isinstance(out, dict) or not isinstance(given, dict):
            return
        names = (*parent, str(given.get("name")))
        out["weight"] = weights.get(names, 0.0)
        # the nearest ancestor's repetition_factor applies, as upstream: set where the mix sets it
        rep = reps.get(":".join(names))
        if rep is not None and rep >= 1:
            out["max_repetition_factor"] = rep
        elif rep is not None:
            self.notes.append(
                self.doc.problem(("mix",), f"repetition_factor {rep} of '{':'.join(names)}' is below 1; not carried")
            )
        for key in ("topics", "quality"):
            children = out.get(key)
            if not isinstance(children, list) or not isinstance(given.get(key), list):
                continue
            for child, child_given in zip(children, given[key], strict=False):
                self._weigh(child, child_given, names, weights, reps)
            if not any(isinstance(c, dict) and c.get("weight") for c in children):
                for child in children:  # under a node of weight 0: no split to keep, and all-zero siblings are refused
                    if isinstance(child, dict):
                        child.pop("weight", None)

    # -- generation

    def generation(self) -> None:
        keep = self.sources(keep_weights=True)
        swarm = self.section("swarm")
        for key in _SWARM:
            if key in swarm:
                self.carry(("swarm", key), key)
        if "manual_topic_prior" in swarm:
            self.topic_prior(swarm["manual_topic_prior"])
        if "existing_mix_file" in swarm:
            self.note(
                ("swarm", "existing_mix_file"),
                "not carried: olmix does not reuse mix files; set `weight` on the nodes to keep (a set weight is "
                "frozen)",
            )
        if "enable_bound" in swarm:
            self.handled.add(("swarm", "enable_bound"))
            if swarm["enable_bound"] is False:
                self.note(
                    ("swarm", "enable_bound"), "false not carried: olmix always keeps sampled leaves within their caps"
                )
        rep = swarm.get("repetition_factor")
        self.handled.add(("swarm", "repetition_factor"))
        if isinstance(rep, int | float) and not isinstance(rep, bool) and rep != 1:
            for source in keep:
                if isinstance(source, dict):
                    source["max_repetition_factor"] = rep
            self.note(("swarm", "repetition_factor"), f"carried as max_repetition_factor {rep} on every source")
        if "priors" in self.data:
            self.note(
                ("priors",),
                "not carried: olmix takes each leaf's prior from its files' token counts; to keep these values, "
                "set manual_prior / manual_topic_prior",
            )
        if "max_tokens" in self.data:
            self.note(
                ("max_tokens",),
                f"not carried: olmix's run budget is 20 × parameters(proxy_model_id) × chinchilla_multiple; set both "
                f"so they give {self.data['max_tokens']!r} tokens",
            )
        self.out["sources"] = keep

    def topic_prior(self, prior: Any) -> None:
        path = ("swarm", "manual_topic_prior")
        self.handled.add(path)
        if not isinstance(prior, dict):
            self.note(path, "not a mapping; not carried")
            return
        out: dict[str, Any] = {}
        for key, value in prior.items():
            topic = str(key).split(":")[-1]
            if topic in out and out[topic] != value:
                self.note(
                    (*path, key),
                    f"topic '{topic}' has two priors; olmix keys a topic prior by the topic's name; not carried",
                )
                continue
            out[topic] = value
            if topic != key:
                self.handled.add((*path, key))
        if out:
            self.out["manual_topic_prior"] = out

    # -- fit

    def fit(self) -> list[str]:
        args = ["olmix", "fit"]
        swarm = self.section("swarm")
        for key in ("ratios", "metrics"):
            if key in swarm:
                self.handled.add(("swarm", key))
                args += [f"--{key}", str(swarm[key])]
        regression = self.section("regression")
        kind = regression.get("type", "log_linear")
        self.handled.add(("regression", "type"))
        named = {"log_linear": "log-linear", "lightgbm": "trees"}
        if kind in named:
            args += ["--regression", named[kind]]
        elif "type" in regression:
            self.note(("regression", "type"), f"regression {kind!r} not carried: olmix fits log-linear or trees")
        for key in ("seed", "n_test", "train_split"):
            if key in regression:
                self.note(("regression", key), "not carried: olmix cross-validates on 5 folds of every run")
        if regression.get("aggregate_task_families"):
            self.note(("regression", "aggregate_task_families"), "not carried: olmix fits each metric on its own")
        elif "aggregate_task_families" in regression:
            self.handled.add(("regression", "aggregate_task_families"))
        proposer = self.section("proposer")
        self.handled.add(("proposer", "kl_reg"))
        if proposer.get("kl_reg") is not None:
            args += ["--kl-reg", repr(float(proposer["kl_reg"]))]
        # settings whose value is what olmix does anyway are carried; any other value is noted
        for key, same in (("type", "exact"), ("temperature", None), ("fit_only", False), ("make_worst_mix", False)):
            if key not in proposer:
                continue
            if proposer[key] in (same, None):
                self.handled.add(("proposer", key))
            else:
                self.note(
                    ("proposer", key), f"{proposer[key]!r} not carried: olmix proposes the exact optimum of the fit"
                )
        constraints = self.section("constraints")
        if constraints.get("enabled"):
            self.handled.add(("constraints", "enabled"))
            if "repetition_factor" in constraints:
                self.handled.add(("constraints", "repetition_factor"))
                args += ["--repetition-factor", repr(float(constraints["repetition_factor"]))]
            if constraints.get("target_tokens") is not None:
                self.note(
                    ("constraints", "target_tokens"),
                    "not carried: olmix fit reads the target's tokens from --target-config (its target_tokens)",
                )
        elif constraints:
            self.note(("constraints",), "disabled constraints not carried: olmix fit caps whenever it knows the target")
        filtering = self.section("filtering")
        weights = filtering.get("obj_weights") or {}
        self.handled.add(("filtering", "obj_weights"))
        if weights and regression.get("aggregate_task_families"):
            self.note(("filtering", "obj_weights"), "not carried: these weigh task families, and olmix weighs metrics")
        else:
            for metric, weight in weights.items():
                args += ["--objective", f"{metric}={_fraction(weight)}"]
        if filtering.get("drop_metrics"):
            self.note(
                ("filtering", "drop_metrics"), "not carried: olmix's objective is the metrics named by --objective"
            )
        else:
            self.handled.add(("filtering", "drop_metrics"))
        if "priors" in self.data:
            self.note(("priors",), "not carried: olmix fit takes token counts and caps from --target-config")
        if "eval" in self.data:
            self.note(("eval",), "not carried: olmix fit reads every metric column of --metrics")
        return [*args, "--out", "fit/"]


def _fraction(value: Any) -> str:
    """An objective weight as upstream writes it ("7/52.0" is allowed there) in plain decimal."""
    if isinstance(value, str) and value.count("/") == 1:
        top, bottom = (float(part) for part in value.split("/"))
        return repr(top / bottom)
    return repr(float(value))


def _same(weights: dict[tuple[str, ...], float], upstream: dict[tuple[str, ...], float], total: float) -> bool:
    """Whether sibling-normalised `weights` give every leaf the upstream's share of `total`."""
    for leaf, value in upstream.items():
        share = 1.0
        for i in range(1, len(leaf) + 1):
            siblings = [w for n, w in weights.items() if len(n) == i and n[: i - 1] == leaf[: i - 1]]
            if sum(siblings) <= 0:
                if share > 0:
                    return False  # a weighted node whose children all weigh 0: only shares can say that
                share = 0.0
                break
            share *= weights[leaf[:i]] / sum(siblings)
        if abs(share - value / total) > _SAME_SHARES:
            return False
    return True


def convert(doc: Document, fallback_name: str) -> Migrated:
    """The upstream config `doc` in this project's terms; MigrateError if it is no upstream config."""
    kind = detect(doc.data)
    if kind is None:
        why = (
            "a mixture config already (it has sources)"
            if isinstance(doc.data, dict) and "sources" in doc.data
            else (f"none of the upstream's sections ({', '.join(sorted(_UPSTREAM_KEYS))})")
        )
        raise MigrateError([doc.problem((), f"not an upstream olmix config: {why}")])
    conv = _Conversion(doc)
    result = Migrated(doc.file, kind)
    if kind == "fit":
        result.fit_command = conv.fit()
    else:
        conv.name(fallback_name)
        if "description" in doc.data:
            conv.carry(("description",), "description")
        conv.launch() if kind == "launch" else conv.generation()
        result.config = _ordered(conv.out)
    conv.unhandled()
    result.notes = sorted(set(conv.notes))
    return result


_NODE_ORDER = ("name", "weight", "max_repetition_factor", "paths", "topics", "quality")


def _node_order(node: Any) -> Any:
    """A source, topic or bucket with its name, weight and cap first, then what it holds."""
    if not isinstance(node, dict):
        return node
    rank = {key: i for i, key in enumerate(_NODE_ORDER)}
    ordered = {k: node[k] for k in sorted(node, key=lambda k: rank.get(k, len(rank)))}
    for key in ("topics", "quality"):
        if isinstance(ordered.get(key), list):
            ordered[key] = [_node_order(child) for child in ordered[key]]
    return ordered


def _ordered(out: dict[str, Any]) -> dict[str, Any]:
    """Keys in the schema's order, as a hand-written config has them."""
    from olmix import schemas

    order = list(schemas.load("mixture")["properties"])
    result = {k: out[k] for k in sorted(out, key=order.index)}
    if isinstance(result.get("sources"), list):
        result["sources"] = [_node_order(source) for source in result["sources"]]
    return result


def migrate_file(path: Path) -> Migrated:
    from olmix.loading import inputs

    try:
        raw = inputs.read_limited(path, inputs.max_config_bytes(), what="config file")
    except inputs.InputError as exc:
        raise MigrateError([Problem(str(path), 0, 0, (), str(exc).removeprefix(f"{path}: "))]) from None
    return convert(read(raw, str(path)), path.stem)


def render(result: Migrated, modeline: str) -> bytes:
    """The migrated config's file: modeline, a line naming its source, then the config."""
    from olmix import yamlwrite

    if result.config is None:
        raise OlmixError(f"{result.source}: a {result.kind} config has no mixture to write")
    header = [
        modeline,
        f"# Converted by `olmix migrate` from the upstream olmix {result.kind} config {Path(result.source).name}",
    ]
    if result.notes:
        count = f"{len(result.notes)} note" + ("s" if len(result.notes) > 1 else "")
        header.append(f"# ({count} on what was not carried or carried differently: printed by olmix migrate)")
    return ("\n".join(header) + "\n" + yamlwrite.dump(result.config)).encode("utf-8")


@dataclass
class Outcome:
    """What `olmix migrate` made of its sources: every result, and the files to write for the configs."""

    results: list[Migrated]
    files: list[tuple[Path, bytes]]
    problems: list[Problem]  # files that could not be converted, or whose conversion does not validate


def migrate(sources: list[str], out_dir: Path) -> Outcome:
    """Convert every upstream config named (folders: their YAML files, recursively) into files under `out_dir`.

    A file from a folder keeps its path below that folder; a file named directly keeps its name.
    Each written config is read back and validated; nothing is written here.
    """
    from olmix import schemas
    from olmix.loading import config, yamlsource
    from olmix.loading.configfiles import config_files

    out_dir = out_dir.resolve()
    results: list[Migrated] = []
    files: list[tuple[Path, bytes]] = []
    problems: list[Problem] = []
    targets: dict[Path, str] = {}
    for raw in sources:
        base = Path(raw)
        for path in config_files([raw], recursive=True):
            try:
                result = migrate_file(path)
            except ConfigError as exc:
                problems += exc.problems
                continue
            results.append(result)
            if result.config is None:
                continue
            rel = path.relative_to(base) if base.is_dir() else Path(path.name)
            target = out_dir / rel.with_suffix(".yaml")
            if target in targets:
                problems.append(Problem(str(path), 0, 0, (), f"{target} is also the output of {targets[target]}"))
                continue
            targets[target] = str(path)
            text = render(result, schemas.modeline("mixture", target.parent))
            written = yamlsource.parse(text, str(target))
            if written.data != result.config:  # the writer must round-trip; never write a file that reads differently
                raise OlmixError(
                    f"{target}: the written YAML does not read back as the migrated config (a bug in olmix)"
                )
            # a value the schema refuses came from the upstream file: say which, since the output is not written
            problems += [replace(p, message=f"{p.message} (migrated from {path})") for p in config.check(written)[1]]
            files.append((target, text))
    return Outcome(results, files, problems)
