"""Single-use coupons end to end in local mode: a store created and given a pool of codes with the operator
CLI (``--local``), two shoppers who each get a code of their own with the auto-apply link in the coupon
email, and a shopper who clicked the first email and so gets no coupon email, only the later one."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

LocalStack = Any  # the fixture's class lives in conftest.py; tests reach everything through the fixture

HOUR = 3600
DAY = 24 * HOUR
CODES = ["MATCHA-7K2Q", "MATCHA-M9XD", "MATCHA-P4LA", "MATCHA-Z8RW", "MATCHA-B3NC"]
APPLY = "https://shop.example.jp/discount/{code}?redirect=/cart"


def run_cli(stack: LocalStack, *argv: str) -> str:
    """``cartrecovery --local ...``, which must succeed; its output."""
    done = stack.cli(*argv)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def pool_store(local_stack: LocalStack) -> dict[str, str]:
    """A store whose coupon is a pool with an auto-apply link, held back from shoppers who clicked step 1."""
    store_id = local_stack.new_id("pool")
    settings = local_stack.workdir / f"{store_id}.json"
    settings.write_text(
        json.dumps(
            {
                "legal": {"address": "京都府京都市下京区 1-2-3", "contact": "support@shop.example.jp"},
                "coupon": {
                    "kind": "pool",
                    "description": "ご注文金額から10%オフ",
                    "valid_days": 7,
                    "apply_url": APPLY,
                    "only_if_not_clicked": True,
                },
            }
        ),
        encoding="utf-8",
    )
    created = run_cli(
        local_stack,
        "store",
        "create",
        "--id",
        store_id,
        "--name",
        "抹茶堂 本店",
        "--sender-email",
        "shop@pool.cartrecovery.test",
        "--settings",
        str(settings),
    )
    secret = re.search(r"webhook secret \(Standard Webhooks\): (whsec_\S+)", created)
    assert secret, created
    codes = local_stack.workdir / f"{store_id}-codes.csv"
    codes.write_text("code\n" + "\n".join(CODES) + "\n", encoding="utf-8")
    uploaded = run_cli(local_stack, "coupons", "upload", "--store", store_id, str(codes))
    assert f"added {len(CODES)} code(s)" in uploaded
    return {"store_id": store_id, "secret": secret.group(1)}


def start_cart(stack: LocalStack, store: dict[str, str]) -> tuple[str, str, datetime]:
    cart_id, email = stack.new_id(), stack.unique_email()
    at = stack.now()
    status, body = stack.post_event(
        stack.cart_event(cart_id, email, at), secret=store["secret"], store=store["store_id"]
    )
    assert status == 202, body
    return cart_id, email, at


def test_two_shoppers_get_two_different_pool_codes_with_the_auto_apply_link(
    local_stack: LocalStack, pool_store: dict[str, str]
) -> None:
    stack = local_stack
    stack.advance_to_local_time(10)
    first_cart, first, t0 = start_cart(stack, pool_store)
    second_cart, second, _ = start_cart(stack, pool_store)

    stack.advance_until(t0 + timedelta(days=3, minutes=2))

    codes = []
    for address in (first, second):
        mine = stack.outbox(to=address)
        assert len(mine) == 2, [m["subject"] for m in mine]
        assert not any(code in mine[0]["text"] for code in CODES)  # step 1 carries no coupon
        shown = [code for code in CODES if code in mine[1]["text"]]
        assert len(shown) == 1, mine[1]["text"]
        link = APPLY.format(code=shown[0])
        assert link in mine[1]["text"] and f'href="{link}"' in mine[1]["html"]
        assert "クーポンを使って購入する" in mine[1]["html"]
        codes.append(shown[0])
    assert codes[0] != codes[1]
    for cart_id in (first_cart, second_cart):
        steps = stack.cart(cart_id, store=pool_store["store_id"])["steps"]
        assert steps["cart_recovery#2"]["status"] == "sent"


def test_a_shopper_who_clicked_step_one_gets_no_coupon_email_but_step_three(
    local_stack: LocalStack, pool_store: dict[str, str]
) -> None:
    stack = local_stack
    stack.advance_to_local_time(10)
    cart_id, clicker, t0 = start_cart(stack, pool_store)
    stack.advance_until(t0 + timedelta(hours=2, minutes=2))
    (step_one,) = stack.outbox(to=clicker)
    clicked = stack.ses(step_one["message_id"], "click", url=f"https://shop.example.jp/cart/restore?cart={cart_id}")
    assert clicked.status == 200, clicked.text

    stack.advance_until(t0 + timedelta(days=3, minutes=2))

    assert len(stack.outbox(to=clicker)) == 1, "the coupon email is held back from a shopper who clicked"
    cart = stack.cart(cart_id, store=pool_store["store_id"])
    assert cart["steps"]["cart_recovery#2"]["status"] == "skipped"
    assert cart["steps"]["cart_recovery#2"]["reason"] == "clicked_earlier"
    assert cart["timer"] is not None and cart["timer"]["step"] == 3  # the flow goes on

    stack.advance_until(t0 + timedelta(days=7, minutes=2))

    mine = stack.outbox(to=clicker)
    assert len(mine) == 2
    assert not any(code in mine[1]["text"] for code in CODES)
    assert stack.cart(cart_id, store=pool_store["store_id"])["steps"]["cart_recovery#3"]["status"] == "sent"


def test_opening_the_unsubscribe_page_is_no_click_and_holds_no_coupon_back(
    local_stack: LocalStack, pool_store: dict[str, str]
) -> None:
    """A shopper who opens the unsubscribe page from step 1 and thinks better of it: SES would report the
    link's click (a store's own footer may track it), but it is no interest in the shop. It counts no
    click, and the coupon email still comes."""
    stack = local_stack
    stack.advance_to_local_time(10)
    cart_id, shopper, t0 = start_cart(stack, pool_store)
    stack.advance_until(t0 + timedelta(hours=2, minutes=2))
    (step_one,) = stack.outbox(to=shopper)
    assert f'<a href="{stack.unsubscribe_url(step_one)}" ses:no-track' in step_one["html"]  # SES leaves it be
    before = stack.report(store=pool_store["store_id"])
    answer = stack.ses(step_one["message_id"], "click", url=stack.unsubscribe_url(step_one))
    assert answer.status == 200, answer.text
    assert stack.report_delta(before, stack.report(store=pool_store["store_id"]))["clicked"] == 0

    stack.advance_until(t0 + timedelta(days=3, minutes=2))
    assert len(stack.outbox(to=shopper)) == 2, "the coupon email was held back by a click on the unsubscribe link"
    assert stack.cart(cart_id, store=pool_store["store_id"])["steps"]["cart_recovery#2"]["status"] == "sent"
