"""Email content on the local stack, end to end: the demo store's free-shipping nudge and first-purchase
reassurance in step 1, and a store of its own (created and given a catalog with the operator CLI) whose step 3
recommends the catalog products its cart items name in ``related_skus``."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

CATALOG = [
    {"sku": "TEA-001", "name": "抹茶ラテ", "url": "https://shop.example.jp/products/tea-001", "price": 1280},
    {"sku": "CHASEN", "name": "茶筅 百本立", "url": "https://shop.example.jp/products/chasen", "price": 880},
    {"sku": "KOICHA", "name": "宇治抹茶 濃茶用", "url": "https://shop.example.jp/products/koicha", "price": 3240},
    {
        "sku": "CHAWAN",
        "name": "抹茶碗 黒楽",
        "url": "https://shop.example.jp/products/chawan",
        "price": 6600,
        "in_stock": False,
    },
    {"sku": "FUKIN", "name": "茶巾 10枚", "url": "https://shop.example.jp/products/fukin", "price": 550},
]


def test_a_demo_cart_below_the_free_shipping_threshold_is_told_how_much_more_ships_free(local_stack: Any) -> None:
    stack = local_stack
    settings = stack.store_settings()
    assert settings["free_shipping_threshold"] == "5000" and settings["hide_out_of_stock"] is False
    assert settings["reassurance"]["size_exchange"]

    stack.advance_to_local_time(10)
    cart_id, email = stack.new_id(), stack.unique_email("soryo")
    assert stack.post_event(stack.cart_event(cart_id, email, stack.now()))[0] == 202  # 2,560円 in the cart
    stack.advance(2 * 3600 + 60)

    (first,) = stack.outbox(to=email)
    assert "あと2,440円のお買い上げで送料無料になります" in first["text"]
    assert "2,440円" in first["html"] and "5,000円以上のご注文で送料無料" in first["html"]
    # A new shopper (no order known): the returns and size-exchange texts, and whom to ask
    for part in (first["text"], first["html"]):
        assert settings["reassurance"]["size_exchange"] in part and settings["reassurance"]["returns"] in part
        assert settings["reassurance"]["warranty"] not in part  # 2,560円 is not a high-value cart
    assert "はじめてご利用のお客さまへ" in first["text"]


def test_step_three_recommends_the_catalog_products_the_cart_items_name(local_stack: Any, tmp_path: Path) -> None:
    stack = local_stack
    store_id = "cat-" + stack.new_id("s")[2:10]
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"free_shipping_threshold": 3000, "hide_out_of_stock": True}))
    created = stack.cli(
        "store", "create", "--id", store_id, "--name", "茶の湯堂", "--sender-email", "shop@chanoyu.example.jp",
        "--address", "京都市東山区 1-1", "--contact", "support@chanoyu.example.jp", "--settings", str(settings_file),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = re.search(r"webhook secret \(Standard Webhooks\): (whsec_\S+)", created.stdout)
    assert secret is not None, created.stdout
    shown = json.loads(stack.cli("store", "show", "--id", store_id).stdout)
    assert shown["free_shipping_threshold"] == "3000" and shown["hide_out_of_stock"] is True

    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps(CATALOG, ensure_ascii=False), encoding="utf-8")
    uploaded = stack.cli("catalog", "upload", "--store", store_id, str(catalog_file))
    assert uploaded.returncode == 0, uploaded.stderr
    assert "stored 5 product(s)" in uploaded.stdout

    stack.advance_to_local_time(10)
    t0 = stack.now()
    cart_id, email = stack.new_id(), stack.unique_email("osusume")
    items = [
        {
            "sku": "TEA-001",
            "name": "抹茶ラテ",
            "url": "https://shop.example.jp/products/tea-001",
            "unit_price": 1280,
            "quantity": 1,
            # the first is in the cart, the second unknown, the fourth out of stock in the catalog
            "related_skus": ["TEA-001", "NO-SUCH-SKU", "CHASEN", "CHAWAN", "KOICHA"],
        }
    ]
    body = stack.cart_event(cart_id, email, t0, items=items)
    status, answer = stack.post_event(body, store=store_id, secret=secret.group(1))
    assert status == 202, answer

    stack.advance(2 * 3600 + 60)
    (first,) = stack.outbox(to=email)
    assert "あと1,720円のお買い上げで送料無料" in first["text"]  # 1,280円 of 3,000円
    assert "茶筅 百本立" not in first["text"], "only step 3 recommends"

    while stack.now() < t0 + timedelta(days=7, minutes=5):
        stack.advance(12 * 3600)
    mine = stack.outbox(to=email)
    assert len(mine) == 3, f"{[m['subject'] for m in mine]}\n{stack.log_text()[-3000:]}"
    third = mine[2]
    for part in (third["text"], third["html"]):
        assert "茶筅 百本立" in part and "880円" in part  # cheaper than the latte: a cross-sell
        assert "宇治抹茶 濃茶用" in part and "3,240円" in part  # pricier: an up-sell
        assert "茶巾 10枚" in part  # the catalog fills the third place
        assert "抹茶碗 黒楽" not in part  # out of stock in the catalog
        assert "よく一緒に購入されている商品" in part and "ワンランク上のおすすめ" in part
    assert "https://shop.example.jp/products/koicha" in third["html"]
    assert "「抹茶ラテ」をご検討中の方に" in third["text"]
