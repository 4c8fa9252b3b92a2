"""A cart's state and its emails depend on what happened, not on how the events arrived.

Hypothesis draws one cart's history (several updates with different contents and times, perhaps an order and a
clear) and delivers it shuffled, with re-deliveries under the same event id and re-sends under a new one. The
stored cart must be what the history says, read in ``occurred_at`` order: the earliest order or clear closes it
for good (an order wins a tie), an open cart holds the newest update's contents. Running the flow afterwards
sends the same emails, at the same times, as the same history delivered once each in order.

Runs on the in-memory fakes (``tests/fakes.py``), which keep the adapters' conditional-write behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from cartrecovery.domain.cart import CLEARED, OPEN, ORDERED, CartState
from tests.fakes import World, cart_cleared, cart_updated, item_body, order_placed

CART = "c-1"
EMAIL = "taro@example.jp"
START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
ARRIVAL = START + timedelta(minutes=61)  # after the whole history, before the first step falls due
FLOW_RUN = timedelta(days=10)  # long enough for the default flow's three steps


@dataclass(frozen=True)
class Happened:
    kind: str  # update, order, clear
    minute: int  # after START; unique within a history
    quantity: int = 1  # an update's contents

    @property
    def at(self) -> datetime:
        return START + timedelta(minutes=self.minute)

    def body(self) -> dict[str, Any]:
        at = self.at.isoformat()
        if self.kind == "update":
            return cart_updated(at, CART, EMAIL, items=[item_body("TEA-001", 1280, self.quantity)])
        if self.kind == "order":
            return order_placed(at, CART, EMAIL, order_id=f"o-{self.minute}", total=1280 * self.quantity)
        return cart_cleared(at, CART)


@st.composite
def histories(draw: st.DrawFn) -> list[Happened]:
    kinds = ["update"] * draw(st.integers(1, 5))
    kinds += ["order"] * draw(st.integers(0, 1)) + ["clear"] * draw(st.integers(0, 1))
    minutes = draw(st.lists(st.integers(0, 60), min_size=len(kinds), max_size=len(kinds), unique=True))
    return [
        Happened(kind, minute, quantity=draw(st.integers(1, 9))) for kind, minute in zip(kinds, minutes, strict=True)
    ]


@st.composite
def deliveries(draw: st.DrawFn, history: list[Happened]) -> list[tuple[int, bool]]:
    """(index into the history, whether under a fresh event id), shuffled; each event at least once."""
    first = [(i, False) for i in range(len(history))]
    again = draw(st.lists(st.tuples(st.integers(0, len(history) - 1), st.booleans()), max_size=len(history) * 2))
    return draw(st.permutations(first + again))


def expected(history: list[Happened]) -> dict[str, Any]:
    """The history read in ``occurred_at`` order: what a user must see on the stored cart."""
    ordered = sorted(history, key=lambda h: (h.minute, h.kind != "order"))
    closing = next((h for h in ordered if h.kind != "update"), None)
    live = [h for h in ordered if h.kind == "update" and (closing is None or h.minute < closing.minute)]
    if closing is not None:
        return {
            "status": ORDERED if closing.kind == "order" else CLEARED,
            "closed_at": closing.at,
            "order_id": f"o-{closing.minute}" if closing.kind == "order" else None,
        }
    newest = live[-1]
    return {
        "status": OPEN,
        "closed_at": None,
        "order_id": None,
        "quantities": [newest.quantity],
        "total": Decimal(1280 * newest.quantity),
        "last_activity_at": newest.at,
    }


def observed(cart: CartState) -> dict[str, Any]:
    seen: dict[str, Any] = {"status": cart.status, "closed_at": cart.closed_at, "order_id": cart.order_id}
    if cart.is_open:
        seen |= {
            "quantities": [item.quantity for item in cart.items],
            "total": cart.total,
            "last_activity_at": cart.last_activity_at,
        }
    return seen


def run(history: list[Happened], order: list[tuple[int, bool]]) -> tuple[CartState, list[tuple[str, datetime]]]:
    """Deliver, then let the Scheduler fire each due schedule at its time; the emails as (step, sent at)."""
    world = World.create(ARRIVAL)
    for n, (index, fresh_id) in enumerate(order):
        world.send(history[index].body(), event_id=f"evt-{n}" if fresh_id else f"evt-{index}-of-{CART}")
        world.clock.advance(1)
    emails: list[tuple[str, datetime]] = []
    end = world.clock.now() + FLOW_RUN
    while due := world.schedules.due(end):
        world.clock.set(max(world.clock.now(), due[0].timer.due_at))
        outcome = world.run_step(world.schedules.take(due[0].timer.schedule_name).payload)
        if outcome.action == "sent":
            emails.append((world.mailer.sent[-1].tags["step"], world.clock.now()))
    return world.cart(CART), emails


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_arrival_order_and_repeats_give_the_state_and_emails_of_the_history(data: st.DataObject) -> None:
    history = data.draw(histories(), label="history")
    shuffled = data.draw(deliveries(history), label="deliveries")
    in_order = [(i, False) for i in sorted(range(len(history)), key=lambda i: history[i].minute)]

    cart, emails = run(history, shuffled)
    clean_cart, clean_emails = run(history, in_order)
    note(f"emails {emails} / in order {clean_emails}")

    assert observed(cart) == expected(history)
    assert observed(clean_cart) == expected(history)
    assert emails == clean_emails
    assert len(emails) == (3 if cart.is_open else 0)  # the default flow: every step, or nothing once closed
