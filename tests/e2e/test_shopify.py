"""Shopify webhooks as Shopify delivers them, over the local stack's real HTTP (``docs/integration.md``,
"Shopify"): a checkout left alone is recovered by email with its items and recovery link, an order for it
(``orders/create``, or the checkout completing) or its deletion stops the flow, a shopper who did not accept
marketing gets nothing, and what cannot be mapped is a precise 400 or an ``ignored`` 200, never a 5xx."""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.e2e

LocalStack = Any  # the fixture's class lives in conftest.py

HOUR = 3600
TOKYO = ZoneInfo("Asia/Tokyo")


def now(stack: LocalStack) -> str:
    """The stack's virtual time as Shopify writes times (``2026-12-01T10:00:00+09:00``)."""
    return str(stack.now().astimezone(TOKYO).isoformat(timespec="seconds"))


def checkout(stack: LocalStack, **fields: Any) -> dict[str, Any]:
    """A ``checkouts/create`` payload in the shape of Shopify's (fields trimmed to those the mapping reads
    plus a few it must ignore), made now on the stack's clock for a fresh shopper."""
    token = uuid.uuid4().hex
    at = now(stack)
    payload = {
        "id": int(uuid.uuid4().int % 10**13),
        "token": token,
        "cart_token": uuid.uuid4().hex,
        "email": stack.unique_email("shopify"),
        "created_at": at,
        "updated_at": at,
        "buyer_accepts_marketing": True,
        "currency": "JPY",
        "presentment_currency": "JPY",
        "customer_locale": "ja",
        "total_price": "3840",
        "subtotal_price": "3840",
        "abandoned_checkout_url": f"https://matcha.example.jp/1234/checkouts/{token}/recover?key=k{token[:8]}",
        "line_items": [
            {
                "title": "宇治抹茶ラテ",
                "variant_title": "250g",
                "sku": "TEA-001",
                "variant_id": 4401,
                "product_id": 801,
                "price": "1280",
                "quantity": 3,
            }
        ],
        "customer": {"id": int(uuid.uuid4().int % 10**12), "first_name": "太郎", "last_name": "山田"},
        "shipping_lines": [],
        "note_attributes": [],
    }
    return {**payload, **fields}


def order(stack: LocalStack, of: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The ``orders/create`` payload for the checkout ``of``."""
    at = now(stack)
    return {
        "id": int(uuid.uuid4().int % 10**13),
        "admin_graphql_api_id": "gid://shopify/Order/1",
        "checkout_token": of["token"],
        "email": of["email"],
        "created_at": at,
        "updated_at": at,
        "currency": "JPY",
        "total_price": of["total_price"],
        "customer": of["customer"],
        **fields,
    }


def accepted(stack: LocalStack, payload: dict[str, Any], topic: str) -> None:
    status, body = stack.post_shopify(payload, topic)
    assert status == 202 and body["status"] == "accepted", body


def started(stack: LocalStack, **fields: Any) -> dict[str, Any]:
    """A checkout created at 10:00 Tokyo (clear of quiet hours for the hours that follow), accepted."""
    stack.advance_to_local_time(10)
    created = checkout(stack, **fields)
    accepted(stack, created, "checkouts/create")
    return created


def test_a_checkout_left_alone_is_recovered_with_its_items_and_link(local_stack: LocalStack) -> None:
    stack = local_stack
    created = started(stack)
    stack.advance(HOUR)
    # The shopper came back and changed the quantity: the timer counts from this update.
    updated = {**created, "updated_at": now(stack), "total_price": "2560"}
    updated["line_items"] = [{**created["line_items"][0], "quantity": 2}]
    accepted(stack, updated, "checkouts/update")

    stack.advance(HOUR + 30 * 60)
    assert stack.outbox(to=created["email"]) == []  # 1.5 h after the update: not yet
    stack.advance(HOUR)

    (message,) = stack.outbox(to=created["email"])
    assert "宇治抹茶ラテ" in message["html"] and "250g" in message["html"]
    assert created["abandoned_checkout_url"].replace("&", "&amp;") in message["html"]
    assert "2,560" in message["text"]  # the updated total, in yen
    cart = stack.cart_view(created["token"])  # keyed by the checkout's token
    assert (cart["items"], cart["total"], cart["currency"]) == (1, 2560, "JPY")
    assert (cart["customer"]["consent"], cart["customer"]["locale"]) == (True, "ja")


def test_an_order_for_the_checkout_stops_the_flow_and_a_replay_changes_nothing(local_stack: LocalStack) -> None:
    stack = local_stack
    created = started(stack)
    stack.advance(HOUR)
    placed = order(stack, created)
    webhook_id = str(uuid.uuid4())
    assert stack.post_shopify(placed, "orders/create", webhook_id)[0] == 202
    assert stack.post_shopify(placed, "orders/create", webhook_id) == (200, {"status": "duplicate"})

    stack.advance(3 * 24 * HOUR)

    assert stack.outbox(to=created["email"]) == []
    cart = stack.cart_view(created["token"])
    assert cart["status"] == "ordered" and cart["timer"] is None
    assert (cart["decisions"][-1]["action"], cart["decisions"][-1]["reason"]) == ("skipped", "cart_ordered")


def test_a_checkout_that_completes_is_an_order(local_stack: LocalStack) -> None:
    stack = local_stack
    created = started(stack)
    stack.advance(30 * 60)
    done = now(stack)
    accepted(stack, {**created, "updated_at": done, "completed_at": done}, "checkouts/update")

    stack.advance(3 * HOUR)

    assert stack.outbox(to=created["email"]) == []
    assert stack.cart_view(created["token"])["status"] == "ordered"


def test_a_deleted_checkout_sends_nothing(local_stack: LocalStack) -> None:
    stack = local_stack
    created = started(stack)
    stack.advance(HOUR)
    accepted(stack, {"id": created["id"], "token": created["token"], "updated_at": now(stack)}, "checkouts/delete")

    stack.advance(3 * HOUR)

    assert stack.outbox(to=created["email"]) == []
    assert stack.cart_view(created["token"])["status"] == "cleared"


def test_a_shopper_who_did_not_accept_marketing_gets_nothing(local_stack: LocalStack) -> None:
    stack = local_stack
    created = started(stack, buyer_accepts_marketing=False)

    stack.advance(3 * HOUR)

    assert stack.outbox(to=created["email"]) == []


def test_an_order_after_the_email_is_a_recovered_order(local_stack: LocalStack) -> None:
    stack = local_stack
    created = started(stack)
    stack.advance(2 * HOUR + 60)
    assert len(stack.outbox(to=created["email"])) == 1
    before = stack.report()

    accepted(stack, order(stack, created), "orders/create")

    delta = stack.report_delta(before, stack.report())
    assert delta["converted"] == 1 and float(delta["revenue"]) == 3840


@pytest.mark.parametrize(
    ("topic", "payload", "answer"),
    [
        ("products/update", {"id": 801, "title": "宇治抹茶ラテ"}, (200, {"status": "ignored"})),
        # A POS order: no checkout, no email, no customer: nothing it could stop or convert.
        (
            "orders/create",
            {"id": 5501, "created_at": "2026-12-01T10:00:00+09:00", "total_price": "500"},
            (200, {"status": "ignored"}),
        ),
    ],
    ids=["other-topic", "unmatchable-order"],
)
def test_what_is_not_ours_is_acknowledged_so_shopify_keeps_the_subscription(
    local_stack: LocalStack, topic: str, payload: dict[str, Any], answer: tuple[int, Any]
) -> None:
    assert local_stack.post_shopify(payload, topic) == answer


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"token": None, "id": None}, "cart.id"),
        ({"currency": None, "presentment_currency": None}, "cart.currency"),
    ],
    ids=["no-token", "no-currency"],
)
def test_a_checkout_that_cannot_make_a_cart_is_a_400_naming_the_field(
    local_stack: LocalStack, change: dict[str, Any], path: str
) -> None:
    stack = local_stack
    payload = {k: v for k, v in {**checkout(stack), **change}.items() if v is not None}
    status, body = stack.post_shopify(payload, "checkouts/create")

    assert status == 400, body
    assert [error["path"] for error in body["errors"]] == [path], body  # only what cannot be done without


@pytest.mark.parametrize(
    ("change", "kept"),
    [
        ({"line_items": [{"title": "宇治抹茶ラテ", "price": "-1280", "quantity": 1}]}, {"items": 0}),
        ({"line_items": [{"title": "宇治抹茶ラテ", "price": "1280", "quantity": -1}]}, {"items": 0}),
        ({"email": "not an address", "customer": {}}, {"items": 1, "emailable": False}),
    ],
    ids=["negative-price", "negative-quantity", "bad-email"],
)
def test_a_checkout_with_a_line_or_address_v1_refuses_is_kept_without_it(
    local_stack: LocalStack, change: dict[str, Any], kept: dict[str, Any]
) -> None:
    stack = local_stack
    payload = {**checkout(stack), **change}
    accepted(stack, payload, "checkouts/create")

    cart = stack.cart_view(payload["token"])
    assert {"items": cart["items"], "emailable": cart["customer"]["email"] is not None} == {"emailable": True, **kept}


def test_a_body_that_is_not_json_or_holds_nan_is_a_400(local_stack: LocalStack) -> None:
    stack = local_stack
    for raw in (b"{not json", b'{"token": "t-1", "total_price": NaN}'):
        status, body = stack.post_shopify(raw, "checkouts/create")
        assert status == 400, body
        assert body["errors"][0]["message"].startswith("body is not valid JSON"), body


def test_a_webhook_id_too_long_to_be_a_key_is_a_400_and_a_uuid_is_accepted(local_stack: LocalStack) -> None:
    # The event log keys deliveries by their id; DynamoDB refuses a key over 1,024 bytes, which was a 503
    # that Shopify would retry in vain.
    stack = local_stack
    status, body = stack.post_shopify(checkout(stack), "checkouts/create", webhook_id="x" * 1100)
    assert status == 400, body
    assert body["errors"] == [{"path": "headers.x-shopify-webhook-id", "message": "must be at most 256 bytes"}]

    status, body = stack.post_shopify(checkout(stack), "checkouts/create", webhook_id="é" * 129)  # 258 bytes
    assert status == 400, body

    accepted_id = str(uuid.uuid4())
    status, body = stack.post_shopify(checkout(stack), "checkouts/create", webhook_id=accepted_id)
    assert (status, body) == (202, {"status": "accepted", "event_id": f"shopify:{accepted_id}"})


def test_a_checkout_past_v1s_limits_is_kept_without_what_v1_cannot_hold(local_stack: LocalStack) -> None:
    """Shopify retries a refused delivery for hours and may then remove the webhook: one odd checkout must
    not be a 400. The cart is kept with its first 100 lines, less a line v1 cannot represent."""
    stack = local_stack
    line = checkout(stack)["line_items"][0]
    lines = [{**line, "sku": f"TEA-{n:03}", "title": f"抹茶 {n}"} for n in range(120)]
    lines[1]["price"] = "free"  # not an amount: this line is left out
    created = started(stack, line_items=lines)

    cart = stack.cart_view(created["token"])
    assert cart["items"] == 99  # lines 0 and 2..99 of the first 100
    stack.advance(2 * HOUR + 60)
    (message,) = stack.outbox(to=created["email"])
    listed = [line.removeprefix("・") for line in message["text"].splitlines() if line.startswith("・")]
    assert listed[:3] == ["抹茶 0", "抹茶 2", "抹茶 3"]


def test_a_checkout_with_an_address_v1_refuses_is_kept_and_never_emailed(local_stack: LocalStack) -> None:
    stack = local_stack
    created = started(stack, email="山田@例え")  # Shopify took it; no address v1 can send to

    cart = stack.cart_view(created["token"])
    assert cart["customer"]["email"] is None and cart["items"] == 1
    stack.advance(2 * HOUR + 60)
    assert stack.cart_view(created["token"])["decisions"][-1]["reason"] == "no_email"
