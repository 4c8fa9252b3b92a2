"""Conversion between domain values and DynamoDB attribute values (no boto3 resource layer: it is slow
to import and hides the wire format)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from cartrecovery.clock import isoformat, parse_rfc3339

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attr(value: Any) -> dict[str, Any]:
    return _serializer.serialize(_plain(value))


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: to_attr(v) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """Datetimes as RFC 3339 strings (UTC, whole seconds: they sort as text), ints kept, Nones dropped."""
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, bool | str | Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise TypeError("floats are not stored; use Decimal")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def opt_time(value: Any) -> datetime | None:
    return parse_rfc3339(value) if value else None


def opt_str(value: Any) -> str | None:
    return str(value) if value is not None else None
