"""The v1 wire event: what parses, and what a store's engineer gets back when it does not (every bad field, once)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cartrecovery.domain.events import MAX_ITEMS, InvalidEvent, decode_json, parse_event
from cartrecovery.signing import sign, sign_shopify
from cartrecovery.usecases.receive import Rejected, receive_event, receive_shopify
from tests.fakes import World, cart_cleared, cart_updated, item_body, order_placed


def errors_of(body: Any) -> dict[str, str]:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(body)
    return {e.path: e.message for e in caught.value.errors}


# --- valid events -------------------------------------------------------------------------------------------


def test_the_contract_example_cart_updated_parses_with_exact_amounts() -> None:
    raw = """{
      "type": "cart.updated", "occurred_at": "2026-12-01T10:15:00+09:00",
      "customer": {"id": "u-123", "email": "taro@example.jp", "name": "山田 太郎", "locale": "ja",
                   "timezone": "Asia/Tokyo",
                   "marketing_consent": {"granted": true, "at": "2026-11-30T09:00:00+09:00",
                                         "source": "checkout-form"}},
      "cart": {"id": "c-789", "currency": "JPY",
               "items": [{"sku": "TEA-001", "name": "抹茶ラテ", "url": "https://shop.example.jp/products/tea-001",
                          "image_url": "https://shop.example.jp/img/tea-001.jpg", "unit_price": 1280.50,
                          "quantity": 2}],
               "total": 2561.00, "recovery_url": "https://shop.example.jp/cart/restore?t=opaque"},
      "some_future_field": {"ignored": true}
    }"""
    event = parse_event(decode_json(raw.encode()))

    assert event.type == "cart.updated"
    assert event.occurred_at == datetime(2026, 12, 1, 1, 15, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(hours=9)
    assert event.customer is not None and event.customer.email == "taro@example.jp"
    assert event.customer.consent is not None and event.customer.consent.granted is True
    assert event.cart is not None and event.cart.id == "c-789"
    (item,) = event.cart.items
    assert item.unit_price == Decimal("1280.50") and isinstance(item.unit_price, Decimal)
    assert item.quantity == 2 and item.in_stock is True
    assert event.cart.total == Decimal("2561.00")


def test_order_placed_and_cart_cleared_parse() -> None:
    order = parse_event(order_placed("2026-12-01T11:00:00Z", total=2560))
    assert order.type == "order.placed"
    assert order.order is not None
    assert (order.order.id, order.order.cart_id, order.order.total, order.order.currency) == (
        "o-1",
        "c-1",
        Decimal(2560),
        "JPY",
    )

    cleared = parse_event(cart_cleared("2026-12-01T11:00:00+09:00", "c-9"))
    assert cleared.type == "cart.cleared"
    assert cleared.cart is not None and cleared.cart.id == "c-9"


def test_an_order_without_a_cart_still_parses_when_it_names_the_customer() -> None:
    assert parse_event(order_placed("2026-12-01T11:00:00Z", cart_id=None, email="taro@example.jp")).order
    assert parse_event(order_placed("2026-12-01T11:00:00Z", cart_id=None, email=None, customer_id="u-1")).order
    assert set(errors_of(order_placed("2026-12-01T11:00:00Z", cart_id=None, email=None))) == {"order.cart_id"}


def test_an_order_may_name_its_cart_by_cart_id_and_order_cart_id_wins_over_it() -> None:
    body = order_placed("2026-12-01T11:00:00Z", cart_id=None, email=None)
    body["cart"] = {"id": "c-7"}
    order = parse_event(body).order
    assert order is not None and order.cart_id == "c-7"
    body["order"]["cart_id"] = "c-8"
    order = parse_event(body).order
    assert order is not None and order.cart_id == "c-8"


# --- invalid events: every problem in one answer -----------------------------------------------------------


def test_a_body_with_many_bad_fields_names_every_one_of_them() -> None:
    body = cart_updated("2026-12-01T10:15:00+09:00")
    body["customer"]["email"] = "not-an-address"
    body["customer"]["timezone"] = "Mars/Olympus"
    body["cart"]["currency"] = "yen"
    body["cart"]["recovery_url"] = "javascript:alert(1)"
    body["cart"]["items"] = [
        {**item_body(), "quantity": -1},
        {**item_body(), "unit_price": "1280", "url": "ftp://shop.example.jp/x"},
        {"sku": "TEA-3", "name": "ok", "url": "https://shop.example.jp/3", "unit_price": 10, "quantity": 1.5},
    ]

    errors = errors_of(body)

    assert set(errors) == {
        "customer.email",
        "customer.timezone",
        "cart.currency",
        "cart.recovery_url",
        "cart.items[0].quantity",
        "cart.items[1].unit_price",
        "cart.items[1].url",
        "cart.items[2].quantity",
    }
    assert all(message for message in errors.values())


@pytest.mark.parametrize("space", [" ", "\t", "\n", "\r", "\x0b", "\x1c", "\u00a0", "\u2003", "\u3000"])
def test_a_url_with_any_whitespace_in_it_is_refused(space: str) -> None:
    # Links go into emails as they are: a space (ASCII, no-break or ideographic) would break them there.
    body = cart_updated("2026-12-01T10:15:00+09:00")
    body["cart"]["recovery_url"] = f"https://shop.example.jp/cart{space}restore"
    body["cart"]["items"][0]["url"] = f"https://shop.example.jp/{space}tea"

    assert set(errors_of(body)) == {"cart.recovery_url", "cart.items[0].url"}
    assert parse_event(cart_updated("2026-12-01T10:15:00+09:00")).cart is not None  # no space, no error


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1/cart",  # urlsplit raises on the unclosed bracket: this once answered 503
        "https://[not-an-address]/cart",
        "https://shop.example.jp:99999/cart",  # no such port: reading it raises, as an email client would refuse it
        "https://shop.example.jp:https/cart",
    ],
)
def test_a_url_that_cannot_be_taken_apart_is_refused_not_an_error(url: str) -> None:
    body = cart_updated("2026-12-01T10:15:00+09:00")
    body["cart"]["recovery_url"] = url
    assert errors_of(body) == {"cart.recovery_url": "must be an absolute http(s) URL"}
    body["cart"]["recovery_url"] = "https://[2001:db8::1]:8443/cart"  # brackets and a port, done right
    assert parse_event(body).cart is not None


def test_the_api_answers_400_listing_every_bad_field_with_its_path() -> None:
    world = World.create(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    body = cart_updated("2026-12-01T10:15:00+09:00")
    body["cart"]["items"][0]["quantity"] = 0
    body["customer"]["email"] = "a b@example.jp"
    del body["cart"]["currency"]
    raw = json.dumps(body, ensure_ascii=False).encode()
    now = int(time.time())
    secret = world.store.webhook_secrets[0].secret
    headers = {
        "content-type": "application/json",
        "webhook-id": "msg-1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "msg-1", now, raw),
    }

    with pytest.raises(Rejected) as caught:
        receive_event(world.stores, world.ingest, world.store_id, headers, raw, float(now))

    assert caught.value.status == 400
    assert [e.path for e in caught.value.errors] == ["customer.email", "cart.currency", "cart.items[0].quantity"]
    assert world.carts.items == {} and world.events.items == {}  # an invalid event changes nothing


def signed(world: World, body: dict[str, Any], event_id: str = "msg-1") -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    now = int(time.time())
    secret = world.store.webhook_secrets[0].secret
    headers = {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, event_id, now, raw),
    }
    return headers, raw


def test_an_event_id_in_the_shopify_routes_key_space_is_refused() -> None:
    """Both routes' deliveries share the event log; had this been taken, Shopify's own delivery of the id
    ``1234`` would have been answered "duplicate" and its checkout dropped."""
    world = World.create(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    headers, raw = signed(world, cart_updated("2026-12-01T10:15:00+09:00"), "shopify:1234")

    with pytest.raises(Rejected) as caught:
        receive_event(world.stores, world.ingest, world.store_id, headers, raw, time.time())

    assert caught.value.status == 400
    assert [(e.path, e.message) for e in caught.value.errors] == [
        ("headers.webhook-id", "must not start with 'shopify:'")
    ]
    assert world.carts.items == {} and world.events.items == {}
    headers, raw = signed(world, cart_updated("2026-12-01T10:15:00+09:00"), "shop:1234")
    assert receive_event(world.stores, world.ingest, world.store_id, headers, raw, time.time()).status == "accepted"


def test_an_event_dated_more_than_a_day_ahead_is_refused_and_a_little_drift_is_not() -> None:
    # Business time is the system's clock (ManualClock here), not the signature's wall clock.
    world = World.create(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    headers, raw = signed(world, cart_updated("2026-12-02T10:15:00+09:00"))  # 24 h 15 min ahead
    with pytest.raises(Rejected) as caught:
        receive_event(world.stores, world.ingest, world.store_id, headers, raw, time.time())
    assert caught.value.status == 400
    assert [e.path for e in caught.value.errors] == ["occurred_at"]
    assert world.carts.items == {}

    headers, raw = signed(world, cart_updated("2026-12-01T10:30:00+09:00"), "msg-2")  # 30 min ahead: drift
    assert receive_event(world.stores, world.ingest, world.store_id, headers, raw, time.time()).status == "accepted"


def test_missing_type_and_time_are_both_reported() -> None:
    assert set(errors_of({"cart": {"id": "c-1"}})) == {"type", "occurred_at"}


@pytest.mark.parametrize("body", [[], "cart.updated", None, 3])
def test_a_body_that_is_not_an_object_is_one_error(body: Any) -> None:
    assert errors_of(body) == {"": "body must be a JSON object"}


def test_an_unknown_type_is_rejected_and_its_required_parts_are_still_checked() -> None:
    errors = errors_of({"type": "cart.abandoned", "occurred_at": "2026-12-01T10:15:00Z"})
    assert set(errors) == {"type"}
    assert "cart.abandoned" in errors["type"] and "cart.updated" in errors["type"]

    assert set(errors_of({"type": "order.placed", "occurred_at": "2026-12-01T10:15:00Z"})) == {"order"}
    assert set(errors_of({"type": "cart.updated", "occurred_at": "2026-12-01T10:15:00Z"})) == {"cart"}
    assert set(errors_of({"type": "customer.unsubscribed", "occurred_at": "2026-12-01T10:15:00Z"})) == {
        "customer.email"
    }


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-12-01T10:15:00",  # no offset: ambiguous
        "2026-12-01",
        "yesterday",
        "2026-13-01T10:15:00Z",
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "",
        # ISO 8601 forms that are not RFC 3339 (Python's fromisoformat takes them all):
        "20261201T101500+0900",
        "2026-W49-2T10:15:00+09:00",
        "2026-12-01T10Z",
        "2026-12-01T10:15+09:00",
        "2026-12-01T10:15:00+09",
        "2026-12-01T10:15:00+09:00:30",
        "2026-12-01T10:15:00Z\n",
        "２０２６-12-01T10:15:00Z",
        "9999-12-31T23:59:60Z",  # the leap second after the last datetime: once a 503 (an overflow)
    ],
)
def test_bad_timestamps_are_rejected(stamp: str) -> None:
    assert set(errors_of(cart_cleared(stamp))) == {"occurred_at"}


@pytest.mark.parametrize(
    ("stamp", "instant"),
    [
        ("2026-12-01T10:15:00+09:00", datetime(2026, 12, 1, 1, 15, tzinfo=UTC)),
        ("2026-12-01t01:15:00z", datetime(2026, 12, 1, 1, 15, tzinfo=UTC)),
        ("2026-12-01 10:15:00.250+09:00", datetime(2026, 12, 1, 1, 15, 0, 250_000, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=UTC)),  # a leap second: the next second
        ("2026-12-01T01:15:00-00:00", datetime(2026, 12, 1, 1, 15, tzinfo=UTC)),
    ],
)
def test_rfc_3339_timestamps_are_read_as_their_instant(stamp: str, instant: datetime) -> None:
    assert parse_event(cart_cleared(stamp)).occurred_at == instant


@pytest.mark.parametrize(
    "address",
    [
        "taro@example.jp\n",  # "$" matched before a final line break
        "ta\x00ro@example.jp",
        "ta\x07ro@example.jp",
        "a\u202e@example.jp",
        "太郎@example.jp",  # SES has no SMTPUTF8: the part before the @ must be ASCII
        "taro@例え.jp",  # a domain in Unicode: its xn-- form is the address
        "taro@example.jp.",
        "taro@-example.jp",
        "taro@example",
        'a"b@example.jp',
    ],
)
def test_addresses_ses_cannot_send_to_are_refused(address: str) -> None:
    assert errors_of(cart_updated("2026-12-01T10:15:00Z", email=address)) == {
        "customer.email": "must be an email address"
    }


@pytest.mark.parametrize(
    "address",
    ["taro@example.jp", "Taro.Yamada+cart@Example.JP", "taro..yamada.@docomo.ne.jp", "o'brien@xn--r8jz45g.jp"],
)
def test_addresses_as_shops_have_them_are_accepted(address: str) -> None:
    event = parse_event(cart_updated("2026-12-01T10:15:00Z", email=address))
    assert event.customer is not None and event.customer.email == address


@pytest.mark.parametrize("locale", ["ja\n", "en-US\n", "ja\x00"])
def test_a_language_tag_with_anything_after_it_is_refused(locale: str) -> None:
    body = cart_updated("2026-12-01T10:15:00Z")
    body["customer"]["locale"] = locale
    assert set(errors_of(body)) == {"customer.locale"}


@pytest.mark.parametrize("url", ["https://:80/", "https://@/", "http://:/x", "https://user@/cart", "https:///cart"])
def test_a_url_without_a_host_is_refused(url: str) -> None:
    body = cart_updated("2026-12-01T10:15:00Z")
    body["cart"]["recovery_url"] = url
    assert errors_of(body) == {"cart.recovery_url": "must be an absolute http(s) URL"}


def test_a_timestamp_must_be_a_string_and_consent_times_are_checked_too() -> None:
    assert set(errors_of(cart_cleared(1764551700))) == {"occurred_at"}  # type: ignore[arg-type]
    body = cart_updated("2026-12-01T10:15:00Z")
    body["customer"]["marketing_consent"]["at"] = "2026-12-01 10:15"
    assert set(errors_of(body)) == {"customer.marketing_consent.at"}


def test_timestamps_with_any_offset_compare_on_the_instant() -> None:
    tokyo = parse_event(cart_cleared("2026-12-01T10:15:00+09:00")).occurred_at
    utc = parse_event(cart_cleared("2026-12-01T01:15:00Z")).occurred_at
    assert tokyo == utc


def test_size_limits() -> None:
    too_many = cart_updated("2026-12-01T10:15:00Z", items=[item_body(f"S{i}") for i in range(MAX_ITEMS + 1)])
    assert set(errors_of(too_many)) == {"cart.items"}
    assert parse_event(cart_updated("2026-12-01T10:15:00Z", items=[item_body(f"S{i}") for i in range(MAX_ITEMS)]))

    long_id = cart_cleared("2026-12-01T10:15:00Z", "c" * 201)
    assert set(errors_of(long_id)) == {"cart.id"}

    body = cart_updated("2026-12-01T10:15:00Z")
    body["cart"]["items"][0]["name"] = "x" * 501
    body["cart"]["items"][0]["quantity"] = 100_001
    body["cart"]["total"] = 10**13
    body["cart"]["recovery_url"] = "https://shop.example.jp/" + "a" * 2048
    assert set(errors_of(body)) == {
        "cart.items[0].name",
        "cart.items[0].quantity",
        "cart.total",
        "cart.recovery_url",
    }


def test_bodies_that_are_not_json_or_use_non_finite_numbers_are_invalid() -> None:
    for raw in (b"{not json", b'{"total": NaN}', b"\xff\xfe", b'{"total": Infinity}'):
        with pytest.raises(InvalidEvent) as caught:
            decode_json(raw)
        assert [e.path for e in caught.value.errors] == [""]


def test_half_a_surrogate_pair_is_refused_in_every_text_field_and_a_whole_pair_is_kept() -> None:
    # JSON may escape one half of a UTF-16 pair on its own; json.loads keeps it as a code point that no UTF-8
    # text holds, so the cart's write or its email would fail on it long after a 202.
    body = cart_updated("2026-12-01T10:15:00+09:00")
    body["customer"]["name"] = "山田 LONE"
    body["cart"]["id"] = "c-LONE"
    body["cart"]["items"][0]["sku"] = "LONETEA"
    body["cart"]["items"][0]["related_skus"] = ["CUP-1", "CUP-LONE"]
    raw = json.dumps(body, ensure_ascii=False).replace("LONE", "\\udc00").encode()

    errors = errors_of(decode_json(raw))
    assert set(errors) == {"customer.name", "cart.id", "cart.items[0].sku", "cart.items[0].related_skus[1]"}
    assert errors["cart.id"].endswith("holds an unpaired surrogate (a lone \\ud800-\\udfff escape)")

    body["cart"]["items"][0]["name"] = "抹茶ラテ 🍵"
    escaped = json.dumps(cart_updated("2026-12-01T10:15:00+09:00", items=[body["cart"]["items"][0]]))
    assert "\\ud83c\\udf75" in escaped  # a whole pair, as an ASCII-only JSON encoder writes it
    event = parse_event(decode_json(escaped.encode()))
    assert event.cart is not None and event.cart.items[0].name == "抹茶ラテ 🍵"


def test_booleans_are_not_numbers_and_amounts_are_never_negative() -> None:
    body = cart_updated("2026-12-01T10:15:00Z")
    body["cart"]["items"][0]["quantity"] = True
    body["cart"]["items"][0]["unit_price"] = -1
    body["cart"]["total"] = False
    assert set(errors_of(body)) == {"cart.items[0].quantity", "cart.items[0].unit_price", "cart.total"}


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("123456789.000000000000000000000", "123456789"),  # 9 integer digits and 21 places: 30 digits
        ("999999999999." + "0" * 25, "999999999999"),
        ("1000000000000." + "0" * 400, "1000000000000"),
        ("12345678901.123456789012345678900", "12345678901.1234567890123456789"),  # 20 places kept exactly
        ("0." + "0" * 40, "0"),
    ],
)
def test_trailing_zeros_past_twenty_places_are_dropped_exactly_at_any_size(text: str, kept: str) -> None:
    raw = _with_total(text)
    event = parse_event(decode_json(raw))
    assert event.cart is not None and event.cart.total == Decimal(kept)
    assert event.cart.total.as_tuple().exponent >= -20  # stored with at most 20 places


@pytest.mark.parametrize(
    "text", ["12345678901.123456789012345678901", "1." + "0" * 400 + "1", "0.000000000000000000001"]
)
def test_a_nonzero_digit_past_twenty_places_is_a_400_however_long_the_number(text: str) -> None:
    assert errors_of(decode_json(_with_total(text))) == {"cart.total": "has more than 20 decimal places"}


def _with_total(number_text: str) -> bytes:
    """A cart event whose ``cart.total`` is the JSON number written exactly as ``number_text``."""
    body = cart_updated("2026-12-01T10:15:00Z")
    body["cart"]["total"] = "TOTAL"
    return json.dumps(body).replace('"TOTAL"', number_text).encode()


def test_a_shopify_checkout_taken_without_unfit_fields_says_which_in_the_log_and_never_their_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World.create(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    line = {"sku": "TEA-001", "title": "抹茶", "price": "1280", "quantity": 1}
    checkout = {
        "token": "t-1",
        "email": "山田@例え",
        "updated_at": "2026-12-01T10:00:00+09:00",
        "currency": "JPY",
        "abandoned_checkout_url": "https://shop.example.jp/checkouts/t-1/recover",
        "line_items": [line, {**line, "quantity": 0}],
    }
    raw = json.dumps(checkout).encode()
    secret = world.store.shopify_secrets[0].secret
    headers = {
        "content-type": "application/json",
        "x-shopify-topic": "checkouts/create",
        "x-shopify-hmac-sha256": sign_shopify(secret, raw),
        "x-shopify-webhook-id": "w-1",
    }

    with caplog.at_level("WARNING"):
        result = receive_shopify(world.stores, world.ingest, world.store_id, headers, raw, time.time())

    assert result is not None and result.status == "accepted"
    cart = world.cart("t-1")
    assert (len(cart.items), cart.customer.email) == (1, None)
    assert caplog.messages == [
        "shopify delivery taken without fields v1 cannot hold: customer.email, cart.items[1].quantity"
    ]
    assert "山田" not in caplog.text
