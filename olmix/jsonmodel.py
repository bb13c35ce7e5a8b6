"""Base class of the generated models: JSON's data model, not Python's coercions.

pydantic's lax mode turns "1" into 1 and "yes" into True, which no JSON Schema
validator accepts; its strict mode rejects 1.0 for an integer, which every JSON
Schema validator accepts (JSON has one number type). Strict mode plus a
conversion of integral floats on integer fields gives the schema's verdict.

JSON Schema also tells an absent key from a null value, where a generated
optional field (`X | None = None`) accepts both. olmix's schemas allow null
nowhere, so an explicit null for such a field is rejected here, as the schema
rejects it.
"""

from __future__ import annotations

import types
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


def _accepts_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _accepts_int(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_accepts_int(arg) for arg in typing.get_args(annotation))
    return False


class JsonModel(BaseModel):
    model_config = ConfigDict(strict=True)

    _integer_fields: ClassVar[frozenset[str]] = frozenset()
    _absent_means_none: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._integer_fields = frozenset(
            name for name, field in cls.model_fields.items() if _accepts_int(field.annotation)
        )
        cls._absent_means_none = frozenset(
            field.alias or name
            for name, field in cls.model_fields.items()
            if not field.is_required() and field.default is None
        )

    @model_validator(mode="before")
    @classmethod
    def _null_is_not_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in cls._absent_means_none & data.keys():
                if data[key] is None:
                    raise ValueError(f"{key} must not be null (leave the key out instead)")
        return data

    @model_validator(mode="before")
    @classmethod
    def _integral_floats_are_integers(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not cls._integer_fields:
            return data
        fix = {
            key: int(value)
            for key in cls._integer_fields & data.keys()
            if isinstance(value := data[key], float) and value.is_integer()
        }
        return {**data, **fix} if fix else data
