"""The config classes under the names researchers' code uses (olmix.aliases) are the loader's own models."""

from __future__ import annotations

from pathlib import Path

from olmix.aliases import (
    ExperimentConfig,
    QualityConfig,
    SourceConfig,
    SourceWithPaths,
    SourceWithQuality,
    SourceWithTopics,
    TopicConfig,
    TopicWithQuality,
)
from olmix.loading.config import load_config

CONFIG = """\
name: shapes
sources:
  - name: wiki
    paths: ["s3://b/wiki/*.npy"]
  - name: web
    topics:
      - name: science
        quality:
          - name: top
            paths: ["s3://b/web/science/top/*.npy"]
  - name: code
    quality:
      - name: high
        paths: ["s3://b/code/high/*.npy"]
"""


def test_every_shape_a_config_loads_is_an_instance_of_its_alias(tmp_path: Path) -> None:
    path = tmp_path / "shapes.yaml"
    path.write_text(CONFIG)
    config = load_config(path)
    assert isinstance(config, ExperimentConfig)
    wiki, web, code = config.sources
    assert [type(s) for s in (wiki, web, code)] == [SourceWithPaths, SourceWithTopics, SourceWithQuality]
    assert all(isinstance(s, SourceConfig) for s in config.sources)
    assert isinstance(web, SourceWithTopics) and isinstance(code, SourceWithQuality)
    (science,) = web.topics
    assert isinstance(science, TopicConfig) and isinstance(science, TopicWithQuality)
    assert science.quality is not None and isinstance(science.quality[0], QualityConfig)
    assert not isinstance(code.quality[0], SourceConfig)
