"""The cart-recovery flow end to end over real HTTP: the three steps on time and no more, timers that follow
the cart's activity, tracking events in the report and an order after an email counted as a conversion."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

LocalStack = Any  # the fixture's class lives in conftest.py; tests reach everything through the fixture

HOUR = 3600
DAY = 24 * HOUR
SCHEDULER_SLACK = timedelta(minutes=1)  # Scheduler fires within a minute of the due time
COUPON_CODE = "MATCHA10"  # the demo store's coupon (step 2)
RECOMMENDATION = "宇治抹茶 濃茶用 30g"  # the demo store's first recommendation (step 3)


def assert_sent_around(stack: LocalStack, message: dict[str, Any], due: datetime) -> None:
    assert due <= stack.sent_at(message) <= due + SCHEDULER_SLACK, (message["sent_at"], due.isoformat())


def test_three_steps_at_two_hours_three_days_and_seven_days_then_no_more(local_stack: LocalStack) -> None:
    stack = local_stack
    cart_id, email, t0 = stack.start_cart()

    stack.advance(2 * HOUR - 60)  # 1 h 59 min
    assert stack.outbox(to=email) == [], "step 1 must wait the full two hours"
    timer = stack.cart_view(cart_id)["timer"]
    assert timer is not None and timer["step"] == 1

    stack.advance(2 * 60)
    mine = stack.outbox(to=email)
    assert len(mine) == 1
    first = mine[0]
    assert_sent_around(stack, first, t0 + timedelta(hours=2))
    assert "抹茶ラテ" in first["html"] and "抹茶ラテ" in first["text"]  # the cart's items
    assert f"https://shop.example.jp/cart/restore?cart={cart_id}" in first["html"]
    assert COUPON_CODE not in first["html"]

    stack.advance_until(t0 + timedelta(days=3) - timedelta(minutes=1))
    assert len(stack.outbox(to=email)) == 1, "step 2 must wait three days"
    stack.advance(2 * 60)
    mine = stack.outbox(to=email)
    assert len(mine) == 2
    second = mine[1]
    assert_sent_around(stack, second, t0 + timedelta(days=3))
    assert COUPON_CODE in second["html"] and COUPON_CODE in second["text"]
    assert second["subject"] != first["subject"]

    stack.advance_until(t0 + timedelta(days=7) - timedelta(minutes=1))
    assert len(stack.outbox(to=email)) == 2, "step 3 must wait seven days"
    stack.advance(2 * 60)
    mine = stack.outbox(to=email)
    assert len(mine) == 3
    third = mine[2]
    assert_sent_around(stack, third, t0 + timedelta(days=7))
    assert RECOMMENDATION in third["html"] and RECOMMENDATION in third["text"]
    assert "https://shop.example.jp/products/matcha-koicha" in third["html"]
    assert len({m["message_id"] for m in mine}) == 3

    stack.advance(30 * DAY)
    assert len(stack.outbox(to=email)) == 3, "the flow has three steps: no fourth email"
    cart = stack.cart_view(cart_id)
    assert cart["timer"] is None
    assert {key: step["status"] for key, step in cart["steps"].items()} == {
        "cart_recovery#1": "sent",
        "cart_recovery#2": "sent",
        "cart_recovery#3": "sent",
    }


def test_later_cart_activity_moves_the_timers(local_stack: LocalStack) -> None:
    stack = local_stack
    cart_id, email, t0 = stack.start_cart()

    # An hour later the shopper changes the cart: step 1 now counts from 11:00.
    stack.advance(HOUR)
    t1 = stack.now()
    three = [
        {
            "sku": "TEA-002",
            "name": "ほうじ茶",
            "url": "https://shop.example.jp/products/tea-002",
            "unit_price": 980,
            "quantity": 3,
        }
    ]
    assert stack.post_event(stack.cart_event(cart_id, email, t1, items=three))[0] == 202
    stack.advance_until(t0 + timedelta(hours=2, minutes=30))
    assert stack.outbox(to=email) == [], "step 1 must count from the latest activity"
    stack.advance_until(t1 + timedelta(hours=2, minutes=1))
    mine = stack.outbox(to=email)
    assert len(mine) == 1
    assert_sent_around(stack, mine[0], t1 + timedelta(hours=2))
    assert "ほうじ茶" in mine[0]["html"] and "抹茶ラテ" not in mine[0]["html"], "the email shows the cart as it is now"

    # The next morning the shopper is back: step 2 counts from then, not from yesterday's activity.
    stack.advance_to_local_time(10)
    t2 = stack.now()
    assert stack.post_event(stack.cart_event(cart_id, email, t2, items=three))[0] == 202
    stack.advance_until(t1 + timedelta(days=3, minutes=5))
    assert len(stack.outbox(to=email)) == 1, "step 2 must count from the latest activity"
    stack.advance_until(t2 + timedelta(days=3, minutes=1))
    mine = stack.outbox(to=email)
    assert len(mine) == 2
    assert_sent_around(stack, mine[1], t2 + timedelta(days=3))
    assert COUPON_CODE in mine[1]["html"]

    decisions = stack.cart_view(cart_id)["decisions"]
    assert any(d["action"] == "rearmed" and d["reason"] == "cart_activity" for d in decisions), decisions


def test_open_and_click_are_counted_and_an_order_after_the_email_converts(local_stack: LocalStack) -> None:
    stack = local_stack
    cart_id, email, t0 = stack.start_cart()
    stack.advance(2 * HOUR + 60)
    mine = stack.outbox(to=email)
    assert len(mine) == 1
    message_id = mine[0]["message_id"]

    before = stack.report()
    assert stack.ses(message_id, "open").status == 200
    assert stack.ses(message_id, "open").status == 200  # opened twice: one message opened
    click = stack.ses(message_id, "click", url="https://shop.example.jp/products/tea-001")
    assert click.status == 200, click.text
    delta = stack.report_delta(before, stack.report())
    assert delta["opened"] == 1
    assert delta["clicked"] == 1
    assert delta["sent"] == 0 and delta["converted"] == 0

    # The shopper comes back and buys (for more than the cart held): the email gets the order's value.
    stack.advance(HOUR)
    before = stack.report()
    order = stack.order_event(cart_id, email, stack.now(), total=3840)
    status, body = stack.post_event(order)
    assert status == 202, body
    delta = stack.report_delta(before, stack.report())
    assert delta["converted"] == 1
    assert delta["revenue"] == 3840
    cart = stack.cart_view(cart_id)
    assert cart["status"] == "ordered"
    assert cart["order_id"] == order["order"]["id"]

    # Bought: no coupon three days later.
    stack.advance_until(t0 + timedelta(days=3, minutes=1))
    assert len(stack.outbox(to=email)) == 1
    cart = stack.cart_view(cart_id)
    assert cart["timer"] is None
    assert cart["decisions"][-1]["reason"] == "cart_ordered", cart["decisions"]


def test_a_store_in_dollars_reports_revenue_with_cents(local_stack: LocalStack) -> None:
    """A USD store's first recovered order of $19.50: the report (the console's route and the CLI's JSON) adds
    the cents exactly, row and totals alike."""
    stack = local_stack
    store_id, secret = stack.new_store({"currency": "USD", "locale": "en"})
    stack.advance_to_local_time(10)
    cart_id, email = stack.new_id(), stack.unique_email("usd")
    items = [{"sku": "MUG-1", "name": "Mug", "url": "https://shop.example.com/mug", "unit_price": 9.75, "quantity": 2}]
    cart = stack.cart_event(cart_id, email, stack.now(), currency="USD", items=items, locale="en")
    assert stack.post_event(cart, secret=secret, store=store_id)[0] == 202
    stack.advance(2 * HOUR + 60)
    assert len(stack.outbox(to=email)) == 1

    order = stack.order_event(cart_id, email, stack.now(), total=19.5, currency="USD")
    assert stack.post_event(order, secret=secret, store=store_id)[0] == 202

    report = stack.report(store=store_id)
    (row,) = report["rows"]
    assert (row["step"], row["sent"], row["converted"], row["revenue"]) == (1, 1, 1, 19.5)
    assert (report["totals"]["converted"], report["totals"]["revenue"]) == (1, 19.5)
    answer = stack.cli("report", "--store", store_id, "--json")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["totals"]["revenue"] == 19.5
    assert stack.get("/_local/").status == 200  # the console shows the same report


def test_two_snapshots_in_one_second_arriving_newest_first_email_the_newest(local_stack: LocalStack) -> None:
    stack = local_stack
    stack.advance_to_local_time(10)
    cart_id, email = stack.new_id(), stack.unique_email("subsecond")
    at = stack.now().replace(microsecond=0) - timedelta(seconds=30)
    line = {"url": "https://shop.example.jp/products/tea", "unit_price": 1280, "quantity": 1}
    newest = [{**line, "sku": "NEW-1", "name": "新しい煎茶"}, {**line, "sku": "NEW-2", "name": "新しい番茶"}]
    oldest = [{**line, "sku": "OLD-1", "name": "古い玄米茶"}]
    newer = stack.cart_event(cart_id, email, at + timedelta(milliseconds=750), items=newest)
    older = stack.cart_event(cart_id, email, at + timedelta(milliseconds=250), items=oldest)
    assert stack.post_event(newer)[0] == 202
    assert stack.post_event(older)[0] == 202  # accepted, and ignored: the cart holds a newer snapshot

    stack.advance(2 * HOUR + 60)
    (message,) = stack.outbox(to=email)
    assert "新しい煎茶" in message["text"] and "新しい番茶" in message["text"]
    assert "古い玄米茶" not in message["text"]


def test_an_order_arriving_after_a_later_email_credits_the_email_it_followed(local_stack: LocalStack) -> None:
    """An order matched by address alone, made two days after step 1 but delivered after step 2 went out:
    integration.md credits the latest email before the order (step 1), not none because the address's last
    email (step 2) came after it."""
    stack = local_stack
    _, email, t0 = stack.start_cart()
    stack.advance_until(t0 + timedelta(days=3, minutes=5))
    assert len(stack.outbox(to=email)) == 2

    def step_row(report: dict[str, Any], step: int) -> dict[str, Any]:
        return next(r for r in report["rows"] if r["flow"] == "cart_recovery" and r["step"] == step)

    before = stack.report()
    order = stack.order_event(stack.new_id(), email, t0 + timedelta(days=2), total=1111)
    del order["order"]["cart_id"], order["customer"]["id"]  # bought on another device, matched by address
    assert stack.post_event(order)[0] == 202
    after = stack.report()
    assert stack.report_delta(before, after)["converted"] == 1
    assert step_row(after, 1)["converted"] - step_row(before, 1)["converted"] == 1
    assert step_row(after, 1)["revenue"] - step_row(before, 1)["revenue"] == 1111
    assert step_row(after, 2)["converted"] == step_row(before, 2)["converted"]

    # The shop sends the same order again (an update: a new webhook-id, a later time, after step 2). It
    # converted step 1 already; it must not convert step 2 as well and count its revenue twice.
    again = {**order, "occurred_at": (t0 + timedelta(days=3, minutes=4)).isoformat()}
    assert stack.post_event(again)[0] == 202
    delta = stack.report_delta(after, stack.report())
    assert (delta["converted"], delta["revenue"]) == (0, 0), delta


def test_an_order_in_another_currency_is_reported_apart_from_the_stores_revenue(local_stack: LocalStack) -> None:
    """A yen store's shopper pays $49.99 (a multi-currency checkout): the conversion counts, and the amount is
    reported under its own currency, never added to the yen revenue."""
    stack = local_stack
    cart_id, email, _ = stack.start_cart()
    stack.advance(2 * HOUR + 60)
    assert len(stack.outbox(to=email)) == 1

    def usd(report: dict[str, Any]) -> float:
        return float(report["totals"]["revenue_other_currencies"].get("USD", 0))

    before = stack.report()
    order = stack.order_event(cart_id, email, stack.now(), total=49.99, currency="USD")
    assert stack.post_event(order)[0] == 202
    after = stack.report()
    delta = stack.report_delta(before, after)
    assert (delta["converted"], delta["revenue"]) == (1, 0)
    assert round(usd(after) - usd(before), 2) == 49.99
    step_one = next(r for r in after["rows"] if r["step"] == 1 and "USD" in r["revenue_other_currencies"])
    assert step_one["revenue_other_currencies"]["USD"] > 0

    table = stack.cli("report", "--store", stack.store_id)
    assert table.returncode == 0, table.stderr
    assert "revenue of orders in other currencies: USD " in table.stdout


def test_a_holdout_store_emails_one_group_and_reports_the_lift_against_the_other(local_stack: LocalStack) -> None:
    """A store holding half its shoppers out: over HTTP, the held-out shoppers get no email and their carts say
    why; orders of both groups are credited to their group; the report, the CLI and the console compare them."""
    stack = local_stack
    store_id, secret = stack.new_store({"holdout_percent": 50})
    stack.advance_to_local_time(10)
    shoppers = {stack.new_id(): stack.unique_email("holdout") for _ in range(20)}
    for cart_id, email in shoppers.items():
        assert stack.post_event(stack.cart_event(cart_id, email, stack.now()), secret=secret, store=store_id)[0] == 202
    stack.advance(2 * HOUR + 60)

    emailed = [cart_id for cart_id, email in shoppers.items() if stack.outbox(to=email)]
    held = [cart_id for cart_id in shoppers if cart_id not in emailed]
    assert emailed and held, "20 shoppers all fell in one group (a one-in-500,000 draw)"
    for cart_id in held:
        cart = stack.cart_view(cart_id, store=store_id)
        assert cart["timer"] is None and cart["decisions"][-1]["reason"] == "holdout", cart["decisions"]
    stack.advance(4 * DAY)  # step 2 goes to the emailed shoppers only
    assert all(not stack.outbox(to=shoppers[cart_id]) for cart_id in held)
    assert all(len(stack.outbox(to=shoppers[cart_id])) == 2 for cart_id in emailed)

    for cart_id in (*emailed[:2], held[0]):
        order = stack.order_event(cart_id, shoppers[cart_id], stack.now(), total=3000)
        assert stack.post_event(order, secret=secret, store=store_id)[0] == 202

    report = stack.report(store=store_id)
    (flow,) = report["holdout"]
    assert (flow["treated"]["carts"], flow["treated"]["converted"], flow["treated"]["revenue"]) == (
        len(emailed),
        2,
        6000,
    )
    assert (flow["holdout"]["carts"], flow["holdout"]["converted"], flow["holdout"]["revenue"]) == (len(held), 1, 3000)
    expected = 2 / len(emailed) - 1 / len(held)
    assert flow["lift"]["conversion_rate"] == round(expected, 4)
    assert (report["totals"]["converted"], report["totals"]["revenue"]) == (2, 6000)  # the emails' credit alone

    table = stack.cli("report", "--store", store_id)
    assert table.returncode == 0, table.stderr
    assert f"emailed: {len(emailed)} carts, 2 converted" in table.stdout
    assert f"held out: {len(held)} carts, 1 converted" in table.stdout
    assert f"lift: {expected * 100:+.1f} points" in table.stdout


def test_a_step_with_two_variants_sends_each_shopper_one_subject_and_reports_each(local_stack: LocalStack) -> None:
    """An A/B test of step 1's subject line over HTTP: shoppers split between the shipped wordings, and the
    report (JSON and table) counts each variant in its own row and sets b against a."""
    stack = local_stack
    steps = [
        {"step": 1, "delay_seconds": 2 * HOUR, "variants": ["a", "b"]},
        {"step": 2, "delay_seconds": 3 * DAY},
        {"step": 3, "delay_seconds": 7 * DAY},
    ]
    store_id, secret = stack.new_store({"flows": {"cart_recovery": {"steps": steps}}})
    stack.advance_to_local_time(10)
    shoppers = {stack.new_id(): stack.unique_email("ab") for _ in range(16)}
    for cart_id, email in shoppers.items():
        assert stack.post_event(stack.cart_event(cart_id, email, stack.now()), secret=secret, store=store_id)[0] == 202
    stack.advance(2 * HOUR + 60)

    subjects = {"a": "カートに商品が残っています", "b": "お買い忘れはありませんか？"}
    by_variant: dict[str, list[str]] = {"a": [], "b": []}
    for cart_id, email in shoppers.items():
        (message,) = stack.outbox(to=email)
        variant = "b" if subjects["b"] in message["subject"] else "a"
        assert subjects[variant] in message["subject"]
        by_variant[variant].append(cart_id)
        assert stack.cart_view(cart_id, store=store_id)["steps"]["cart_recovery#1"]["variant"] == variant
    assert by_variant["a"] and by_variant["b"], "16 shoppers all drew one variant (a one-in-32,768 draw)"

    bought = by_variant["b"][0]
    assert (
        stack.post_event(stack.order_event(bought, shoppers[bought], stack.now()), secret=secret, store=store_id)[0]
        == 202
    )
    rows = {row["variant"]: row for row in stack.report(store=store_id)["rows"]}
    assert (rows["a"]["sent"], rows["b"]["sent"]) == (len(by_variant["a"]), len(by_variant["b"]))
    assert (rows["a"]["converted"], rows["b"]["converted"]) == (0, 1)
    (test,) = stack.report(store=store_id)["ab_tests"]
    assert (test["flow"], test["step"], test["control"]) == ("cart_recovery", 1, "a")
    assert [(v["variant"], v["sent"], v["converted"]) for v in test["variants"]] == [
        ("a", len(by_variant["a"]), 0),
        ("b", len(by_variant["b"]), 1),
    ]
    (comparison,) = test["comparisons"]
    assert comparison["conversion_rate"]["difference"] == round(1 / len(by_variant["b"]), 4)
    assert comparison["conversion_rate"]["significant"] is False  # one order among 16 shoppers
    table = stack.cli("report", "--store", store_id)
    assert table.returncode == 0, table.stderr
    assert sum(line.split()[:3] == ["cart_recovery", "1", "b"] for line in table.stdout.splitlines()) == 1
    assert "A/B test, cart_recovery step 1 (against a):" in table.stdout
    assert f"b: {len(by_variant['b'])} sent, 0 clicked (0.0%), 1 converted" in table.stdout
