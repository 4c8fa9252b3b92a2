"""The demo store the local stack creates on start: a Japanese tea shop with every setting filled in."""

from __future__ import annotations

from typing import Any

DEMO_STORE_ID = "demo"
DEMO_SENDER = "shop@demo.cartrecovery.test"


def demo_store_settings() -> dict[str, Any]:
    """Settings as ``StoreSettings.from_dict`` reads them (the same shape ``cartrecovery store create`` takes)."""
    return {
        "store_id": DEMO_STORE_ID,
        "name": "抹茶堂 オンラインストア",
        "sender_email": DEMO_SENDER,
        "sender_name": "抹茶堂",
        "url": "https://shop.example.jp/",
        "legal": {
            "sender_name": "株式会社抹茶堂",
            "address": "〒600-8216 京都府京都市下京区烏丸通七条下る東塩小路町 1-2-3",
            "contact": "075-000-0000 / support@shop.example.jp / https://shop.example.jp/contact",
        },
        "locale": "ja",
        "timezone": "Asia/Tokyo",
        "currency": "JPY",
        "quiet_hours": "21:00-08:00",
        # The default cart-recovery flow: 2 hours, 3 days and 7 days after the cart's last activity.
        "flows": {
            "cart_recovery": {
                "enabled": True,
                "steps": [
                    {"step": 1, "delay_seconds": 2 * 3600},
                    {"step": 2, "delay_seconds": 3 * 86400},
                    {"step": 3, "delay_seconds": 7 * 86400},
                ],
            }
        },
        # A store-wide code. ``"kind": "pool"`` would give each cart a single-use code from the codes uploaded
        # with ``cartrecovery --local coupons upload --store demo FILE`` (this code when they run out), and
        # ``"only_if_not_clicked": true`` would skip the coupon email for shoppers who clicked step 1.
        "coupon": {
            "code": "MATCHA10",
            "description": "ご注文金額から10%オフ",
            "terms": "お一人様1回限り。他のクーポンとの併用はできません。",
            "valid_days": 7,
            "kind": "shared",
            "apply_url": "https://shop.example.jp/discount/{code}?redirect=/cart",
            "only_if_not_clicked": False,
        },
        "recommendations": [
            {
                "name": "宇治抹茶 濃茶用 30g",
                "url": "https://shop.example.jp/products/matcha-koicha",
                "image_url": "https://shop.example.jp/img/matcha-koicha.jpg",
                "price": "3,240円",
            },
            {
                "name": "茶筅 百本立",
                "url": "https://shop.example.jp/products/chasen",
                "image_url": "https://shop.example.jp/img/chasen.jpg",
                "price": "2,860円",
            },
            {
                "name": "ほうじ茶ラテの素 200g",
                "url": "https://shop.example.jp/products/hojicha-latte",
                "image_url": "https://shop.example.jp/img/hojicha-latte.jpg",
                "price": "1,480円",
            },
        ],
        "help": {
            "shipping_url": "https://shop.example.jp/help/shipping",
            "payment_url": "https://shop.example.jp/help/payment",
            "faq_url": "https://shop.example.jp/help/faq",
            "contact_url": "https://shop.example.jp/contact",
        },
        # Shown only where they help: warranty and returns for carts of 10,000円 or more, returns and size
        # exchange for a shopper with no known order (``customer.orders_count: 0``, or no order seen yet).
        "reassurance": {
            "warranty": "茶器は、お届けから1年以内に製造上の不具合が見つかった場合、無償で交換いたします。",
            "returns": "未開封の商品は、商品到着後8日以内であれば返品を承ります。",
            "size_exchange": "急須・湯呑みの容量違いへの交換は、商品到着後14日以内であれば1回まで無料で承ります。",
            "high_value_threshold": 10000,
        },
        # Below 5,000円 every step says how much more ships free ("あと2,440円のお買い上げで送料無料").
        "free_shipping_threshold": 5000,
        # Out-of-stock items are listed, marked 在庫切れ; true would leave them out (never all of a cart's items).
        "hide_out_of_stock": False,
        # Step 3 recommends the list above; a catalog uploaded with `cartrecovery --local catalog upload
        # --store demo FILE` adds the products named by the items' related_skus, ahead of it.
    }
