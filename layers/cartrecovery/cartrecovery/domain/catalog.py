"""A store's product catalog: what step 3 recommends from, read from the JSON or CSV file the store uploads.

Each product has ``sku``, ``name`` and ``url`` (required), ``image_url``, ``price`` (in the store's currency)
and ``in_stock`` (optional; missing means in stock). URLs must be absolute https URLs, since they end up in
emails. Checking collects every problem with the row it is on (``row 4`` is the fourth line of a CSV file,
header included, as a spreadsheet numbers it; ``[3]`` the fourth object of a JSON list), so a file is fixed
in one round; columns or keys other than these are ignored, so a shop system's full export can be uploaded.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cartrecovery.domain.events import MAX_ID, MAX_TEXT, MAX_URL, split_url
from cartrecovery.domain.text import NOT_UNICODE, has_unpaired_surrogate

MAX_PRODUCTS = 5_000
MAX_SKU = MAX_ID  # as an event's SKU, which step 3 looks up here
MAX_NAME = MAX_TEXT
MAX_PRICE = Decimal("1e12")
MAX_PROBLEMS = 50  # listed; the rest are counted
COLUMNS = ("sku", "name", "url", "image_url", "price", "in_stock")
REQUIRED = ("sku", "name", "url")
_PRICE_TEXT = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\Z")
_TRUE = frozenset({"true", "yes", "1", "y", "在庫あり"})
_FALSE = frozenset({"false", "no", "0", "n", "在庫なし", "在庫切れ"})


@dataclass(frozen=True)
class CatalogProduct:
    sku: str
    name: str
    url: str
    image_url: str | None = None
    price: Decimal | None = None
    in_stock: bool = True


@dataclass(frozen=True)
class Catalog:
    products: tuple[CatalogProduct, ...]
    updated_at: str = ""

    @functools.cached_property
    def by_sku(self) -> dict[str, CatalogProduct]:
        return {p.sku: p for p in self.products}


class InvalidCatalog(Exception):
    """The file cannot be used; ``problems`` names each with its row (nothing is stored)."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(problems) - MAX_PROBLEMS} more")
        super().__init__("\n".join(shown))
        self.problems = shown


def parse_catalog(data: bytes, filename: str = "") -> tuple[CatalogProduct, ...]:
    """The products of a catalog file: JSON (a list of objects) or CSV (a header row, then one product per
    row), told apart by the file's extension or else by its first character. Raises ``InvalidCatalog``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidCatalog(
            [f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8 (Excel: 'CSV UTF-8')"]
        ) from None
    name = filename.lower()
    is_json = name.endswith(".json") or (not name.endswith(".csv") and text.lstrip()[:1] in ("[", "{"))
    rows = _json_rows(text) if is_json else _csv_rows(text)
    return check_rows(rows)


Row = tuple[str, dict[str, Any] | str]  # (where, the product's fields or what is wrong with the row)


def check_rows(rows: Iterable[Row]) -> tuple[CatalogProduct, ...]:
    """Products from (row label, fields) pairs; every problem is collected before ``InvalidCatalog`` is raised."""
    problems: list[str] = []
    products: list[CatalogProduct] = []
    seen: dict[str, str] = {}
    count = 0
    for where, fields in rows:
        count += 1
        if count > MAX_PRODUCTS:
            continue
        if isinstance(fields, str):
            problems.append(f"{where}: {fields}")
            continue
        product, errors = _product(fields)
        sku = fields.get("sku")
        label = f"{where} (sku {sku})" if isinstance(sku, str) and sku.strip() else where
        problems += [f"{label}: {error}" for error in errors]
        if product is None:
            continue
        if product.sku in seen:
            problems.append(f"{label}: sku {product.sku!r} is already on {seen[product.sku]}")
            continue
        seen[product.sku] = where
        products.append(product)
    if count > MAX_PRODUCTS:
        problems.insert(0, f"the catalog has {count:,} products; at most {MAX_PRODUCTS:,} are allowed")
    if count == 0:
        problems.append("the catalog has no products")
    if problems:
        raise InvalidCatalog(problems)
    return tuple(products)


def _json_rows(text: str) -> Iterator[Row]:
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise InvalidCatalog([f"the file is not valid JSON: {str(exc).splitlines()[0]}"]) from None
    except RecursionError:
        raise InvalidCatalog(["the file is nested too deeply to be a list of products"]) from None
    if not isinstance(data, list):
        raise InvalidCatalog(['a JSON catalog must be a list of products: [{"sku": ..., "name": ...}, ...]'])
    for index, entry in enumerate(data):
        yield f"[{index}]", entry if isinstance(entry, dict) else "must be an object"


def _csv_rows(text: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InvalidCatalog([f"row 1: {exc}"]) from None
    if header is None:
        raise InvalidCatalog(["the file is empty; a CSV catalog starts with a header row: sku,name,url,..."])
    columns = [column.strip().lower() for column in header]
    missing = [column for column in REQUIRED if column not in columns]
    if missing:
        raise InvalidCatalog(
            [f"row 1: the header has no {', '.join(missing)} column; expected {','.join(COLUMNS)} (in any order)"]
        )
    row = 1
    while True:
        row += 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidCatalog([f"row {row}: {exc}"]) from None
        if not any(value.strip() for value in values):
            continue  # a blank line
        if len(values) > len(columns):
            yield f"row {row}", f"has {len(values)} fields; the header has {len(columns)}"
            continue
        yield f"row {row}", {column: value for column, value in zip(columns, values, strict=False) if column in COLUMNS}


def _product(fields: dict[str, Any]) -> tuple[CatalogProduct | None, list[str]]:
    errors: list[str] = []
    sku = _text(fields, "sku", MAX_SKU, errors, required=True)
    name = _text(fields, "name", MAX_NAME, errors, required=True)
    url = _https(fields, "url", errors, required=True)
    image_url = _https(fields, "image_url", errors, required=False)
    price = _price(fields.get("price"), errors)
    in_stock = _flag(fields.get("in_stock"), errors)
    if errors or sku is None or name is None or url is None:
        return None, errors
    return CatalogProduct(sku, name, url, image_url, price, in_stock), errors


def _text(fields: dict[str, Any], key: str, limit: int, errors: list[str], *, required: bool) -> str | None:
    value = fields.get(key)
    if key == "sku" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a numeric SKU in JSON matches the same SKU as text in events
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(f"{key} is required")
        return None
    if not isinstance(value, str):
        errors.append(f"{key} must be text")
        return None
    if has_unpaired_surrogate(value):
        errors.append(f"{key} {NOT_UNICODE}")
        return None
    value = value.strip()
    if len(value) > limit:
        errors.append(f"{key} must be at most {limit} characters")
        return None
    return value


def _https(fields: dict[str, Any], key: str, errors: list[str], *, required: bool) -> str | None:
    value = _text(fields, key, MAX_URL, errors, required=required)
    if value is None:
        return None
    parts = split_url(value)
    if parts is None or parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in value):
        errors.append(f"{key} must be an absolute https URL, got {value[:80]!r}")
        return None
    return value


def _price(value: Any, errors: list[str]) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        errors.append("price must be a number")
        return None
    if isinstance(value, str):
        text = value.strip()
        if not _PRICE_TEXT.match(text):
            errors.append(f"price must be a number such as 3240 or 12.50, got {text[:40]!r}")
            return None
        value = text.replace(",", "")
    if not isinstance(value, int | str | Decimal):
        errors.append("price must be a number")
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        errors.append("price must be a number")
        return None
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        errors.append("price must be a number from 0 to 10^12")
        return None
    return price


def _flag(value: Any, errors: list[str]) -> bool:
    if value is None or isinstance(value, bool):
        return value is not False
    if isinstance(value, str):
        text = value.strip().lower()
        if not text or text in _TRUE:
            return True
        if text in _FALSE:
            return False
    errors.append(f"in_stock must be true or false, got {str(value)[:20]!r}")
    return True


def encode_products(products: Iterable[CatalogProduct]) -> bytes:
    """Compact JSON rows (``[sku, name, url, image_url, price, in_stock]``), as the catalog item keeps them."""
    rows = [
        [p.sku, p.name, p.url, p.image_url, None if p.price is None else str(p.price), p.in_stock] for p in products
    ]
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_products(data: bytes) -> tuple[CatalogProduct, ...]:
    return tuple(
        CatalogProduct(
            sku=str(sku),
            name=str(name),
            url=str(url),
            image_url=image_url,
            price=None if price is None else Decimal(price),
            in_stock=bool(in_stock),
        )
        for sku, name, url, image_url, price, in_stock in json.loads(data.decode("utf-8"))
    )
