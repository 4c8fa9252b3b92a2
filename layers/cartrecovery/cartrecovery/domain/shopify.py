"""Shopify webhooks mapped onto v1 events. Shopify has no "abandoned" webhook: a checkout that is
created or updated and then left alone *is* the abandonment, exactly like ``cart.updated``.

Carts are keyed by the checkout's numeric ``id``, which create, update, delete and the order's
``checkout_id`` all carry. Line items have no product URL in the payload, so items link to the checkout's
recovery URL (documented in docs/shopify.md).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from cartrecovery.domain.events import Event, FieldError, InvalidEvent, parse_event

CHECKOUT_TOPICS = {"checkouts/create", "checkouts/update"}
SUPPORTED_TOPICS = CHECKOUT_TOPICS | {"checkouts/delete", "orders/create"}


def to_event_body(topic: str, payload: Any, shop_domain: str | None) -> dict[str, Any] | None:
    """The v1 event body for a Shopify delivery, or None for a topic we do not act on."""
    if topic not in SUPPORTED_TOPICS:
        return None
    if not isinstance(payload, dict) or "id" not in payload:
        raise InvalidEvent([FieldError("id", "a Shopify checkout or order object with an id is required")])
    if topic in CHECKOUT_TOPICS:
        if payload.get("completed_at"):
            return _order_body(payload, cart_id=str(payload["id"]), order_id=f"checkout-{payload['id']}",
                               occurred=payload.get("completed_at"))
        return _checkout_body(payload, shop_domain)
    if topic == "checkouts/delete":
        return {"type": "cart.cleared", "occurred_at": payload.get("updated_at") or payload.get("created_at"),
                "cart": {"id": str(payload["id"])}}
    checkout_id = payload.get("checkout_id")
    return _order_body(payload, cart_id=str(checkout_id) if checkout_id else None, order_id=str(payload["id"]),
                       occurred=payload.get("created_at"))


def parse_shopify(topic: str, payload: Any, shop_domain: str | None) -> Event | None:
    body = to_event_body(topic, payload, shop_domain)
    return None if body is None else parse_event(body)


def _customer(payload: dict[str, Any]) -> dict[str, Any]:
    customer = payload.get("customer") or {}
    names = [customer.get("last_name"), customer.get("first_name")]
    result: dict[str, Any] = {
        "id": str(customer["id"]) if customer.get("id") is not None else None,
        "email": payload.get("email") or customer.get("email"),
        "name": " ".join(n for n in names if n) or None,
        "locale": payload.get("customer_locale"),
    }
    if "buyer_accepts_marketing" in payload:
        result["marketing_consent"] = {
            "granted": bool(payload.get("buyer_accepts_marketing")),
            "at": payload.get("updated_at") or payload.get("created_at"),
            "source": "shopify:buyer_accepts_marketing",
        }
    return {k: v for k, v in result.items() if v is not None}


def _amount(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _checkout_body(payload: dict[str, Any], shop_domain: str | None) -> dict[str, Any]:
    recovery = payload.get("abandoned_checkout_url")
    fallback = recovery or (f"https://{shop_domain}/cart" if shop_domain else None)
    items = []
    for line in payload.get("line_items") or []:
        title = line.get("title") or line.get("sku") or "item"
        items.append({
            "sku": str(line.get("sku") or line.get("variant_id") or line.get("product_id") or title),
            "name": title,
            "variant": line.get("variant_title") or None,
            "url": fallback,
            "unit_price": _amount(line.get("price")),
            "quantity": line.get("quantity"),
        })
    return {
        "type": "checkout.started",
        "occurred_at": payload.get("updated_at") or payload.get("created_at"),
        "customer": _customer(payload),
        "cart": {"id": str(payload["id"]), "currency": payload.get("currency") or payload.get("presentment_currency"),
                 "items": items, "total": _amount(payload.get("total_price")), "recovery_url": recovery},
    }


def _order_body(payload: dict[str, Any], cart_id: str | None, order_id: str, occurred: Any) -> dict[str, Any]:
    order: dict[str, Any] = {"id": order_id, "total": _amount(payload.get("total_price")),
                             "currency": payload.get("currency")}
    if cart_id:
        order["cart_id"] = cart_id
    return {"type": "order.placed", "occurred_at": occurred or payload.get("updated_at"),
            "customer": _customer(payload), "order": order}
