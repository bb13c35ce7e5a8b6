"""Base class of the generated models: JSON's data model, not Python's coercions.

pydantic's lax mode turns "1" into 1 and "yes" into True, which no JSON Schema
validator accepts; its strict mode rejects 1.0 for an integer, which every JSON
Schema validator accepts (JSON has one number type). So the models are strict,
and each integer field also accepts a float with no fractional part (as an
int). JSON Schema also tells an absent key from a null value, where a
generated optional field (`X | None = None`) accepts both; an optional field
whose absence means None rejects an explicit null here, as the schema does
(a required field that the schema lets be null keeps accepting it).

Both changes are made once, in the compiled core schema, so validation stays
entirely in pydantic-core: a plan with a million files validates fast.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

_INT_CONSTRAINTS = ("gt", "ge", "lt", "le", "multiple_of")


def _float_to_int(value: float) -> int:
    if not value.is_integer():
        raise PydanticCustomError("int_from_float", "Input should be a valid integer")
    return int(value)  # exact at any size: 1e300 is an integer to every JSON Schema validator


def _integral_float_or_int(schema: dict[str, Any]) -> core_schema.CoreSchema:
    bounds = {k: schema[k] for k in _INT_CONSTRAINTS if k in schema}
    exact = core_schema.int_schema(strict=True, **bounds)
    # strict float accepts ints and floats, never bools or strings; only integral floats become ints
    integral = core_schema.no_info_after_validator_function(_float_to_int, core_schema.float_schema(strict=True))
    return core_schema.union_schema(
        [exact, core_schema.chain_schema([integral, exact])],
        mode="left_to_right",
        custom_error_message="Input should be a valid integer",
    )


def _is_nullable(node: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(node, dict) and node.get("type") == "nullable"


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "int":
            return _integral_float_or_int(node)
        inner = node.get("schema")
        # an optional field whose absence means None: null itself is not allowed
        if node.get("type") == "default" and node.get("default") is None and _is_nullable(inner):
            return {**node, "schema": _rewrite(inner["schema"])}
        return {key: _rewrite(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    return node


class JsonModel(BaseModel):
    model_config = ConfigDict(strict=True)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        rewritten: core_schema.CoreSchema = _rewrite(handler(source))
        return rewritten
