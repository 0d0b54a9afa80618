"""Plain JSON-like values ⇄ DynamoDB attribute values.

DynamoDB numbers are decimals: floats go in as `Decimal(repr(x))` (exact round trip); NaN,
infinities and magnitudes beyond DynamoDB's range (1e125) become null, tiny ones (< 1e-120) zero.
Numbers come back as int when written without a fraction, float otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_plain_decimal(value: Any) -> Any:
    """Recursively convert floats to Decimal (non-finite to None) and dates/enums to strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int | Decimal):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= 1e125:
            return None
        return Decimal(repr(value)) if abs(value) >= 1e-120 else Decimal(0)
    if isinstance(value, Enum):
        return to_plain_decimal(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_plain_decimal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain_decimal(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def from_decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and value.as_tuple().exponent >= 0:  # type: ignore[operator]
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {k: from_decimal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_decimal(v) for v in value]
    return value


def serialize(value: Any) -> dict[str, Any]:
    """One attribute value (`{"S": ...}`, `{"M": ...}`, ...)."""
    out: dict[str, Any] = dict(_serializer.serialize(to_plain_decimal(value)))
    return out


def serialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item, leaving out attributes that are None (absent reads as None again)."""
    return {k: serialize(v) for k, v in item.items() if v is not None}


def deserialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_decimal(_deserializer.deserialize(v)) for k, v in item.items()}
