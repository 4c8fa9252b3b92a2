"""Shopify webhooks mapped onto v1 events. Shopify has no "abandoned" webhook: a checkout that is
created or updated and then left alone *is* the abandonment, exactly like ``cart.updated``.

Carts are keyed by the checkout ``token``, which checkouts carry and orders repeat as ``checkout_token``
(the numeric ids are not in every API version). Line items carry no product URL, so items link to the
checkout's recovery URL (see docs/integration.md). Payloads are read defensively: a field of an
unexpected shape is treated as absent, and what is then missing is reported as a 400.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from cartrecovery.domain.events import MAX_ITEMS, MAX_ORDERS_COUNT, FieldError, InvalidEvent

CHECKOUT_TOPICS = {"checkouts/create", "checkouts/update"}
SUPPORTED_TOPICS = CHECKOUT_TOPICS | {"checkouts/delete", "orders/create"}


def to_event_body(
    topic: str, payload: Any, shop_domain: str | None, triggered_at: str | None = None
) -> dict[str, Any] | None:
    """The v1 event body for a Shopify delivery, or None for a topic we do not act on."""
    if topic not in SUPPORTED_TOPICS:
        return None
    if not isinstance(payload, dict):
        raise InvalidEvent([FieldError("", "a Shopify checkout or order object is required")])
    occurred = _text(payload.get("updated_at")) or _text(payload.get("created_at")) or triggered_at
    if topic in CHECKOUT_TOPICS:
        cart_id = _checkout_key(payload)
        if payload.get("completed_at"):
            return _order_body(payload, cart_id, f"checkout-{cart_id}", _text(payload.get("completed_at")))
        return _checkout_body(payload, cart_id, shop_domain, occurred)
    if topic == "checkouts/delete":
        return {"type": "cart.cleared", "occurred_at": occurred, "cart": {"id": _checkout_key(payload)}}
    order_id = _text(payload.get("id")) or _text(payload.get("admin_graphql_api_id"))
    return _order_body(
        payload, _text(payload.get("checkout_token")), order_id, _text(payload.get("created_at")) or occurred
    )


def _checkout_key(payload: dict[str, Any]) -> str | None:
    return _text(payload.get("token")) or _text(payload.get("id"))


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return str(value) or None
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _customer(payload: dict[str, Any]) -> dict[str, Any]:
    customer = _dict(payload.get("customer"))
    names = [_text(customer.get("last_name")), _text(customer.get("first_name"))]
    result: dict[str, Any] = {
        "id": _text(customer.get("id")),
        "email": _text(payload.get("email")) or _text(customer.get("email")),
        "name": " ".join(n for n in names if n) or None,
        "locale": _text(payload.get("customer_locale")),
    }
    orders_count = customer.get("orders_count")  # older webhook API versions: tells a first purchase
    if isinstance(orders_count, int) and not isinstance(orders_count, bool) and 0 <= orders_count <= MAX_ORDERS_COUNT:
        result["orders_count"] = orders_count
    if isinstance(payload.get("buyer_accepts_marketing"), bool):
        result["marketing_consent"] = {
            "granted": payload["buyer_accepts_marketing"],
            "at": _text(payload.get("updated_at")) or _text(payload.get("created_at")),
            "source": "shopify:buyer_accepts_marketing",
        }
    return {k: v for k, v in result.items() if v is not None}


def _amount(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _checkout_body(
    payload: dict[str, Any], cart_id: str | None, shop_domain: str | None, occurred: str | None
) -> dict[str, Any]:
    recovery = _text(payload.get("abandoned_checkout_url"))
    fallback = recovery or (f"https://{shop_domain}/cart" if shop_domain else None)
    lines = payload.get("line_items")
    items = []
    for line in lines if isinstance(lines, list) else []:
        line = _dict(line)
        title = _text(line.get("title")) or _text(line.get("sku")) or "item"
        items.append(
            {
                "sku": _text(line.get("sku"))
                or _text(line.get("variant_id"))
                or _text(line.get("product_id"))
                or title,
                "name": title,
                "variant": _text(line.get("variant_title")),
                "url": fallback,
                "unit_price": _amount(line.get("price")),
                "quantity": line.get("quantity"),
            }
        )
    return {
        "type": "checkout.started",
        "occurred_at": occurred,
        "customer": _customer(payload),
        "cart": {
            "id": cart_id,
            "currency": _text(payload.get("currency")) or _text(payload.get("presentment_currency")),
            "items": items,
            "total": _amount(payload.get("total_price")),
            "recovery_url": recovery,
        },
    }


def _order_body(
    payload: dict[str, Any], cart_id: str | None, order_id: str | None, occurred: str | None
) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": order_id,
        "total": _amount(payload.get("total_price")),
        "currency": _text(payload.get("currency")),
    }
    if cart_id:
        order["cart_id"] = cart_id
    return {"type": "order.placed", "occurred_at": occurred, "customer": _customer(payload), "order": order}


# What a checkout may carry past v1's limits and still be taken without. Shopify retries a refused delivery
# for hours and may then remove the webhook, so one odd checkout (a 150-line order, an address our check
# refuses) must not be a 400: the cart is kept without the part v1 cannot hold. Without its email it is
# never emailed; without its consent, neither. What identifies the event (the cart, the order, the time) is
# never dropped: missing, the delivery stays a 400.
_OPTIONAL = {
    "customer.email",
    "customer.name",
    "customer.id",
    "customer.locale",
    "customer.orders_count",
    "customer.marketing_consent",
    "cart.total",
    "cart.recovery_url",
}
_ITEM = re.compile(r"cart\.items\[(\d+)\]")


def without_unfit(body: dict[str, Any], errors: list[FieldError]) -> tuple[dict[str, Any], list[str]]:
    """``body`` without what ``errors`` found unfit and v1 can do without (see ``_OPTIONAL``), and the
    paths dropped; no path dropped means the body cannot be mended."""
    body = copy.deepcopy(body)
    dropped: list[str] = []
    cart = _dict(body.get("cart"))
    listed = cart.get("items")
    items: list[Any] = listed if isinstance(listed, list) else []
    unfit_items: set[int] = set()
    for error in errors:
        section, _, rest = error.path.partition(".")
        name = rest.split(".")[0]  # customer.marketing_consent.at: the consent, whole
        unfit = _ITEM.match(error.path)
        if error.path == "cart.items" and len(items) > MAX_ITEMS:
            cart["items"] = items = items[:MAX_ITEMS]  # the first ones, as the shopper's cart lists them
        elif unfit:
            unfit_items.add(int(unfit.group(1)))
        elif f"{section}.{name}" in _OPTIONAL and name in _dict(body.get(section)):
            del body[section][name]
        else:
            continue
        dropped.append(error.path)
    if unfit_items:
        cart["items"] = [item for index, item in enumerate(items) if index not in unfit_items]
    return body, dropped
