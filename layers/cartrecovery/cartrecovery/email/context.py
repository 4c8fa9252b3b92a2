"""The variables a step's template sees, built from the store's settings and the stored cart.

Money is formatted here, in the recipient's locale, so templates never do arithmetic; the full list of
variables is documented in docs/templates.md and checked by the renderer (undefined names fail).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cartrecovery.domain.cart import CartState
from cartrecovery.domain.store import StoreSettings
from cartrecovery.email.money import format_money

HELP_KEYS = ("shipping_url", "payment_url", "faq_url", "contact_url")
MAX_RECOMMENDATIONS = 3


def choose_locale(requested: str | None, available: list[str], default: str) -> str:
    """The customer's language if we have templates for it, else the store's."""
    if requested:
        language = requested.replace("_", "-").split("-")[0].lower()
        if language in available:
            return language
    return default if default in available else (available[0] if available else default)


def build_context(
    settings: StoreSettings, cart: CartState, flow: str, step: int, locale: str, unsubscribe_url: str, now: datetime
) -> dict[str, Any]:
    currency = cart.currency or settings.currency
    items = [
        {
            "sku": item.sku,
            "name": item.name,
            "url": item.url,
            "image_url": item.image_url,
            "variant": item.variant,
            "quantity": item.quantity,
            "unit_price": format_money(item.unit_price, currency, locale),
            "line_total": format_money(item.unit_price * item.quantity, currency, locale),
            "out_of_stock": not item.in_stock,
        }
        for item in cart.items
    ]
    total = cart.total if cart.total is not None else sum((i.unit_price * i.quantity for i in cart.items), start=0)
    coupon = None
    if step == 2 and settings.coupon is not None:
        expires = None
        if settings.coupon.valid_days:
            expires_on = (now + timedelta(days=settings.coupon.valid_days)).astimezone(settings.zone).date()
            expires = expires_on.strftime("%Y年%m月%d日") if locale == "ja" else expires_on.strftime("%B %d, %Y")
        coupon = {
            "code": settings.coupon.code,
            "description": settings.coupon.description,
            "terms": settings.coupon.terms,
            "expires_at": expires,
        }
    recommendations = []
    if step == 3:
        in_cart = {i.url for i in cart.items}
        recommendations = [
            {"name": p.name, "url": p.url, "image_url": p.image_url, "price": p.price}
            for p in settings.recommendations
            if p.url not in in_cart
        ][:MAX_RECOMMENDATIONS]
    return {
        "shop": {"name": settings.name, "url": settings.url or None, "locale": settings.locale, "currency": currency},
        "customer": {"name": cart.customer.name},
        "cart": {
            "items": items,
            "total": format_money(total, currency, locale),
            "item_count": sum(i.quantity for i in cart.items),
            "recovery_url": cart.recovery_url,
        },
        "coupon": coupon,
        "recommendations": recommendations,
        "help": {key: settings.help.get(key) for key in HELP_KEYS},
        "legal": {
            "sender_name": settings.legal.sender_name,
            "address": settings.legal.address,
            "contact": settings.legal.contact,
        },
        "unsubscribe_url": unsubscribe_url,
        "flow": flow,
        "step": step,
    }
