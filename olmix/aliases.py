"""The config classes under the names researchers' code uses, backed by the generated models.

A source is one of three shapes and a topic one of two (exactly one of
paths / topics / quality); SourceConfig and TopicConfig are those unions, so
`isinstance(x, SourceConfig)` and type hints work; build one through
ExperimentConfig.model_validate or the shape classes.
"""

from __future__ import annotations

from olmix_generated.mixture import (
    ExperimentConfig,
    InstanceFilter,
    QualityBucket,
    SourceWithPaths,
    SourceWithQuality,
    SourceWithTopics,
    TopicWithPaths,
    TopicWithQuality,
)

QualityConfig = QualityBucket
TopicConfig = TopicWithPaths | TopicWithQuality
SourceConfig = SourceWithPaths | SourceWithTopics | SourceWithQuality

__all__ = [
    "ExperimentConfig",
    "InstanceFilter",
    "QualityConfig",
    "SourceConfig",
    "SourceWithPaths",
    "SourceWithQuality",
    "SourceWithTopics",
    "TopicConfig",
    "TopicWithPaths",
    "TopicWithQuality",
]
