"""What goes into a step's email besides the cart: which products to recommend, which reassurance to give,
how much is missing for free shipping, and which items to show. Pure rules on plain values; the email
context (``email/context.py``) formats what they choose.

Recommendations (step 3), at most ``limit``:

1. the cart items' ``related_skus``, looked up in the store's catalog, taken in turns (each item's first
   related SKU, then each item's second, ...), so every item gets a say. A SKU is passed over when it is
   already in the cart, unknown to the catalog, marked out of stock there, or already chosen.
   A related product is an **up-sell** when the catalog prices it above the unit price of the item it
   relates to (both in the store's currency), otherwise a **cross-sell** ("often bought together").
2. then, to fill, the store's own list of recommendations (``StoreSettings.recommendations``), in order;
3. then the catalog, in the order of the file (put the products you would most like to suggest first).

Products already in the cart (by SKU or URL) are never recommended, and none is recommended twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from cartrecovery.domain.catalog import Catalog
from cartrecovery.domain.events import Item
from cartrecovery.domain.store import Product, Reassurance

CROSS_SELL = "cross_sell"
UPSELL = "upsell"
PICK = "pick"  # from the store's list or the catalog, not tied to an item
MAX_RECOMMENDATIONS = 3
# An email lists at most this many items and says how many more the cart holds. Gmail clips an HTML part
# over 102 KB behind "[Message clipped]", which hides the unsubscribe link and the legal footer: a full
# cart (100 items with a shop's usual product and image URLs) came to 117 KB.
MAX_LISTED_ITEMS = 10
RECOMMENDATION_STEP = 3  # the cart-recovery step that recommends products


@dataclass(frozen=True)
class Recommendation:
    name: str
    url: str
    kind: str  # CROSS_SELL, UPSELL or PICK
    image_url: str | None = None
    price: Decimal | None = None  # a catalog price, in the store's currency
    price_text: str | None = None  # a store-list price, already written out (``3,240円``)
    related_to: str | None = None  # the name of the cart item it relates to


def recommend(
    items: tuple[Item, ...],
    catalog: Catalog | None,
    picks: tuple[Product, ...] = (),
    *,
    same_currency: bool = True,
    limit: int = MAX_RECOMMENDATIONS,
) -> list[Recommendation]:
    """Up to ``limit`` products for ``items`` (see the module's docstring for the order and the rules).
    ``same_currency`` says whether the cart is in the store's currency (else nothing counts as an up-sell)."""
    in_cart_skus = {item.sku for item in items}
    taken_urls = {item.url for item in items}
    chosen: list[Recommendation] = []
    chosen_skus: set[str] = set()

    def take(recommendation: Recommendation, sku: str | None = None) -> None:
        chosen.append(recommendation)
        taken_urls.add(recommendation.url)
        if sku is not None:
            chosen_skus.add(sku)

    if catalog is not None:
        for sku, item in _in_turns(items):
            if len(chosen) >= limit:
                return chosen
            product = catalog.by_sku.get(sku)
            if product is None or not product.in_stock or sku in in_cart_skus or sku in chosen_skus:
                continue
            if product.url in taken_urls:
                continue
            upsell = same_currency and product.price is not None and product.price > item.unit_price
            take(
                Recommendation(
                    name=product.name,
                    url=product.url,
                    kind=UPSELL if upsell else CROSS_SELL,
                    image_url=product.image_url,
                    price=product.price,
                    related_to=item.name,
                ),
                sku,
            )
    for pick in picks:
        if len(chosen) >= limit:
            return chosen
        if pick.url not in taken_urls:
            take(
                Recommendation(name=pick.name, url=pick.url, kind=PICK, image_url=pick.image_url, price_text=pick.price)
            )
    if catalog is not None:
        for product in catalog.products:
            if len(chosen) >= limit:
                return chosen
            if not product.in_stock or product.sku in in_cart_skus or product.sku in chosen_skus:
                continue
            if product.url not in taken_urls:
                take(
                    Recommendation(
                        name=product.name, url=product.url, kind=PICK, image_url=product.image_url, price=product.price
                    ),
                    product.sku,
                )
    return chosen


def _in_turns(items: tuple[Item, ...]) -> list[tuple[str, Item]]:
    """(related SKU, item) pairs: every item's first related SKU, then every item's second, and so on."""
    longest = max((len(item.related_skus) for item in items), default=0)
    return [
        (item.related_skus[turn], item) for turn in range(longest) for item in items if turn < len(item.related_skus)
    ]


@dataclass(frozen=True)
class ReassuranceBlock:
    """The texts to show (None: not shown) and why: a high-value cart, a first purchase, or both."""

    warranty: str | None
    returns: str | None
    size_exchange: str | None
    high_value: bool
    first_purchase: bool


def choose_reassurance(
    texts: Reassurance, total: Decimal, *, same_currency: bool, first_purchase: bool
) -> ReassuranceBlock | None:
    """Warranty and returns when the cart total reaches the store's high-value threshold (in its currency);
    returns and size exchange on a first purchase; None when nothing applies or the texts that would are empty."""
    high_value = texts.high_value_threshold is not None and same_currency and total >= texts.high_value_threshold
    warranty = texts.warranty if high_value else ""
    returns = texts.returns if high_value or first_purchase else ""
    size_exchange = texts.size_exchange if first_purchase else ""
    if not (warranty or returns or size_exchange):
        return None
    return ReassuranceBlock(
        warranty=warranty or None,
        returns=returns or None,
        size_exchange=size_exchange or None,
        high_value=high_value,
        first_purchase=first_purchase,
    )


def is_first_purchase(orders_count: int | None, last_order_at: datetime | None) -> bool:
    """Whether the shopper has no known order: the event's ``customer.orders_count`` when it says, else the
    address's record (no order ever seen for it)."""
    if orders_count is not None:
        return orders_count == 0
    return last_order_at is None


def free_shipping_gap(threshold: Decimal | None, total: Decimal, *, same_currency: bool) -> Decimal | None:
    """How much more the cart needs for free shipping, or None: no threshold, another currency than the
    store's (the threshold is in the store's), or the cart already reaches it."""
    if threshold is None or not same_currency or total >= threshold:
        return None
    return threshold - total


def shown_items(items: tuple[Item, ...], hide_out_of_stock: bool) -> tuple[Item, ...]:
    """The items an email lists: all of them (out-of-stock ones marked as such), or with ``hide_out_of_stock``
    only those in stock; when every item is out of stock they are all shown, marked, rather than none."""
    if not hide_out_of_stock:
        return items
    return tuple(item for item in items if item.in_stock) or items
