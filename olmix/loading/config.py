"""Load a config file: parse, validate against its schema, check the rules beyond it.

The generated pydantic models decide validity: they are compiled from the
schema and proven to agree with python-jsonschema and ajv on the conformance
suite and under differential fuzzing, and they are ~30x faster. Only a file
they reject goes through python-jsonschema, whose errors become the messages.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ValidationError

from olmix.errors import ConfigError, Problem
from olmix.loading import yamlsource

if TYPE_CHECKING:
    from olmix_generated.mixture import ExperimentConfig

# schema name -> (generated model, rules beyond the schema), imported when first needed
KINDS: dict[str, tuple[str, str]] = {
    "mixture": ("olmix_generated.mixture:ExperimentConfig", "olmix.loading.rules:check"),
    "study": ("olmix_generated.study:QualityThresholdStudy", "olmix.study.rules:check"),
}
# Kinds whose rules also judge the well-formed parts of a file the schema rejected, so that every problem
# (a duplicate name beside an unknown key) is reported at once; a study's rules need a valid study.
RULES_ON_INVALID = {"mixture"}


def _load(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def model_class(schema: str) -> type[BaseModel]:
    cls: type[BaseModel] = _load(KINDS[schema][0])
    return cls


def _read(path: Path) -> bytes:
    from olmix.loading import inputs

    try:
        return inputs.read_limited(path, inputs.max_config_bytes(), what="config file")
    except inputs.InputError as exc:
        message = str(exc).removeprefix(f"{path}: ")
    raise ConfigError([Problem(str(path), 0, 0, (), message)])


def _rules(schema: str) -> Callable[[yamlsource.Document], list[Problem]]:
    check: Callable[[yamlsource.Document], list[Problem]] = _load(KINDS[schema][1])
    return check


def _model_problems(doc: yamlsource.Document, exc: ValidationError) -> list[Problem]:
    # Reached only if the models and python-jsonschema disagree, which the
    # conformance suite and fuzzing exist to prevent; still say something useful.
    return [doc.problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]


def check(doc: yamlsource.Document, schema: str = "mixture") -> tuple[Any, list[Problem]]:
    """The model instance (None if invalid) and every problem of a parsed document."""
    if schema not in KINDS:
        return None, [doc.problem((), f"unknown schema '{schema}' (known: {', '.join(KINDS)})")]
    try:
        instance = model_class(schema).model_validate(doc.data)
    except ValidationError as exc:
        if schema == "mixture":
            from olmix.migrate import upstream_hint

            if (hint := upstream_hint(doc)) is not None:  # one line naming `olmix migrate`, not one per section key
                return None, [hint]
        from olmix.loading import schemacheck  # python-jsonschema is slow to import; only an invalid file needs it

        problems = schemacheck.check(doc, schema) or _model_problems(doc, exc)
        if schema in RULES_ON_INVALID:
            # a rule's problem at or under a value the schema already refused would say the same thing again
            refused = {p.path for p in problems if p.path}
            problems += [
                p for p in _rules(schema)(doc) if not any(p.path[:n] in refused for n in range(1, len(p.path) + 1))
            ]
        return None, problems
    problems = _rules(schema)(doc)
    return (None if problems else instance), problems


def load_document(
    path: str | Path, schema: str = "mixture", overrides: Iterable[str] = ()
) -> tuple[yamlsource.Document, Any]:
    """Parse a file, apply `--set` overrides, check it against `schema`: the document and its model."""
    path = Path(path)
    doc = yamlsource.parse(_read(path), str(path))
    if overrides:
        from olmix.loading import overrides as override

        override.apply(doc, overrides)
    instance, problems = check(doc, schema)
    if problems:
        raise ConfigError(problems)
    return doc, instance


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """The validated ExperimentConfig at `path`; ConfigError lists every problem found."""
    return cast("ExperimentConfig", load_document(path, "mixture", overrides)[1])
