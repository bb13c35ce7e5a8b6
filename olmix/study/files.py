"""Where a study's experiment files go, and their bytes, each checked before anything is written.

Paths in a file's header are relative, so its bytes depend only on where the
study and the output folder lie in the project, never on the working
directory; `olmix generate --check` relies on that.
"""

from __future__ import annotations

import os
from pathlib import Path

from olmix.errors import ConfigError, OlmixError, Problem
from olmix.loading import yamlsource
from olmix.loading.yamlsource import Document
from olmix.study.header import render
from olmix.study.study import expand


def project_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding schema/mixture.schema.json."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "schema" / "mixture.schema.json").is_file():
            return folder
    return None


def _posix_rel(target: Path, base: Path) -> str:
    return Path(os.path.relpath(target, base)).as_posix()


def files(doc: Document, out_dir: Path) -> list[tuple[Path, bytes]]:
    """Each experiment file of a checked study under `out_dir`, with its bytes; every one validated.

    Paths in the files are relative, so the bytes depend only on where the study
    and the output folder lie in the project (the nearest folder above the
    output holding schema/mixture.schema.json), not on the working directory.
    """
    from olmix import schemas
    from olmix.loading import config

    out_dir = out_dir.resolve()
    study_path = Path(doc.file).resolve()
    root = project_root(out_dir)
    result = []
    problems: list[Problem] = []
    for exp in expand(doc.data):
        path = out_dir / exp.relpath
        if root is not None:
            schema = root / "schema" / "mixture.schema.json"
            config_ref, launch_from = _posix_rel(path, root), "the project root"
            inside = study_path.is_relative_to(root)
            study_ref = _posix_rel(study_path, root) if inside else _posix_rel(study_path, path.parent)
        else:
            schema = schemas.path("mixture")
            config_ref, launch_from = exp.relpath, "the output folder"
            study_ref = _posix_rel(study_path, path.parent)
        text = render(
            exp,
            doc.data,
            schema_ref=_posix_rel(schema, path.parent),
            study_ref=study_ref,
            config_ref=config_ref,
            launch_from=launch_from,
        )
        rendered = yamlsource.parse(text.encode("utf-8"), str(path))
        if rendered.data != exp.config:  # the writer must round-trip; never ship a file that reads differently
            raise OlmixError(f"{path}: the written YAML does not read back as the experiment (a bug in olmix)")
        problems += config.check(rendered, "mixture")[1]
        result.append((path, text.encode("utf-8")))
    if problems:
        raise ConfigError(problems)
    return result


def stale(out_dir: Path, planned: list[Path]) -> list[Path]:
    """Experiment files under `out_dir` that the study no longer produces."""
    keep = {p.resolve() for p in planned}
    found = [*out_dir.glob("quality_top*pct.yaml"), *out_dir.glob("*/quality_top*pct.yaml")]
    return sorted(p for p in found if p.resolve() not in keep)
