"""DynamoDB capacity units from item sizes, the way on-demand tables bill them.

Item size is the sum of attribute name lengths and value sizes (UTF-8 strings, numbers at about one byte
per two significant digits plus one, a few bytes of overhead per list or map element). A write costs one
unit per started KiB of the larger of the item before and after it; a read one unit per started 4 KiB
(half for an eventually consistent read); transactions cost twice. A failed conditional write still pays.
"""

from __future__ import annotations

import math
from typing import Any


def value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        digits = str(data).lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in data.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size_bytes: int) -> int:
    return max(1, math.ceil(size_bytes / 1024))


def read_units(size_bytes: int, consistent: bool) -> float:
    units = max(1, math.ceil(size_bytes / 4096))
    return float(units) if consistent else units / 2
