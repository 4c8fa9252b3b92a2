"""Realistic template contexts for tests, previews, upload checks and benchmarks, shaped exactly like
``build_context``'s; and a sample cart to build a store's own preview context from."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cartrecovery.domain.cart import CartState
from cartrecovery.domain.events import Customer, Item
from cartrecovery.email.context import item_context
from cartrecovery.email.money import format_money

# (sku, name, variant, unit price, out of stock)
_PRODUCTS: dict[str, list[tuple[str, str, str | None, str, bool]]] = {
    "ja": [
        ("TEA-001", "抹茶ラテ", "10本入り", "1280", False),
        ("CUP-014", "有田焼 マグカップ", "藍色", "3300", False),
        ("TWL-203", "今治タオル フェイスタオル", "ホワイト / 2枚組", "1650", False),
        ("POT-007", "南部鉄器 急須", "0.6L", "8800", True),
        ("TEA-022", "京都 ほうじ茶 ティーバッグ", None, "980", False),
        ("PLT-031", "信楽焼 豆皿", "5枚セット", "1540", False),
    ],
    "en": [
        ("TEA-001", "Organic Sencha Green Tea", "100 g", "12.50", False),
        ("DRP-014", "Ceramic Pour-Over Dripper", "Matte white", "34.00", False),
        ("APR-203", "Linen Apron", "Charcoal / M", "48.00", False),
        ("POT-007", "Cast Iron Teapot", "0.6 L", "89.00", True),
        ("CND-022", "Beeswax Candle", None, "18.00", False),
        ("BRD-031", "Walnut Serving Board", "Large", "62.00", False),
    ],
}

_RECOMMENDATIONS: dict[str, list[tuple[str, str, str]]] = {
    "ja": [
        ("REC-101", "抹茶 茶筅（百本立）", "2750"),
        ("REC-102", "九谷焼 湯呑み", "4400"),
        ("REC-103", "季節の和菓子 詰め合わせ", "3240"),
        ("REC-104", "竹製 茶杓", "880"),
    ],
    "en": [
        ("REC-101", "Bamboo Matcha Whisk", "22.00"),
        ("REC-102", "Stoneware Tea Cup Set", "38.00"),
        ("REC-103", "Seasonal Tea Sampler", "27.50"),
        ("REC-104", "Cotton Tea Towel", "9.00"),
    ],
}

# A single-use code as a store's pool hands them out (one per cart), shown by previews of pool stores.
SAMPLE_POOL_CODE = "THX-7KQ2-M9XD"

# What a store that sets every reassurance text and a free-shipping threshold shows (amounts in its currency).
_CONTENT: dict[str, dict[str, Any]] = {
    "ja": {
        "reassurance": {
            "warranty": "お届けから1年間、製造上の不具合による故障は無償で修理または交換いたします。",
            "returns": "商品到着後8日以内の未使用品は、返品を承ります（返送料は当店負担）。",
            "size_exchange": "サイズが合わなかった場合は、到着後14日以内であれば1回まで無料で交換いたします。",
        },
        "free_shipping_threshold": "10000",
    },
    "en": {
        "reassurance": {
            "warranty": "Every item is covered for one year against manufacturing defects: we repair or replace it.",
            "returns": "Changed your mind? Return unused items within 30 days, and we cover the return postage.",
            "size_exchange": "If the size isn't right, we exchange it once for free within 30 days of delivery.",
        },
        "free_shipping_threshold": "150",
    },
}

_SHOPS: dict[str, dict[str, Any]] = {
    "ja": {
        "shop": {"name": "ことのは商店", "url": "https://shop.example.jp", "locale": "ja", "currency": "JPY"},
        "customer_name": "山田 太郎",
        "legal": {
            "sender_name": "株式会社ことのは",
            "address": "〒100-0005 東京都千代田区丸の内1-1-1 ことのはビル3階",
            "contact": "support@shop.example.jp（03-1234-5678 平日10:00〜17:00）",
        },
        "coupon": {
            "code": SAMPLE_POOL_CODE,
            "description": "カート内の商品が10%オフになるクーポンです。",
            "terms": (
                "3,000円（税込）以上のご購入で、お一人さま1回限りご利用いただけます。他のクーポンとの併用はできません。"
            ),
            "expires_at": "2026年12月31日",
            "apply_url": f"https://shop.example.jp/discount/{SAMPLE_POOL_CODE}?redirect=/cart",
        },
        "unsubscribe_url": "https://recovery.shop.example.jp/u/SAMPLE-TOKEN",
    },
    "en": {
        "shop": {"name": "Northwind Goods", "url": "https://shop.example.com", "locale": "en", "currency": "USD"},
        "customer_name": "Alex Morgan",
        "legal": {
            "sender_name": "Northwind Goods LLC",
            "address": "100 Market Street, Suite 200, San Francisco, CA 94105, USA",
            "contact": "support@shop.example.com",
        },
        "coupon": {
            "code": SAMPLE_POOL_CODE,
            "description": "10% off the items in your cart.",
            "terms": "One use per customer on orders of $30 or more. Cannot be combined with other offers.",
            "expires_at": "December 31, 2026",
            "apply_url": f"https://shop.example.com/discount/{SAMPLE_POOL_CODE}?redirect=/cart",
        },
        "unsubscribe_url": "https://recovery.shop.example.com/u/SAMPLE-TOKEN",
    },
}


def sample_context(flow: str, step: int, locale: str, *, items: int = 3) -> dict[str, Any]:
    """A fresh context for ``flow`` step ``step``: step 2 carries a coupon, step 3 recommendations (one of
    each kind: a cross-sell, an up-sell and a pick of the shop); every step has the reassurance texts, the
    free-shipping note, and (with fewer than four items) one out-of-stock item left out.

    ``locale`` picks the shop (``ja``: a Japanese shop in JPY, anything else: an English one in USD);
    ``items`` may exceed the product list, which then repeats with new SKUs. The fourth item is out of stock.
    """
    lang = "ja" if locale.lower().startswith("ja") else "en"
    shop = dict(_SHOPS[lang]["shop"])
    base = shop["url"]
    currency = shop["currency"]
    cart = sample_cart("sample", lang, items=items)
    cart_items = [item_context(item, currency, lang) for item in cart.items]
    total = sum((item.unit_price * item.quantity for item in cart.items), start=Decimal(0))
    count = sum(item.quantity for item in cart.items)

    recommendations = []
    if step == 3:
        names = [item["name"] for item in cart_items] or [None]
        related_to = [names[0], names[min(1, len(names) - 1)], None]
        recommendations = [
            {
                "name": name,
                "url": f"{base}/products/{sku.lower()}",
                "image_url": f"{base}/images/{sku.lower()}.jpg",
                "price": format_money(Decimal(price), currency, lang),
                "kind": kind,
                "related_to": related,
            }
            for (sku, name, price), kind, related in zip(
                _RECOMMENDATIONS[lang][:3], ("cross_sell", "upsell", "pick"), related_to, strict=True
            )
        ]
    threshold = Decimal(_CONTENT[lang]["free_shipping_threshold"])

    return {
        "shop": shop,
        "customer": {"name": _SHOPS[lang]["customer_name"]},
        "cart": {
            "items": cart_items,
            "total": format_money(total, currency, lang),
            "item_count": count,
            "recovery_url": cart.recovery_url,
            # As a store that hides out-of-stock items: the sold-out fourth product is left out and counted,
            # unless the cart has at least four items (then it is listed, marked, as by a store that shows them).
            "hidden_count": 0 if any(item["out_of_stock"] for item in cart_items) else 1,
            # A full cart lists its first items and counts the rest: the full sample shows the line.
            "more_count": 2,
        },
        "reassurance": {**_CONTENT[lang]["reassurance"], "high_value": True, "first_purchase": True},
        "free_shipping": {
            "remaining": format_money(max(threshold - total, Decimal(1)), currency, lang),
            "threshold": format_money(threshold, currency, lang),
        },
        "coupon": dict(_SHOPS[lang]["coupon"]) if step == 2 else None,
        "recommendations": recommendations,
        "help": {
            "shipping_url": f"{base}/pages/shipping",
            "payment_url": f"{base}/pages/payment",
            "faq_url": f"{base}/pages/faq",
            "contact_url": f"{base}/pages/contact",
        },
        "legal": dict(_SHOPS[lang]["legal"]),
        "unsubscribe_url": _SHOPS[lang]["unsubscribe_url"],
        "flow": flow,
        "step": step,
        "email_variant": "a",
    }


def sparse_context(flow: str, step: int, locale: str) -> dict[str, Any]:
    """``sample_context`` with every optional value left out, as a store without a home page, help pages,
    coupon, recommendations, reassurance texts or free-shipping threshold and an anonymous shopper's cart
    without images produce it."""
    context = sample_context(flow, step, locale)
    context["shop"]["url"] = None
    context["customer"] = {"name": None}
    context["cart"]["recovery_url"] = None
    for item in context["cart"]["items"]:
        item["image_url"] = None
        item["variant"] = None
    context["coupon"] = None
    context["recommendations"] = []
    context["help"] = dict.fromkeys(context["help"])
    context["cart"]["hidden_count"] = 0
    context["cart"]["more_count"] = 0
    context["reassurance"] = None
    context["free_shipping"] = None
    return context


def sample_cart(store_id: str, locale: str, *, items: int = 3) -> CartState:
    """A stored cart with the sample products of ``locale`` (JPY for ``ja``, USD otherwise), for previews
    that build the context from a store's real settings (``build_context``)."""
    lang = "ja" if locale.lower().startswith("ja") else "en"
    base = _SHOPS[lang]["shop"]["url"]
    products = _PRODUCTS[lang]
    cart_items = []
    for index in range(items):
        sku, name, variant, price, out_of_stock = products[index % len(products)]
        if index >= len(products):
            sku = f"{sku}-{index // len(products) + 1}"
        cart_items.append(
            Item(
                sku=sku,
                name=name,
                url=f"{base}/products/{sku.lower()}",
                unit_price=Decimal(price),
                quantity=2 if index == 0 else 1,
                image_url=f"{base}/images/{sku.lower()}.jpg",
                variant=variant,
                in_stock=not out_of_stock,
            )
        )
    return CartState(
        store_id=store_id,
        cart_id="SAMPLE-CART",
        currency=_SHOPS[lang]["shop"]["currency"],
        items=tuple(cart_items),
        recovery_url=f"{base}/cart/restore?t=SAMPLE-CART&utm_source=cartrecovery&utm_medium=email",
        customer=Customer(name=_SHOPS[lang]["customer_name"], locale=lang),
    )
