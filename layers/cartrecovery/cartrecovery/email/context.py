"""The variables a step's template sees, built from the store's settings and the stored cart.

Money is formatted here, in the recipient's locale, so templates never do arithmetic; the full list of
variables is documented in docs/templates.md and checked by the renderer (undefined names fail).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cartrecovery.domain.cart import CartState
from cartrecovery.domain.catalog import Catalog
from cartrecovery.domain.content import (
    MAX_LISTED_ITEMS,
    RECOMMENDATION_STEP,
    Recommendation,
    choose_reassurance,
    free_shipping_gap,
    recommend,
    shown_items,
)
from cartrecovery.domain.events import Item
from cartrecovery.domain.store import COUPON_STEP, HELP_KEYS, StoreSettings
from cartrecovery.email.money import format_money


def choose_locale(requested: str | None, available: list[str], default: str) -> str:
    """The customer's language if we have templates for it, else the store's."""
    if requested:
        language = requested.replace("_", "-").split("-")[0].lower()
        if language in available:
            return language
    return default if default in available else (available[0] if available else default)


def item_context(item: Item, currency: str, locale: str) -> dict[str, Any]:
    """One cart line as templates see it (``items`` in docs/templates.md), money formatted for ``locale``."""
    return {
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


def build_context(
    settings: StoreSettings,
    cart: CartState,
    flow: str,
    step: int,
    locale: str,
    unsubscribe_url: str,
    now: datetime,
    *,
    coupon_code: str | None = None,
    catalog: Catalog | None = None,
    first_purchase: bool = False,
    email_variant: str = "a",
) -> dict[str, Any]:
    """``coupon_code``: the code chosen for this shopper (a pool code); None shows the store-wide code.
    ``email_variant``: the step's A/B variant this shopper gets (``a`` unless the step lists variants).
    ``catalog``: the store's uploaded catalog, which step 3 recommends from (``domain/content.py``).
    ``first_purchase``: the shopper has no known order (shows the returns and size-exchange texts)."""
    currency = cart.currency or settings.currency
    shown = shown_items(cart.items, settings.hide_out_of_stock)
    items = [item_context(item, currency, locale) for item in shown[:MAX_LISTED_ITEMS]]
    total = cart.total if cart.total is not None else sum((i.unit_price * i.quantity for i in cart.items), start=0)
    coupon = None
    code = (coupon_code or settings.coupon.code) if settings.coupon is not None else ""
    if step == COUPON_STEP and settings.coupon is not None and code:
        expires = None
        if settings.coupon.valid_days:
            expires_on = (now + timedelta(days=settings.coupon.valid_days)).astimezone(settings.zone).date()
            expires = expires_on.strftime("%Y年%m月%d日") if locale == "ja" else expires_on.strftime("%B %d, %Y")
        coupon = {
            "code": code,
            "description": settings.coupon.description,
            "terms": settings.coupon.terms,
            "expires_at": expires,
            "apply_url": settings.coupon.apply_link(code),
        }
    same_currency = currency == settings.currency  # the store's thresholds and catalog prices are in its own
    recommendations = []
    if step == RECOMMENDATION_STEP:
        chosen = recommend(cart.items, catalog, settings.recommendations, same_currency=same_currency)
        recommendations = [_recommendation(r, settings.currency, locale) for r in chosen]
    reassurance = choose_reassurance(
        settings.reassurance, total, same_currency=same_currency, first_purchase=first_purchase
    )
    gap = free_shipping_gap(settings.free_shipping_threshold, total, same_currency=same_currency)
    return {
        "shop": {"name": settings.name, "url": settings.url or None, "locale": settings.locale, "currency": currency},
        "customer": {"name": cart.customer.name},
        "cart": {
            "items": items,
            "total": format_money(total, currency, locale),
            "item_count": sum(i.quantity for i in cart.items),
            "recovery_url": cart.recovery_url,
            "hidden_count": len(cart.items) - len(shown),
            "more_count": len(shown) - len(items),  # listed in the cart, past MAX_LISTED_ITEMS
        },
        "coupon": coupon,
        "recommendations": recommendations,
        "reassurance": {
            "warranty": reassurance.warranty,
            "returns": reassurance.returns,
            "size_exchange": reassurance.size_exchange,
            "high_value": reassurance.high_value,
            "first_purchase": reassurance.first_purchase,
        }
        if reassurance
        else None,
        "free_shipping": {
            "remaining": format_money(gap, currency, locale),
            "threshold": format_money(settings.free_shipping_threshold, currency, locale),
        }
        if gap is not None and settings.free_shipping_threshold is not None
        else None,
        "help": {key: settings.help.get(key) for key in HELP_KEYS},
        "legal": {
            "sender_name": settings.legal.sender_name,
            "address": settings.legal.address,
            "contact": settings.legal.contact,
        },
        "unsubscribe_url": unsubscribe_url,
        "flow": flow,
        "step": step,
        "email_variant": email_variant,
    }


def _recommendation(product: Recommendation, currency: str, locale: str) -> dict[str, Any]:
    price = format_money(product.price, currency, locale) if product.price is not None else product.price_text
    return {
        "name": product.name,
        "url": product.url,
        "image_url": product.image_url,
        "price": price,
        "kind": product.kind,
        "related_to": product.related_to,
    }
