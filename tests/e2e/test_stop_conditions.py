"""Every condition that stops or holds back the cart-recovery flow, end to end over real HTTP: orders (for the
cart, by address, by customer id, out of order), a cleared cart, unsubscribe, bounce, complaint, no consent and
quiet hours. Each asserts what the shopper gets (the outbox) and the reason the cart's decision log records."""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.e2e

LocalStack = Any  # the fixture's class lives in conftest.py; tests reach everything through the fixture

HOUR = 3600
DAY = 24 * HOUR
TOKYO = ZoneInfo("Asia/Tokyo")


def assert_stopped(stack: LocalStack, cart_id: str, reason: str) -> dict[str, Any]:
    """The flow stopped for ``reason`` and nothing is armed any more: no later step can go out."""
    cart = stack.cart_view(cart_id)
    assert cart["timer"] is None, cart
    last = cart["decisions"][-1]
    assert (last["action"], last["reason"]) == ("skipped", reason), cart["decisions"]
    return cart


def step_one(stack: LocalStack) -> tuple[str, str, datetime, dict[str, Any]]:
    """A cart whose step 1 has just gone out: (cart id, address, occurred_at, the message)."""
    cart_id, email, t0 = stack.start_cart()
    stack.advance(2 * HOUR + 60)
    mine = stack.outbox(to=email)
    assert len(mine) == 1
    return cart_id, email, t0, mine[0]


def through_step_two(stack: LocalStack, t0: datetime) -> None:
    """Past the time step 2 (three days after the cart's activity) would have been sent."""
    stack.advance_until(t0 + timedelta(days=3, minutes=5))


# ---- orders and clears before step 1 ----


def test_an_order_for_the_cart_before_step_one_sends_nothing(local_stack: LocalStack) -> None:
    stack = local_stack
    cart_id, email, _ = stack.start_cart()
    stack.advance(HOUR)
    assert stack.post_event(stack.order_event(cart_id, email, stack.now()))[0] == 202

    stack.advance(2 * HOUR)
    assert stack.outbox(to=email) == []
    cart = assert_stopped(stack, cart_id, "cart_ordered")
    assert cart["status"] == "ordered"


def test_an_order_naming_its_cart_by_cart_id_closes_it_and_later_activity_does_not_reopen_it(
    local_stack: LocalStack,
) -> None:
    """integration.md: ``order.cart_id`` (or ``cart.id`` if the event carries a ``cart`` object) closes the cart.
    The order carries no customer, so nothing but its ``cart.id`` can stop this cart."""
    stack = local_stack
    cart_id, email, _ = stack.start_cart()
    stack.advance(HOUR)
    order = stack.order_event(cart_id, email, stack.now())
    del order["order"]["cart_id"], order["customer"]
    order["cart"] = {"id": cart_id}
    assert stack.post_event(order)[0] == 202
    assert stack.cart_view(cart_id)["status"] == "ordered"

    stack.advance(60)  # the shop posts the emptied-then-refilled cart after the order: still closed
    assert stack.post_event(stack.cart_event(cart_id, email, stack.now()))[0] == 202
    stack.advance(3 * HOUR)
    assert stack.outbox(to=email) == []
    assert_stopped(stack, cart_id, "cart_ordered")


def test_an_order_by_the_same_address_on_another_cart_sends_nothing(local_stack: LocalStack) -> None:
    stack = local_stack
    cart_id, email, _ = stack.start_cart(customer_id=local_stack.new_id("u"))
    stack.advance(HOUR)
    # Bought through another cart (say, on another device) as a guest: only the address matches.
    other = stack.new_id()
    order = stack.order_event(other, email.upper(), stack.now(), customer_id=stack.new_id("u"))
    assert stack.post_event(order)[0] == 202

    stack.advance(2 * HOUR)
    assert stack.outbox(to=email) == []
    cart = assert_stopped(stack, cart_id, "ordered_since")
    assert cart["status"] == "open"  # this cart was not bought; its shopper was


def test_an_order_by_the_same_customer_id_sends_nothing(local_stack: LocalStack) -> None:
    stack = local_stack
    customer = stack.new_id("u")
    cart_id, email, _ = stack.start_cart(customer_id=customer)
    stack.advance(HOUR)
    # Bought through another cart, signed in, with another address on the order: only the customer id matches.
    order = stack.order_event(stack.new_id(), stack.unique_email("other"), stack.now(), customer_id=customer)
    assert stack.post_event(order)[0] == 202

    stack.advance(2 * HOUR)
    assert stack.outbox(to=email) == []
    assert_stopped(stack, cart_id, "ordered_since")


def test_a_cleared_cart_sends_nothing(local_stack: LocalStack) -> None:
    stack = local_stack
    cart_id, email, _ = stack.start_cart()
    stack.advance(HOUR)
    cleared = {
        "type": "cart.cleared",
        "occurred_at": stack.now().isoformat(),
        "customer": {"id": f"u-{cart_id}", "email": email},
        "cart": {"id": cart_id},
    }
    status, body = stack.post_event(cleared)
    assert status == 202, body

    stack.advance(2 * HOUR)
    assert stack.outbox(to=email) == []
    cart = assert_stopped(stack, cart_id, "cart_cleared")
    assert cart["status"] == "cleared"


@pytest.mark.parametrize("arrival", ["order_last", "update_last"])
def test_an_order_out_of_order_with_cart_updates_still_stops_the_flow(local_stack: LocalStack, arrival: str) -> None:
    """The order happened at 10:30, the cart was touched again at 10:45 (another tab, a sync): whichever of
    the two arrives last, the cart was bought and must get no reminder."""
    stack = local_stack
    cart_id, email, t0 = stack.start_cart()
    stack.advance(HOUR)  # both events arrive at 11:00, after they happened
    order = stack.order_event(cart_id, email, t0 + timedelta(minutes=30))
    update = stack.cart_event(cart_id, email, t0 + timedelta(minutes=45))
    first, last = (update, order) if arrival == "order_last" else (order, update)
    assert stack.post_event(first)[0] == 202
    assert stack.post_event(last)[0] == 202

    stack.advance(3 * HOUR)
    assert stack.outbox(to=email) == []
    cart = assert_stopped(stack, cart_id, "cart_ordered")
    assert cart["status"] == "ordered"
    assert cart["order_id"] == order["order"]["id"]


# ---- after step 1: the shopper's own signals ----


def test_unsubscribing_through_the_email_link_stops_step_two(local_stack: LocalStack) -> None:
    stack = local_stack
    cart_id, email, t0, message = step_one(stack)
    url = stack.unsubscribe_url(message)
    assert url in message["html"] and url in message["text"], "the same URL is visible in the body"
    path = urllib.parse.urlsplit(url).path
    assert path.startswith("/u/")

    before = stack.report()
    assert stack.get(path).status == 200  # the confirmation page changes nothing
    assert stack.report_delta(before, stack.report())["unsubscribed"] == 0
    answer = stack.post(path, b"List-Unsubscribe=One-Click", {"content-type": "application/x-www-form-urlencoded"})
    assert answer.status == 200, answer.text
    assert stack.report_delta(before, stack.report())["unsubscribed"] == 1

    through_step_two(stack, t0)
    assert len(stack.outbox(to=email)) == 1, "no email after unsubscribing"
    assert_stopped(stack, cart_id, "unsubscribed")


@pytest.mark.parametrize(("kind", "column"), [("bounce", "bounced"), ("complaint", "complained")])
def test_a_hard_bounce_or_complaint_on_step_one_suppresses_the_address(
    local_stack: LocalStack, kind: str, column: str
) -> None:
    stack = local_stack
    cart_id, email, t0, message = step_one(stack)

    before = stack.report()
    answer = stack.ses(message["message_id"], kind)
    assert answer.status == 200, answer.text
    assert stack.report_delta(before, stack.report())[column] == 1

    through_step_two(stack, t0)
    assert len(stack.outbox(to=email)) == 1, f"no email to an address after a {kind}"
    assert_stopped(stack, cart_id, "suppressed")

    # Suppressed for the store, not just for this cart: a new cart with consent gets nothing either.
    stack.advance_to_local_time(10)
    again = stack.new_id()
    assert stack.post_event(stack.cart_event(again, email, stack.now()))[0] == 202
    stack.advance(3 * HOUR)
    assert len(stack.outbox(to=email)) == 1
    assert_stopped(stack, again, "suppressed")


# ---- never, or not yet ----


def test_without_consent_nothing_is_ever_sent(local_stack: LocalStack) -> None:
    stack = local_stack
    stack.advance_to_local_time(10)
    refused, refused_email = stack.new_id(), stack.unique_email("refused")
    silent, silent_email = stack.new_id(), stack.unique_email("silent")
    assert stack.post_event(stack.cart_event(refused, refused_email, stack.now(), consent=False))[0] == 202
    assert stack.post_event(stack.cart_event(silent, silent_email, stack.now(), consent=None))[0] == 202

    stack.advance(8 * DAY)  # past all three steps
    assert stack.outbox(to=refused_email) == []
    assert stack.outbox(to=silent_email) == []
    for cart_id in (refused, silent):
        cart = assert_stopped(stack, cart_id, "no_consent")
        assert cart["steps"] == {}


def test_a_step_falling_in_quiet_hours_waits_until_eight(local_stack: LocalStack) -> None:
    stack = local_stack
    cart_id, email, t0 = stack.start_cart(hour=20)  # step 1 falls due at 22:00 Tokyo
    # Quiet hours end at 08:00:00 sharp, whatever second of 20:00 the cart was posted at (the virtual clock
    # ticks with real time, so t0 can be 20:00:01 when the requests are slow).
    morning = (t0 + timedelta(days=1)).astimezone(TOKYO).replace(hour=8, minute=0, second=0, microsecond=0)

    stack.advance(2 * HOUR + 60)
    assert stack.outbox(to=email) == [], "nothing at 22:00"
    cart = stack.cart_view(cart_id)
    deferred = [d for d in cart["decisions"] if d["action"] == "deferred"]
    assert [d["reason"] for d in deferred] == ["quiet_hours"], cart["decisions"]
    assert datetime.fromisoformat(deferred[0]["until"]) == morning
    assert cart["timer"] is not None and datetime.fromisoformat(cart["timer"]["due_at"]) == morning

    stack.advance_to_local_time(7, 59)
    assert stack.outbox(to=email) == [], "nothing before 08:00"
    stack.advance(2 * 60)
    mine = stack.outbox(to=email)
    assert len(mine) == 1, "deferred, not dropped"
    local = stack.sent_at(mine[0]).astimezone(TOKYO)
    assert local.date() == morning.date()
    assert (local.hour, local.minute) == (8, 0), mine[0]["sent_at"]


def test_an_opt_in_dated_ahead_by_the_senders_clock_does_not_outrank_a_later_unsubscribe(
    local_stack: LocalStack,
) -> None:
    # The shop's clock runs 20 hours fast (within the day of drift the API accepts for occurred_at): its
    # checkout's opt-in claims a time after the shopper's one-click unsubscribe two hours later. A statement
    # cannot have been made after it arrived, so it counts as made when it arrived, and the unsubscribe wins.
    stack = local_stack
    stack.advance_to_local_time(10)
    cart_id, email = stack.new_id(), stack.unique_email()
    ahead = stack.now() + timedelta(hours=20)
    assert stack.post_event(stack.cart_event(cart_id, email, stack.now(), consent_at=ahead))[0] == 202
    stack.advance(2 * HOUR + 60)
    (message,) = stack.outbox(to=email)

    path = urllib.parse.urlsplit(stack.unsubscribe_url(message)).path
    answer = stack.post(path, b"List-Unsubscribe=One-Click", {"content-type": "application/x-www-form-urlencoded"})
    assert answer.status == 200, answer.text

    stack.advance(3 * DAY)
    assert len(stack.outbox(to=email)) == 1, "no email after unsubscribing"
    assert_stopped(stack, cart_id, "unsubscribed")


@pytest.mark.parametrize("field", ["consent_at", "occurred_at"])
def test_a_time_more_than_a_day_ahead_is_a_400(local_stack: LocalStack, field: str) -> None:
    stack = local_stack
    now, far = stack.now(), stack.now() + timedelta(days=365 * 70)
    event = stack.cart_event(
        stack.new_id(),
        stack.unique_email(),
        far if field == "occurred_at" else now,
        consent_at=far if field == "consent_at" else None,
    )
    status, body = stack.post_event(event)

    assert status == 400, body
    path = "customer.marketing_consent.at" if field == "consent_at" else "occurred_at"
    errors = {e["path"]: e["message"] for e in body["errors"]}
    assert errors[path] == "is more than 24 hours ahead of the receiver's clock", body


def test_explain_says_when_a_cart_closed_and_that_its_pending_firing_sends_nothing(local_stack: LocalStack) -> None:
    stack = local_stack
    cart_id, email, _ = stack.start_cart()
    stack.advance(HOUR)
    order = stack.order_event(cart_id, email, stack.now())
    assert stack.post_event(order)[0] == 202

    lines = stack.cli("explain", "--store", stack.store_id, "--cart", cart_id).stdout.splitlines()
    assert lines[0].startswith(f"cart {cart_id}: ordered at ") and f"(order {order['order']['id']})" in lines[0]
    assert "; last activity 20" in lines[0]
    assert lines[1].startswith("next: cart_recovery step 1 at ") and lines[1].endswith("ends the flow without an email")

    # An order that arrives before any event of its cart creates it closed: it has no activity to show.
    first = stack.new_id()
    assert stack.post_event(stack.order_event(first, stack.unique_email(), stack.now()))[0] == 202
    answer = stack.cli("explain", "--store", stack.store_id, "--cart", first)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines()[0].endswith("; last activity none before it closed"), answer.stdout
    assert "None" not in answer.stdout


def test_a_complaint_after_the_shoppers_erasure_still_suppresses_the_address(local_stack: LocalStack) -> None:
    """An erasure request, then the shopper marks the earlier email as spam: the complaint is counted and
    suppresses the address, so a new cart of the same address gets no email (it once found no message
    record, failed until the dead-letter queue, and the address was emailed again)."""
    stack = local_stack
    _, email, _ = stack.start_cart()
    stack.advance(2 * HOUR + 60)
    (message,) = stack.outbox(to=email)
    erased = stack.cli("erase", "--store", stack.store_id, "--email", email)
    assert erased.returncode == 0 and "1 message(s)" in erased.stdout, erased.stderr

    before = stack.report()
    assert stack.ses(message["message_id"], "complaint").status == 200
    assert stack.report_delta(before, stack.report())["complained"] == 1

    stack.advance_to_local_time(10)
    assert stack.post_event(stack.cart_event(stack.new_id(), email, stack.now()))[0] == 202
    stack.advance(3 * HOUR)
    assert stack.outbox(to=email) == [message], "emailed again after complaining"
