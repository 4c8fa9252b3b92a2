"""Coupons: the settings a store gives (pool or store-wide code, auto-apply link, escalation), reading an
uploaded file of codes, which code a cart's coupon email shows, and holding the coupon email back from a
shopper who clicked the email before it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cartrecovery.clock import ManualClock, isoformat
from cartrecovery.domain.cart import SENT, SKIPPED
from cartrecovery.domain.store import Coupon, StoreSettings
from cartrecovery.ports import SendThrottled
from cartrecovery.usecases.coupons import InvalidCodes, parse_codes, upload_codes
from cartrecovery.usecases.stores import InvalidStore, create_store
from cartrecovery.usecases.track import RecordSesEvent
from tests.fakes import FakeCouponPool, FakeStores, World, cart_updated, order_placed, store_settings

START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
ABANDONED = "2026-12-01T10:00:00+09:00"
APPLY = "https://shop.example.jp/discount/{code}?redirect=/cart"
POOL = Coupon("", "10%オフ", kind="pool", apply_url=APPLY)
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 "
    "Edg/125.0.2535.85"
)


def world_with(coupon: Coupon | None, codes: tuple[str, ...] = ()) -> World:
    world = World.create(START, store_settings(coupon=coupon))
    world.coupons.add_codes(world.store_id, list(codes), START)
    return world


def abandon(world: World, *cart_ids: str) -> None:
    for index, cart_id in enumerate(cart_ids):
        world.send(cart_updated(ABANDONED, cart_id=cart_id, email=f"shopper{index}@example.jp"))


def run_until(world: World, days: float) -> list[Any]:
    world.advance_to(START + timedelta(days=days))
    return world.fire_due()


def step_two_emails(world: World) -> dict[str, Any]:
    """Step 2 emails by recipient (the tags say which step an email is)."""
    return {e.to: e for e in world.mailer.sent if e.tags["step"] == "2"}


# --- settings -----------------------------------------------------------------------------------------------


def test_a_store_saved_before_pools_keeps_its_store_wide_coupon() -> None:
    data = store_settings().to_dict()
    data["coupon"] = {"code": "MATCHA10", "description": "10%オフ", "terms": "", "valid_days": 7}

    coupon = StoreSettings.from_dict(data).coupon

    assert coupon == Coupon("MATCHA10", "10%オフ", "", 7)
    assert (coupon.kind, coupon.apply_url, coupon.only_if_not_clicked) == ("shared", "", False)


def test_pool_settings_survive_the_round_trip_through_storage() -> None:
    settings = store_settings(coupon=dataclasses.replace(POOL, code="FALLBACK5", only_if_not_clicked=True))

    assert StoreSettings.from_dict(settings.to_dict()).coupon == settings.coupon


@pytest.mark.parametrize(
    ("coupon", "message"),
    [
        ({"code": "X", "description": "d", "apply_url": "http://shop.example.jp/d/{code}"}, "https"),
        ({"code": "X", "description": "d", "apply_url": "https://shop.example.jp/discount"}, "{code}"),
        ({"code": "X", "description": "d", "apply_url": "/discount/{code}"}, "https"),
        ({"code": "X", "description": "d", "apply_url": "https://{code}.example.jp/"}, "after the host"),
        ({"code": "X", "description": "d", "kind": "lottery"}, "kind"),
        ({"description": "d"}, "needs a code"),
    ],
)
def test_creating_a_store_with_a_bad_coupon_is_refused(coupon: dict[str, Any], message: str) -> None:
    data = {"store_id": "shop-2", "name": "Shop", "sender_email": "s@example.jp", "coupon": coupon}

    with pytest.raises(InvalidStore, match="coupon") as raised:
        create_store(FakeStores(), data, ManualClock(START))

    assert message in str(raised.value)


def test_the_code_is_url_encoded_into_the_apply_link() -> None:
    assert POOL.apply_link("A B/&?=1") == "https://shop.example.jp/discount/A%20B%2F%26%3F%3D1?redirect=/cart"
    assert Coupon("X", "d").apply_link("X") is None


# --- reading an upload --------------------------------------------------------------------------------------


def test_one_code_per_line_skips_blank_lines_and_a_header_and_keeps_each_code_once() -> None:
    parsed = parse_codes("\ufeffcode\nAAA-1\n\n  BBB-2  \nAAA-1\nCCC-3\n")

    assert parsed.codes == ["AAA-1", "BBB-2", "CCC-3"]
    assert parsed.duplicates == ["AAA-1"]
    assert parsed.header == "code"


def test_a_csv_export_gives_its_first_column() -> None:
    parsed = parse_codes('coupon_code,discount,expires\r\nAAA-1,10%,2026-12-31\r\n"BBB-2",10%,2026-12-31\r\n')

    assert parsed.codes == ["AAA-1", "BBB-2"] and parsed.header == "coupon_code"


def test_a_line_that_cannot_be_a_code_rejects_the_file_naming_the_line() -> None:
    with pytest.raises(InvalidCodes) as raised:
        parse_codes("AAA-1\nBBB 2\n" + "C" * 65 + "\n")

    assert raised.value.problems == [
        "line 2: 'BBB 2' contains spaces or control characters",
        "line 3: longer than 64 characters",
    ]


def test_a_line_the_csv_reader_refuses_rejects_the_file_naming_the_line() -> None:
    # A field over the csv module's limit raised csv.Error out of the CLI as a traceback.
    with pytest.raises(InvalidCodes) as raised:
        parse_codes("code\nAAA-1\n" + "C" * 200_000 + "\n")

    assert raised.value.problems == ["line 3: field larger than field limit (131072)"]


def test_an_upload_adds_only_codes_not_yet_in_the_pool() -> None:
    stores, pool = FakeStores(), FakeCouponPool()
    stores.create(World.create(START).store)
    upload_codes(stores, pool, "shop-1", "AAA-1\nBBB-2\n", START)

    again = upload_codes(stores, pool, "shop-1", "BBB-2\nCCC-3\nCCC-3\n", START)

    assert (again.added, again.already_in_pool, again.duplicates) == (1, ["BBB-2"], ["CCC-3"])
    assert pool.codes["shop-1"] == ["AAA-1", "BBB-2", "CCC-3"]
    assert (again.total, again.left) == (3, 3)


# --- handing out ------------------------------------------------------------------------------------------


def test_each_cart_gets_its_own_pool_code_and_auto_apply_link_in_step_two_only() -> None:
    world = world_with(POOL, ("AAA-1", "BBB-2", "CCC-3"))
    abandon(world, "c-1", "c-2")

    run_until(world, 1)
    assert len(world.mailer.sent) == 2 and world.coupons.hand_out_calls == 0  # step 1 takes no code
    run_until(world, 3)

    emails = step_two_emails(world)
    assert set(emails) == {"shopper0@example.jp", "shopper1@example.jp"}
    shown = {to: next(c for c in ("AAA-1", "BBB-2") if c in e.text) for to, e in emails.items()}
    assert sorted(shown.values()) == ["AAA-1", "BBB-2"]
    for to, email in emails.items():
        link = f"https://shop.example.jp/discount/{shown[to]}?redirect=/cart"
        assert link in email.text and f'href="{link}"' in email.html
    assert world.coupons.stats(world.store_id).left == 1


def test_a_repeated_firing_of_the_coupon_step_shows_the_same_code_and_takes_no_other() -> None:
    world = world_with(POOL, ("AAA-1", "BBB-2"))
    abandon(world, "c-1")
    run_until(world, 1)
    world.mailer.fail_with = SendThrottled()

    (throttled,) = run_until(world, 3)
    world.mailer.fail_with = None
    (retried,) = run_until(world, 3.01)

    assert (throttled.action, retried.action) == ("throttled", "sent")
    assert "AAA-1" in step_two_emails(world)["shopper0@example.jp"].text
    assert world.coupons.stats(world.store_id).handed_out == 1


def test_a_code_taken_for_a_step_that_was_then_not_sent_is_never_given_to_another_cart() -> None:
    world = world_with(POOL, ("AAA-1", "BBB-2"))
    abandon(world, "c-1", "c-2")
    run_until(world, 1)
    # c-1's coupon step took its code, then found the cart ordered when it tried to claim the step.
    assert world.coupons.hand_out(world.store_id, "c-1#cart_recovery#2", START) == "AAA-1"
    world.send(order_placed("2026-12-02T10:00:00+09:00", cart_id="c-1", email="shopper0@example.jp"))

    run_until(world, 3)

    assert "BBB-2" in step_two_emails(world)["shopper1@example.jp"].text
    assert "shopper0@example.jp" not in step_two_emails(world)


def test_an_empty_pool_falls_back_to_the_store_wide_code_and_says_so() -> None:
    world = world_with(dataclasses.replace(POOL, code="THANKS5"), ("AAA-1",))
    abandon(world, "c-1", "c-2")
    run_until(world, 1)

    outcomes = run_until(world, 3)

    assert sorted(o.coupon_pool_empty for o in outcomes) == [False, True]
    texts = sorted(e.text for e in step_two_emails(world).values())
    assert sum("AAA-1" in t for t in texts) == 1 and sum("THANKS5" in t for t in texts) == 1
    reasons = [world.cart(c).decisions[-1] for c in ("c-1", "c-2")]
    assert sorted(str(d.reason) for d in reasons if d.action == "sent") == ["None", "coupon_pool_empty"]


def test_an_empty_pool_without_a_store_wide_code_sends_step_two_without_a_coupon() -> None:
    world = world_with(POOL)
    abandon(world, "c-1")
    run_until(world, 1)

    (outcome,) = run_until(world, 3)

    assert outcome.action == "sent" and outcome.coupon_pool_empty
    email = step_two_emails(world)["shopper0@example.jp"]
    assert "クーポン" not in email.subject and "discount/" not in email.html


def test_a_store_wide_coupon_never_touches_the_pool() -> None:
    world = world_with(Coupon("MATCHA10", "10%オフ", apply_url=APPLY), ("AAA-1",))
    abandon(world, "c-1")
    run_until(world, 1)

    (outcome,) = run_until(world, 3)

    assert not outcome.coupon_pool_empty and world.coupons.hand_out_calls == 0
    assert (
        "https://shop.example.jp/discount/MATCHA10?redirect=/cart" in step_two_emails(world)["shopper0@example.jp"].text
    )


# --- escalation only if the earlier email was not clicked ----------------------------------------------------


def clicked_step_one(world: World, cart_id: str) -> None:
    record = world.cart(cart_id).steps["cart_recovery#1"]
    assert record.message_id is not None
    world.ledger.mark(record.message_id, "clicked", world.clock.now())


def test_a_shopper_who_clicked_step_one_gets_no_coupon_email_and_step_three_on_time() -> None:
    world = world_with(dataclasses.replace(POOL, only_if_not_clicked=True), ("AAA-1",))
    abandon(world, "c-1")
    run_until(world, 1)
    clicked_step_one(world, "c-1")

    (skipped,) = run_until(world, 3)

    assert (skipped.action, skipped.reason, skipped.step) == ("skipped", "clicked_earlier", 2)
    cart = world.cart("c-1")
    assert (cart.steps["cart_recovery#2"].status, cart.steps["cart_recovery#2"].reason) == (
        SKIPPED,
        "clicked_earlier",
    )
    assert cart.timer is not None and cart.timer.step == 3  # the flow goes on
    assert world.coupons.hand_out_calls == 0 and len(world.mailer.sent) == 1
    (third,) = run_until(world, 7)
    assert third.action == "sent" and third.step == 3
    assert [e.tags["step"] for e in world.mailer.sent] == ["1", "3"]
    assert world.fire("c-1", 2).action == "already_done"  # a late repeat of step 2's firing sends nothing


def test_a_shopper_who_did_not_click_gets_the_coupon_email() -> None:
    world = world_with(dataclasses.replace(POOL, only_if_not_clicked=True), ("AAA-1",))
    abandon(world, "c-1")
    run_until(world, 1)
    world.ledger.mark(world.cart("c-1").steps["cart_recovery#1"].message_id or "", "opened", world.clock.now())

    (outcome,) = run_until(world, 3)

    assert outcome.action == "sent" and world.cart("c-1").steps["cart_recovery#2"].status == SENT
    assert "AAA-1" in step_two_emails(world)["shopper0@example.jp"].text


def test_a_mail_scanners_click_on_step_one_does_not_hold_the_coupon_email_back() -> None:
    """A security gateway follows step 1's links seconds after the send, posing as a browser: no shopper
    clicked, so the coupon email still goes."""
    world = world_with(dataclasses.replace(POOL, only_if_not_clicked=True), ("AAA-1",))
    abandon(world, "c-1")
    run_until(world, 1)
    message = world.ledger.get(world.cart("c-1").steps["cart_recovery#1"].message_id or "")
    assert message is not None
    sent = isoformat(message.sent_at)
    scan = {
        "eventType": "Click",
        "mail": {"timestamp": sent, "messageId": message.message_id},
        "click": {
            "timestamp": isoformat(message.sent_at + timedelta(seconds=2)),
            "link": "https://shop.example.jp/",
            "userAgent": EDGE,
            "ipAddress": "203.0.113.9",
        },
    }
    assert RecordSesEvent(world.ledger, world.contacts, world.clock)(scan).kind == "bot_clicked"

    (outcome,) = run_until(world, 3)

    assert outcome.action == "sent" and "AAA-1" in step_two_emails(world)["shopper0@example.jp"].text


def test_without_the_setting_a_click_does_not_hold_the_coupon_email_back() -> None:
    world = world_with(POOL, ("AAA-1",))
    abandon(world, "c-1")
    run_until(world, 1)
    clicked_step_one(world, "c-1")

    (outcome,) = run_until(world, 3)

    assert outcome.action == "sent" and "AAA-1" in step_two_emails(world)["shopper0@example.jp"].text
