"""The real yaml-language-server, driven over LSP, helps a researcher write a config.

Files are real files on disk whose modeline names the repository's schema,
as a researcher's would. Expected texts come from the schema itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.lspclient import LspClient
from tests.support.nodejs import node, package

pytestmark = pytest.mark.slow  # starts a Node language server

SCHEMA_PATH = REPO / "schema" / "mixture.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
MARK = "# <-"  # marks the line a diagnostic is expected on


@pytest.fixture(scope="module")
def server() -> Iterator[LspClient]:
    command = [node(), str(package("yaml-language-server") / "bin" / "yaml-language-server"), "--stdio"]
    client = LspClient(command, REPO)
    try:
        client.initialize()
        yield client
    finally:
        client.close()


def _file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(f"# yaml-language-server: $schema={SCHEMA_PATH}\n{body}", encoding="utf-8")
    return path


def _labels(items: list[dict[str, Any]]) -> set[str]:
    return {item["label"] for item in items}


def _cursor(path: Path) -> tuple[int, int]:
    """0-based position of the line holding only spaces and `|`; the `|` is removed from the file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    row = next(i for i, line in enumerate(lines) if line.strip() == "|")
    col = lines[row].index("|")
    lines[row] = " " * col
    path.write_text("\n".join(lines), encoding="utf-8")
    return row, col


def test_shipped_configs_have_no_diagnostics(server: LspClient) -> None:
    files = sorted(p for p in (REPO / "config").rglob("*") if p.suffix in (".yaml", ".yml"))
    assert files
    for path in files:
        assert server.wait_diagnostics(server.open(path)) == [], path


COMPLETIONS = [
    pytest.param(
        "name: x\nsources:\n  - name: a\n    |\n",
        {"paths", "topics", "quality", "weight", "max_repetition_factor"},
        set(),
        id="new-source",
    ),
    pytest.param(
        "name: x\nsources:\n  - name: a\n    topics:\n      - name: t\n        |\n",
        {"paths", "quality", "max_topic_ratio"},
        {"topics"},
        id="new-topic",
    ),
    pytest.param(
        "name: x\nsources:\n  - name: a\n    quality:\n      - name: high\n        |\n",
        {"paths", "max_repetition_factor", "weight"},
        {"topics", "quality", "max_topic_ratio"},
        id="new-quality-bucket",
    ),
    pytest.param(
        "name: x\n|\nsources:\n  - name: a\n    paths: [p]\n",
        {"chinchilla_multiple", "proxy_model_id", "priority", "dtype", "instance_filter", "nodes"},
        {"name", "sources", "paths"},
        id="top-level",
    ),
    pytest.param(
        "name: x\nsources:\n  - name: a\n    paths: [p]\n    |\n",
        {"weight", "max_repetition_factor"},
        {"topics", "quality"},
        id="source-after-paths-narrows",
    ),
]


@pytest.mark.parametrize(("body", "offered", "not_offered"), COMPLETIONS)
def test_completion(server: LspClient, tmp_path: Path, body: str, offered: set[str], not_offered: set[str]) -> None:
    path = _file(tmp_path, body)
    row, col = _cursor(path)
    labels = _labels(server.completion(server.open(path), row, col))
    assert offered <= labels
    assert not (not_offered & labels)


@pytest.mark.parametrize(
    ("line", "key", "description"),
    [
        ("chinchilla_multiple: 0.5", "chinchilla_multiple", SCHEMA["properties"]["chinchilla_multiple"]["description"]),
        ("seed: 7", "seed", SCHEMA["properties"]["seed"]["description"]),
        (
            "    max_repetition_factor: 2",
            "max_repetition_factor",
            SCHEMA["$defs"]["MaxRepetitionFactor"]["description"],
        ),
    ],
)
def test_hover_shows_the_schema_description(
    server: LspClient, tmp_path: Path, line: str, key: str, description: str
) -> None:
    body = "name: x\nchinchilla_multiple: 0.5\nseed: 7\nsources:\n  - name: a\n    paths: [p]\n"
    body += "  - name: b\n    paths: [q]\n    max_repetition_factor: 2\n"
    path = _file(tmp_path, body)
    lines = path.read_text(encoding="utf-8").split("\n")
    row = lines.index(line)
    text = server.hover(server.open(path), row, lines[row].index(key) + 1)
    assert description in text


EXACTLY_ONE_SOURCE = "exactly one of paths, topics or quality"
EXACTLY_ONE_TOPIC = "exactly one of paths or quality"

DIAGNOSTICS = [
    pytest.param(
        "name: x\nsources:\n  - name: a\n    paths: [p]\n    quality: # <-\n      - {name: h, paths: [q]}\n",
        EXACTLY_ONE_SOURCE,
        id="source-both",
    ),
    pytest.param("name: x\nsources:\n  - name: a # <-\n    weight: 1\n", EXACTLY_ONE_SOURCE, id="source-none"),
    pytest.param(
        "name: x\nsources:\n  - name: a\n    paths: [p]\n    max_repetiton_factor: 2 # <-\n",
        "max_repetition_factor",
        id="source-misspelled-key",
    ),
    pytest.param(
        "name: x\nsources:\n  - name: a\n    topics:\n      - name: t\n        paths: [p]\n"
        "        quality: # <-\n          - {name: h, paths: [q]}\n",
        EXACTLY_ONE_TOPIC,
        id="topic-both",
    ),
    pytest.param(
        "name: x\nsources:\n  - name: a\n    topics:\n      - name: t # <-\n        weight: 1\n",
        EXACTLY_ONE_TOPIC,
        id="topic-none",
    ),
    pytest.param(
        "name: x\nsources:\n  - name: a\n    topics:\n      - name: t\n        paths: [p]\n"
        "        max_topic_raito: 0.5 # <-\n",
        "max_topic_ratio",
        id="topic-misspelled-key",
    ),
    pytest.param(
        "name: x\nchinchila_multiple: 0.5 # <-\nsources:\n  - name: a\n    paths: [p]\n",
        "chinchila_multiple",
        id="top-level-misspelled-key",
    ),
    pytest.param(
        "name: x\nsources:\n  - name: a\n    quality:\n      - name: h\n        paths: [p]\n        wieght: 1 # <-\n",
        "wieght",
        id="quality-bucket-misspelled-key",
    ),
    pytest.param(
        "sources:\n  - name: a\n    paths: [p]\nname: ../../x # <-\n",
        "A run name is 1 to 128 characters",
        id="experiment-name-outside-the-runs-folder",
    ),
]


@pytest.mark.parametrize(("body", "says"), DIAGNOSTICS)
def test_diagnostic_on_the_right_line(server: LspClient, tmp_path: Path, body: str, says: str) -> None:
    path = _file(tmp_path, body)
    lines = path.read_text(encoding="utf-8").split("\n")
    expected_row = next(i for i, line in enumerate(lines) if line.endswith(MARK))
    diagnostics = server.wait_diagnostics(server.open(path))
    assert [(d["range"]["start"]["line"], says in d["message"]) for d in diagnostics] == [(expected_row, True)], (
        diagnostics
    )


def test_modeline_on_every_config_resolves_to_the_schema() -> None:
    files = sorted(p for p in (REPO / "config").rglob("*") if p.suffix in (".yaml", ".yml"))
    assert files
    for path in files:
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match, f"{path}: first line is not a yaml-language-server modeline"
        expected = REPO / "schema" / "study.schema.json" if "studies" in path.parts else SCHEMA_PATH
        assert (path.parent / match.group(1)).resolve() == expected, path


def test_vscode_settings_map_configs_to_the_schema() -> None:
    settings = json.loads((REPO / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    schemas = settings["yaml.schemas"]
    assert any(
        (REPO / key).resolve() == SCHEMA_PATH and "config/examples/**/*.yaml" in value for key, value in schemas.items()
    )
    study = REPO / "schema" / "study.schema.json"
    assert any(
        (REPO / key).resolve() == study and "config/studies/**/*.yaml" in value for key, value in schemas.items()
    )
