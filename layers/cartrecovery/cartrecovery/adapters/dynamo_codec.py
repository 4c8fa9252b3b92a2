"""Conversion between domain values and DynamoDB attribute values (no boto3 resource layer: it is slow
to import and hides the wire format)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeDeserializer, TypeSerializer

from cartrecovery.clock import isoformat, parse_rfc3339

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attr(value: Any) -> dict[str, Any]:
    return _serialize(_plain(value))


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: to_attr(v) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserialize(v) for k, v in item.items()}


# The types every item here is made of, converted directly: boto3's serializer inspects each value against
# every type in turn and costs a large share of a handler's CPU. Anything else (sets, binary) goes to it.
def _serialize(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, Decimal):
        number = str(DYNAMODB_CONTEXT.create_decimal(value))
        if number in ("Infinity", "NaN"):
            raise TypeError("Infinity and NaN not supported")
        return {"N": number}
    if isinstance(value, dict):
        return {"M": {k: _serialize(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [_serialize(v) for v in value]}
    if value is None:
        return {"NULL": True}
    return _serializer.serialize(value)


def _deserialize(attr: dict[str, Any]) -> Any:
    if len(attr) == 1:
        ((kind, data),) = attr.items()
        if kind == "S":
            return data
        if kind == "N":
            return DYNAMODB_CONTEXT.create_decimal(data)
        if kind == "M":
            return {k: _deserialize(v) for k, v in data.items()}
        if kind == "L":
            return [_deserialize(v) for v in data]
        if kind == "BOOL":
            return data
        if kind == "NULL":
            return None
    return _deserializer.deserialize(attr)


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


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def opt_time(value: Any) -> datetime | None:
    """A stored time: RFC 3339 text, or microseconds since the epoch (``micros``)."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return EPOCH + timedelta(microseconds=int(value))
    return parse_rfc3339(value) if value else None


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: how the times events are ordered by are stored (exact, compared as
    numbers, and 9 bytes where their text took 27)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def opt_str(value: Any) -> str | None:
    return str(value) if value is not None else None
