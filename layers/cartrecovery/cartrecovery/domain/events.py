"""The wire event (v1): parsing and strict validation into immutable domain values.

Validation collects every problem with its JSON path (``cart.items[0].quantity``) instead of stopping at
the first, so a store's engineer can fix a payload in one round trip. Amounts are ``Decimal`` from the
JSON text itself (``parse_float=Decimal``), never floats.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cartrecovery.clock import parse_rfc3339
from cartrecovery.domain.text import NOT_UNICODE, has_unpaired_surrogate

CART_ACTIVITY = frozenset({"cart.updated", "checkout.started"})
EVENT_TYPES = frozenset(
    {
        "cart.updated",
        "checkout.started",
        "order.placed",
        "cart.cleared",
        "customer.unsubscribed",
        "customer.consent_changed",
    }
)
# The local part: RFC 5322's atext and dots, 7-bit ASCII as SES requires (it has no SMTPUTF8); consecutive
# dots are allowed, as some Japanese mobile carriers' older addresses have them. The domain: LDH labels
# (an internationalised domain as its xn-- form). ``\Z``, not ``$``, which also matches before a final "\n".
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z"
)
_CURRENCY = re.compile(r"^[A-Z]{3}\Z")
# Control characters (Unicode's Cc) and the line and paragraph separators: what a mail header cannot hold
# and what moves a terminal. Not str.isprintable(), which also refuses the full-width space of Japanese names.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_WHITESPACE = re.compile(r"\s")  # the characters str.isspace() accepts, found in one C-level scan
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*\Z")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_ITEMS = 100
MAX_ID = 200
MAX_TEXT = 500
MAX_URL = 2048
# ``items[].related_skus``: the products a store suggests with an item (step 3 looks them up in its catalog).
MAX_RELATED_SKUS = 20
MAX_ORDERS_COUNT = 1_000_000
# Amounts are stored as exact DynamoDB numbers (38 significant digits): at most 10^12 and this many
# decimal places keeps every amount, and the revenue sums of many, exact.
MAX_DECIMAL_PLACES = 20


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str


class InvalidEvent(Exception):
    """An authentic event whose body breaks the schema; carries every invalid field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.path}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Consent:
    granted: bool
    at: datetime | None
    source: str | None


@dataclass(frozen=True)
class Customer:
    id: str | None = None
    email: str | None = None
    name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    consent: Consent | None = None
    orders_count: int | None = None  # orders the shop knows of for this shopper; 0 is a first purchase


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    url: str
    unit_price: Decimal
    quantity: int
    image_url: str | None = None
    variant: str | None = None
    in_stock: bool = True
    related_skus: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cart:
    id: str
    currency: str | None = None
    items: tuple[Item, ...] = ()
    total: Decimal | None = None
    recovery_url: str | None = None


@dataclass(frozen=True)
class Order:
    id: str
    total: Decimal
    currency: str
    cart_id: str | None = None


@dataclass(frozen=True)
class Event:
    type: str
    occurred_at: datetime
    customer: Customer | None = None
    cart: Cart | None = None
    order: Order | None = None


# What an event's fields and a store's settings must be; the messages name the rule.
NOT_EMAIL = "must be an email address"
NOT_LANGUAGE_TAG = "must be a language tag such as ja or en-US"
NOT_TIME_ZONE = "must be an IANA time zone such as Asia/Tokyo"
NOT_CURRENCY = "must be an ISO 4217 code such as JPY"
NOT_HTTP_URL = "must be an absolute http(s) URL"


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def is_email_address(text: str) -> bool:
    return _EMAIL.match(text) is not None


def is_language_tag(text: str) -> bool:
    return _LOCALE.match(text) is not None


def is_currency_code(text: str) -> bool:
    return _CURRENCY.match(text) is not None


def split_url(text: str) -> SplitResult | None:
    """``text`` taken apart; None where it cannot be: an unclosed "[" of an IPv6 host, or a port that is not
    a number from 0 to 65535 (which every later reader of the URL would refuse)."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - read only for the ValueError it raises on a bad port
    except ValueError:
        return None
    return parts


def is_http_url(text: str) -> bool:
    """http(s) with a host (``https://:80/`` and ``https://user@/`` have a netloc but lead nowhere)."""
    parts = split_url(text)
    return (
        parts is not None
        and parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not _WHITESPACE.search(text)
    )


def _without_trailing_places(amount: Decimal) -> Decimal | None:
    """``amount`` with at most ``MAX_DECIMAL_PLACES`` places, dropping only zeros (None if a digit beyond is not).

    Works on the digits themselves: ``normalize`` and ``quantize`` round to the context's 28 digits, and an
    amount up to 10^12 with 20 places has 33, so they would raise or round where this only cuts zeros."""
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # a finite amount
    extra = -MAX_DECIMAL_PLACES - exponent
    if extra <= 0:
        return amount
    kept, dropped = digits[:-extra], digits[-extra:]
    if any(dropped):
        return None
    return Decimal((sign, kept or (0,), -MAX_DECIMAL_PLACES))


def is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: a key that is not a plain relative path
        return False
    return True


def decode_json(body: bytes) -> Any:
    """Parse a body with decimals kept exact; raises ``InvalidEvent`` for bytes that are not JSON."""
    try:
        return json.loads(body.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidEvent([FieldError("", f"body is not valid JSON: {_short(exc)}")]) from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _short(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:200]


def parse_event(data: Any) -> Event:
    """Validate a decoded body; raise ``InvalidEvent`` listing every invalid field."""
    v = _Validator()
    if not isinstance(data, dict):
        raise InvalidEvent([FieldError("", "body must be a JSON object")])
    kind = v.string(data, "type", "type", required=True, max_len=64)
    if kind is not None and kind not in EVENT_TYPES:
        v.fail("type", f"unknown event type {kind!r}; expected one of {', '.join(sorted(EVENT_TYPES))}")
        kind = None
    occurred_at = v.timestamp(data, "occurred_at", "occurred_at", required=True)

    customer = v.customer(data.get("customer"), "customer") if "customer" in data else None
    cart = None
    if "cart" in data:
        cart = v.cart(data.get("cart"), "cart", full=kind in CART_ACTIVITY)
    order = v.order(data.get("order"), "order") if "order" in data else None

    if kind in CART_ACTIVITY and "cart" not in data:
        v.fail("cart", "is required for " + kind)
    if kind == "cart.cleared" and "cart" not in data:
        v.fail("cart", "is required for cart.cleared")
    if kind == "order.placed":
        if order is not None and order.cart_id is None and cart is not None:
            order = dataclasses.replace(order, cart_id=cart.id)  # the order's cart named by ``cart.id``
        if "order" not in data:
            v.fail("order", "is required for order.placed")
        elif order is not None and order.cart_id is None and not (customer and (customer.email or customer.id)):
            v.fail(
                "order.cart_id", "an order needs order.cart_id (or cart.id) or a customer email or id to match a cart"
            )
    if kind in ("customer.unsubscribed", "customer.consent_changed") and not (customer and customer.email):
        v.fail("customer.email", "is required for " + kind)
    if kind == "customer.consent_changed" and customer is not None and customer.consent is None:
        v.fail("customer.marketing_consent", "is required for customer.consent_changed")

    if v.errors or kind is None or occurred_at is None:
        raise InvalidEvent(v.errors or [FieldError("", "invalid event")])
    return Event(type=kind, occurred_at=occurred_at, customer=customer, cart=cart, order=order)


@dataclass
class _Validator:
    errors: list[FieldError] = field(default_factory=list)

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def obj(self, value: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return None
        return value

    def string(
        self, data: dict[str, Any], key: str, path: str, *, required: bool = False, max_len: int = MAX_TEXT
    ) -> str | None:
        if key not in data or data[key] is None:
            if required:
                self.fail(path, "is required")
            return None
        value = data[key]
        if not isinstance(value, str):
            self.fail(path, "must be a string")
            return None
        if required and not value.strip():
            self.fail(path, "must not be empty")
            return None
        if has_unpaired_surrogate(value):
            self.fail(path, NOT_UNICODE)
            return None
        if len(value) > max_len:
            self.fail(path, f"must be at most {max_len} characters")
            return None
        return value

    def timestamp(self, data: dict[str, Any], key: str, path: str, *, required: bool = False) -> datetime | None:
        text = self.string(data, key, path, required=required, max_len=64)
        if text is None:
            return None
        try:
            moment = parse_rfc3339(text)
        except ValueError:
            self.fail(path, "must be an RFC 3339 timestamp with an offset, e.g. 2026-12-01T10:15:00+09:00")
            return None
        if not EARLIEST <= moment < LATEST:
            self.fail(path, "must be between 2000 and 2100")
            return None
        return moment

    def url(self, data: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
        text = self.string(data, key, path, required=required, max_len=MAX_URL)
        if text is None:
            return None
        if not is_http_url(text):
            self.fail(path, NOT_HTTP_URL)
            return None
        return text

    def amount(self, data: dict[str, Any], key: str, path: str, *, required: bool = False) -> Decimal | None:
        if key not in data or data[key] is None:
            if required:
                self.fail(path, "is required")
            return None
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            self.fail(path, "must be a number")
            return None
        amount = Decimal(value)
        if not amount.is_finite() or amount < 0:
            self.fail(path, "must be a non-negative number")
            return None
        if amount > Decimal("1e12"):
            self.fail(path, "is too large")
            return None
        exact = _without_trailing_places(amount)
        if exact is None:
            self.fail(path, f"has more than {MAX_DECIMAL_PLACES} decimal places")
        return exact

    def currency(self, data: dict[str, Any], key: str, path: str, *, required: bool) -> str | None:
        text = self.string(data, key, path, required=required, max_len=3)
        if text is not None and not is_currency_code(text):
            self.fail(path, NOT_CURRENCY)
            return None
        return text

    def customer(self, value: Any, path: str) -> Customer | None:
        data = self.obj(value, path)
        if data is None:
            return None
        email = self.string(data, "email", f"{path}.email", max_len=254)
        if email is not None and not is_email_address(email):
            self.fail(f"{path}.email", NOT_EMAIL)
            email = None
        locale = self.string(data, "locale", f"{path}.locale", max_len=35)
        if locale is not None and not is_language_tag(locale):
            self.fail(f"{path}.locale", NOT_LANGUAGE_TAG)
            locale = None
        zone = self.string(data, "timezone", f"{path}.timezone", max_len=64)
        if zone is not None and not is_time_zone(zone):
            self.fail(f"{path}.timezone", NOT_TIME_ZONE)
            zone = None
        consent = None
        if "marketing_consent" in data and data["marketing_consent"] is not None:
            consent = self.consent(data["marketing_consent"], f"{path}.marketing_consent")
        orders_count = data.get("orders_count")
        if orders_count is not None and (
            isinstance(orders_count, bool)
            or not isinstance(orders_count, int)
            or not 0 <= orders_count <= MAX_ORDERS_COUNT
        ):
            self.fail(f"{path}.orders_count", f"must be an integer from 0 to {MAX_ORDERS_COUNT:,}")
            orders_count = None
        return Customer(
            id=self.string(data, "id", f"{path}.id", max_len=MAX_ID),
            email=email,
            name=self.string(data, "name", f"{path}.name", max_len=200),
            locale=locale,
            timezone=zone,
            consent=consent,
            orders_count=orders_count,
        )

    def consent(self, value: Any, path: str) -> Consent | None:
        data = self.obj(value, path)
        if data is None:
            return None
        granted = data.get("granted")
        if not isinstance(granted, bool):
            self.fail(f"{path}.granted", "must be true or false")
            return None
        return Consent(
            granted=granted,
            at=self.timestamp(data, "at", f"{path}.at"),
            source=self.string(data, "source", f"{path}.source", max_len=200),
        )

    def cart(self, value: Any, path: str, *, full: bool) -> Cart | None:
        data = self.obj(value, path)
        if data is None:
            return None
        cart_id = self.string(data, "id", f"{path}.id", required=True, max_len=MAX_ID)
        currency = self.currency(data, "currency", f"{path}.currency", required=full)
        items: list[Item] = []
        raw_items = data.get("items")
        if raw_items is None:
            if full:
                self.fail(f"{path}.items", "is required")
        elif not isinstance(raw_items, list):
            self.fail(f"{path}.items", "must be an array")
        elif len(raw_items) > MAX_ITEMS:
            self.fail(f"{path}.items", f"must have at most {MAX_ITEMS} items")
        else:
            for index, raw in enumerate(raw_items):
                item = self.item(raw, f"{path}.items[{index}]")
                if item is not None:
                    items.append(item)
        total = self.amount(data, "total", f"{path}.total")
        recovery_url = self.url(data, "recovery_url", f"{path}.recovery_url")
        if cart_id is None:
            return None
        return Cart(id=cart_id, currency=currency, items=tuple(items), total=total, recovery_url=recovery_url)

    def item(self, value: Any, path: str) -> Item | None:
        data = self.obj(value, path)
        if data is None:
            return None
        before = len(self.errors)
        sku = self.string(data, "sku", f"{path}.sku", required=True, max_len=MAX_ID)
        name = self.string(data, "name", f"{path}.name", required=True)
        url = self.url(data, "url", f"{path}.url", required=True)
        image_url = self.url(data, "image_url", f"{path}.image_url")
        variant = self.string(data, "variant", f"{path}.variant", max_len=200)
        unit_price = self.amount(data, "unit_price", f"{path}.unit_price", required=True)
        quantity = data.get("quantity")
        if quantity is None:
            self.fail(f"{path}.quantity", "is required")
        elif isinstance(quantity, bool) or not isinstance(quantity, int):
            self.fail(f"{path}.quantity", "must be an integer")
        elif quantity < 1:
            self.fail(f"{path}.quantity", "must be at least 1")
        elif quantity > 100_000:
            self.fail(f"{path}.quantity", "is too large")
        in_stock = data.get("in_stock", True)
        if not isinstance(in_stock, bool):
            self.fail(f"{path}.in_stock", "must be true or false")
        related_skus = self.sku_list(data.get("related_skus"), f"{path}.related_skus")
        if len(self.errors) > before:
            return None
        assert sku is not None and name is not None and url is not None and unit_price is not None
        return Item(
            sku=sku,
            name=name,
            url=url,
            unit_price=unit_price,
            quantity=int(quantity),  # type: ignore[arg-type]
            image_url=image_url,
            variant=variant,
            in_stock=bool(in_stock),
            related_skus=related_skus,
        )

    def sku_list(self, value: Any, path: str) -> tuple[str, ...]:
        """An optional list of SKUs: non-empty strings, at most ``MAX_RELATED_SKUS`` of them."""
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, "must be an array of SKU strings")
            return ()
        if len(value) > MAX_RELATED_SKUS:
            self.fail(path, f"must have at most {MAX_RELATED_SKUS} SKUs")
            return ()
        skus: list[str] = []
        for index, sku in enumerate(value):
            if not isinstance(sku, str) or not sku.strip():
                self.fail(f"{path}[{index}]", "must be a non-empty string")
            elif has_unpaired_surrogate(sku):
                self.fail(f"{path}[{index}]", NOT_UNICODE)
            elif len(sku) > MAX_ID:
                self.fail(f"{path}[{index}]", f"must be at most {MAX_ID} characters")
            else:
                skus.append(sku)
        return tuple(dict.fromkeys(skus))

    def order(self, value: Any, path: str) -> Order | None:
        data = self.obj(value, path)
        if data is None:
            return None
        order_id = self.string(data, "id", f"{path}.id", required=True, max_len=MAX_ID)
        total = self.amount(data, "total", f"{path}.total", required=True)
        currency = self.currency(data, "currency", f"{path}.currency", required=True)
        cart_id = self.string(data, "cart_id", f"{path}.cart_id", max_len=MAX_ID)
        if order_id is None or total is None or currency is None:
            return None
        return Order(id=order_id, total=total, currency=currency, cart_id=cart_id)
