"""fit.json as a record: schema/fit.schema.json and its generated model, the one reader and writer.

`olmix fit` writes it and anything downstream (the demo's verdict, a dashboard) reads it through `read_fit`,
validated and located like every record olmix writes; reading it needs none of the fit's numerical extras.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from olmix.errors import ConfigError

if TYPE_CHECKING:
    from olmix_generated.fit import MixtureFit

    from olmix.records import RecordKind

FIT_FILE = "fit.json"


class FitRecordError(ConfigError):
    """A fit.json that is not a valid fit record."""


def kind() -> RecordKind[MixtureFit]:
    from olmix.records import RecordKind

    return RecordKind("fit", "olmix_generated.fit:MixtureFit", "fit record", FitRecordError)


def read_fit(path: str | Path) -> MixtureFit:
    """The validated fit.json at `path`; FitRecordError lists every problem, located."""
    return kind().read(path)
