"""The catalogue is the one table of models and dtypes; every schema is held to it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from olmix import catalogue
from olmix.catalogue import MODELS, UnknownModelError
from olmix.training import olmocore
from tests.conftest import REPO, needs_train

# The nominal parameter counts researchers use, as stated where the budget rule was set.
NOMINAL = {
    "olmo2_1m": 1e6, "olmo2_30m": 30e6, "olmo2_60m": 60e6, "olmo2_190m": 190e6, "olmo2_1b": 1e9, "olmo2_7b": 7e9,
    "olmo3_1m": 1e6, "olmo3_14m": 14e6, "olmo3_30m": 30e6, "olmo3_60m": 60e6, "olmo3_100m": 100e6,
    "olmo3_190m": 190e6, "olmo3_370m": 370e6, "olmo3_600m": 600e6, "olmo3_760m": 760e6, "olmo3_1b": 1e9,
    "olmo3_3b": 3e9, "olmo3_7b": 7e9, "olmo3_13b": 13e9, "olmo3_32b": 32e9,
}  # fmt: skip
SCHEMAS_WITH_MODELS = ["mixture", "study"]


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / "schema" / f"{name}.schema.json").read_text())
    return loaded


def _schema_model_ids(name: str) -> list[str]:
    return [branch["const"] for branch in _schema(name)["$defs"]["ModelId"]["oneOf"]]


def test_nominal_parameter_counts() -> None:
    assert {m.id: m.parameters for m in MODELS.values()} == {k: int(v) for k, v in NOMINAL.items()}


@pytest.mark.parametrize("schema", SCHEMAS_WITH_MODELS)
def test_the_schema_model_enum_is_the_catalogue(schema: str) -> None:
    branches = _schema(schema)["$defs"]["ModelId"]["oneOf"]
    assert [(b["const"], b["description"]) for b in branches] == [(m.id, m.label) for m in MODELS.values()]


def test_the_labels_state_the_size_in_words_and_digits() -> None:
    assert MODELS["olmo3_14m"].label == "14M parameters (14,000,000)"
    assert MODELS["olmo2_7b"].label == "7B parameters (7,000,000,000)"


def test_the_dtype_enums_are_the_catalogue() -> None:
    mixture = _schema("mixture")["properties"]["dtype"]["oneOf"]
    assert [b["const"] for b in mixture] == list(catalogue.ITEMSIZE)
    for branch, size in zip(mixture, catalogue.ITEMSIZE.values(), strict=True):
        assert branch["description"].startswith(f"{size} byte{'s' if size > 1 else ''} per token")
    plan = _schema("launch-plan")["$defs"]["Run"]["properties"]["dtype"]["enum"]
    assert plan == list(catalogue.ITEMSIZE)


def test_constructor_names_follow_olmo_core_spelling() -> None:
    assert MODELS["olmo3_14m"].olmo_core == "olmo3_14M"
    assert MODELS["olmo2_1b"].olmo_core == "olmo2_1B"


@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        ("olmo3_14M", "unknown model id 'olmo3_14M'; did you mean 'olmo3_14m'?"),
        ("gpt2", "unknown model id 'gpt2' (known: olmo2_1m, olmo2_30m,"),
        ("", "unknown model id ''"),
    ],
)
def test_an_unknown_model_id_is_a_clear_error(model_id: str, message: str) -> None:
    with pytest.raises(UnknownModelError) as caught:
        catalogue.model(model_id)
    assert message in str(caught.value)
    assert "olmo3_32b)" in str(caught.value)  # every known id is listed


@pytest.mark.slow
@needs_train
@pytest.mark.parametrize("model_id", sorted({i for s in SCHEMAS_WITH_MODELS for i in _schema_model_ids(s)}))
def test_olmo_core_has_a_constructor_for_every_model_id_the_schemas_accept(model_id: str) -> None:
    from olmo_core.nn.transformer import TransformerConfig

    config = olmocore.model_config(model_id, vocab_size=100_352)
    assert isinstance(config, TransformerConfig)
    assert config.vocab_size == 100_352


@needs_train
def test_the_vocabulary_sizes_are_olmo_cores() -> None:
    from olmo_core.data import TokenizerConfig

    for name, constructor in catalogue.TOKENIZERS.items():
        assert catalogue.VOCABULARY[name] == getattr(TokenizerConfig, constructor)().vocab_size
    assert catalogue.VOCABULARY["dolma2"] == 100_278  # dolma2's ids, its end-of-document token 100,257 among them
