"""Folding events into a cart by ``occurred_at``: late and repeated deliveries never change the outcome."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from cartrecovery.domain.cart import CLEARED, OPEN, ORDERED, CartState, fold
from cartrecovery.domain.events import parse_event
from tests.fakes import World, cart_cleared, cart_updated, item_body, order_placed

T0 = "2026-12-01T10:00:00+09:00"
T1 = "2026-12-01T10:30:00+09:00"
T2 = "2026-12-01T11:00:00+09:00"
T3 = "2026-12-01T11:30:00+09:00"


def fold_all(*bodies: dict[str, Any]) -> CartState:
    cart: CartState | None = None
    for body in bodies:
        cart = fold(cart, parse_event(body), "shop-1", "c-1")
    assert cart is not None
    return cart


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_first_activity_opens_the_cart_with_its_contents() -> None:
    cart = fold_all(cart_updated(T0, items=[item_body("TEA-001", 1280, 2)]))
    assert cart.status == OPEN
    assert cart.first_seen_at == cart.last_activity_at == at(T0)
    assert [(i.sku, i.quantity) for i in cart.items] == [("TEA-001", 2)]
    assert cart.total == Decimal(2560)
    assert cart.customer.email == "taro@example.jp"
    # A consent sent without its own time is dated by the event that carried it (the proof of when).
    assert cart.customer.consent is not None and cart.customer.consent.at == at(T0)


def test_newer_activity_replaces_the_snapshot_and_moves_last_activity() -> None:
    cart = fold_all(
        cart_updated(T0, items=[item_body("TEA-001", 1280, 1)]),
        cart_updated(T1, items=[item_body("TEA-002", 900, 3)]),
    )
    assert cart.last_activity_at == at(T1)
    assert cart.first_seen_at == at(T0)
    assert [(i.sku, i.quantity) for i in cart.items] == [("TEA-002", 3)]
    assert cart.total == Decimal(2700)


def test_an_older_snapshot_arriving_late_is_ignored() -> None:
    newer = fold_all(cart_updated(T1, items=[item_body("NEW", 500, 1)]))
    after_late = fold(newer, parse_event(cart_updated(T0, items=[item_body("OLD", 100, 9)])), "shop-1", "c-1")
    assert after_late is newer
    assert [i.sku for i in after_late.items] == ["NEW"]


def test_a_newer_event_without_customer_details_keeps_the_known_ones() -> None:
    later = cart_updated(T1, email=None, consent=None)
    later["customer"] = {"locale": "en"}
    cart = fold_all(cart_updated(T0, customer_id="u-1"), later)
    assert cart.customer.email == "taro@example.jp"
    assert cart.customer.id == "u-1"
    assert cart.customer.locale == "en"
    assert cart.customer.consent is not None and cart.customer.consent.granted


@pytest.mark.parametrize(
    ("closing", "status"),
    [(order_placed(T1), ORDERED), (cart_cleared(T1), CLEARED)],
    ids=["ordered", "cleared"],
)
def test_no_activity_ever_reopens_a_bought_or_emptied_cart(closing: dict[str, Any], status: str) -> None:
    closed = fold_all(cart_updated(T0), closing)
    assert closed.status == status
    assert closed.closed_at == at(T1)
    for late in (cart_updated(T0), cart_updated(T2), cart_updated(T3, kind="checkout.started"), cart_cleared(T3)):
        assert fold(closed, parse_event(late), "shop-1", "c-1") is closed


def test_an_order_keeps_its_id_and_total_and_is_not_replaced_by_a_later_clear() -> None:
    cart = fold_all(cart_updated(T0), order_placed(T1, order_id="o-77", total=2560), cart_cleared(T2))
    assert (cart.status, cart.order_id, cart.order_total) == (ORDERED, "o-77", Decimal(2560))


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations([cart_updated(T0), cart_updated(T2), order_placed(T1)])),
    ids=lambda o: "-".join(b["occurred_at"][11:16] for b in o),
)
def test_any_arrival_order_of_the_same_events_ends_ordered(order: tuple[dict[str, Any], ...]) -> None:
    # The order at 10:30 closes the cart; the 11:00 update after it cannot reopen it, whatever arrives first.
    assert fold_all(*order).status == ORDERED


def test_the_same_event_folded_twice_changes_nothing() -> None:
    event = parse_event(cart_updated(T0))
    once = fold(None, event, "shop-1", "c-1")
    assert fold(once, event, "shop-1", "c-1") is once
    closed = fold(once, parse_event(order_placed(T1)), "shop-1", "c-1")
    assert fold(closed, parse_event(order_placed(T1)), "shop-1", "c-1") is closed


# --- through ingest, with stored carts -----------------------------------------------------------------------


def test_a_duplicate_delivery_is_reported_and_has_no_second_effect() -> None:
    world = World.create(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    body = cart_updated(T0)

    assert world.send(body, event_id="evt-1").status == "accepted"
    stored = world.cart("c-1")
    assert world.send(body, event_id="evt-1").status == "duplicate"

    assert world.cart("c-1") == stored  # same version, one decision, one timer
    assert len(world.schedules.created) == 1
    assert [d.action for d in stored.decisions] == ["armed"]


def test_a_reused_event_id_with_another_body_is_ignored() -> None:
    world = World.create(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    world.send(cart_updated(T0), event_id="evt-1")
    assert world.send(order_placed(T1), event_id="evt-1").status == "duplicate"
    assert world.cart("c-1").status == OPEN


def test_an_order_that_arrives_before_the_cart_keeps_it_closed_and_unarmed() -> None:
    world = World.create(datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
    world.send(order_placed(T1))
    world.send(cart_updated(T0))  # the late activity that led to the order

    cart = world.cart("c-1")
    assert cart.status == ORDERED
    assert cart.timer is None
    assert world.schedules.created == []


def test_stored_activity_moves_last_activity_but_leaves_the_armed_timer() -> None:
    world = World.create(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    world.send(cart_updated(T0))
    timer = world.cart("c-1").timer
    world.send(cart_updated(T1, items=[item_body("TEA-002", 900, 1)]))

    cart = world.cart("c-1")
    assert cart.last_activity_at == at(T1)
    assert [i.sku for i in cart.items] == ["TEA-002"]
    # The step handler re-reads the cart when the timer fires and re-arms itself; ingest writes no second timer.
    assert cart.timer == timer
    assert len(world.schedules.created) == 1
