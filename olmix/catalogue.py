"""The models, tokenizers and token dtypes olmix knows, each stated once.

A model id (`olmo3_14m`) has a nominal parameter count, which sets the token
budget (`TOKENS_PER_PARAMETER` × parameters × chinchilla_multiple), and names
one of OLMo-core's `TransformerConfig` presets, which a trainer builds. The
schemas accept exactly these ids and dtypes: tests/unit/core/test_catalogue.py holds
every schema's `ModelId` and dtype enum to this table, and proves OLMo-core has
a constructor for every id.

Plain data, no imports beyond the standard library: the planner, the study
renderer and the trainer all read it, and none of them may pay for more.
"""

from __future__ import annotations

from dataclasses import dataclass

from olmix.errors import OlmixError
from olmix.hints import did_you_mean

TOKENS_PER_PARAMETER = 20
"""Chinchilla-optimal tokens per parameter: the budget at chinchilla_multiple 1."""


@dataclass(frozen=True)
class Model:
    id: str
    parameters: int  # nominal, as researchers name the size; the budget uses it
    olmo_core: str  # OLMo-core `TransformerConfig` constructor

    @property
    def label(self) -> str:
        """`14M parameters (14,000,000)`: the schema's description of the id."""
        for unit, size in (("B", 10**9), ("M", 10**6)):
            if self.parameters % size == 0:
                return f"{self.parameters // size}{unit} parameters ({self.parameters:,})"
        return f"{self.parameters:,} parameters"


def _model(model_id: str, parameters: float) -> Model:
    family, size = model_id.split("_")
    return Model(model_id, int(parameters), f"{family}_{size.upper()}")


MODELS: dict[str, Model] = {
    m.id: m
    for m in (
        _model("olmo2_1m", 1e6),
        _model("olmo2_30m", 30e6),
        _model("olmo2_60m", 60e6),
        _model("olmo2_190m", 190e6),
        _model("olmo2_1b", 1e9),
        _model("olmo2_7b", 7e9),
        _model("olmo3_1m", 1e6),
        _model("olmo3_14m", 14e6),
        _model("olmo3_30m", 30e6),
        _model("olmo3_60m", 60e6),
        _model("olmo3_100m", 100e6),
        _model("olmo3_190m", 190e6),
        _model("olmo3_370m", 370e6),
        _model("olmo3_600m", 600e6),
        _model("olmo3_760m", 760e6),
        _model("olmo3_1b", 1e9),
        _model("olmo3_3b", 3e9),
        _model("olmo3_7b", 7e9),
        _model("olmo3_13b", 13e9),
        _model("olmo3_32b", 32e9),
    )
}

TOKENIZERS: dict[str, str] = {"dolma2": "dolma2"}
"""Tokenizer name in a config or plan → OLMo-core `TokenizerConfig` constructor."""

VOCABULARY: dict[str, int] = {"dolma2": 100_278}
"""Tokenizer name → its number of token ids (0 to size − 1), as OLMo-core's `TokenizerConfig` states it."""

ITEMSIZE: dict[str, int] = {"uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8}
"""Token dtype (numpy's name) → bytes per token: tokens in a file = bytes / item size."""


class UnknownModelError(OlmixError):
    """A model id olmix does not know."""


def model(model_id: str) -> Model:
    """The catalogue entry of `model_id`; UnknownModelError names the nearest id and every known one."""
    try:
        return MODELS[model_id]
    except KeyError:
        near = did_you_mean(model_id, MODELS)
        raise UnknownModelError(f"unknown model id '{model_id}'{near} (known: {', '.join(MODELS)})") from None


def parameters(model_id: str) -> int:
    """Nominal parameter count of a model id."""
    return model(model_id).parameters


def smallest(model_id: str) -> str:
    """The id of the fewest-parameter model of `model_id`'s family (`olmo3_14m` → `olmo3_1m`)."""
    family = model(model_id).id.split("_")[0]
    return min((m for m in MODELS.values() if m.id.split("_")[0] == family), key=lambda m: m.parameters).id
