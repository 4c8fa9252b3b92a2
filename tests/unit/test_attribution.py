"""Which email an order is credited to: the latest one before it, of its cart or else of its address, and only
within the attribution window after that email was sent."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from cartrecovery.domain.measurement import ATTRIBUTION_WINDOW
from cartrecovery.domain.store import DEFAULT_CART_RECOVERY
from cartrecovery.usecases.run_step import StepOutcome
from tests.fakes import World, cart_updated, order_placed, store_settings

START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
STEP1_DUE = START + timedelta(hours=2)
EMAIL = "taro@example.jp"


def one_email_world() -> World:
    """A store whose cart flow sends only its first email, so a cart's last email is step 1."""
    flow = dataclasses.replace(DEFAULT_CART_RECOVERY, steps=DEFAULT_CART_RECOVERY.steps[:1])
    return World.create(START, store_settings(flows={"cart_recovery": flow}))


def step_one_sent(world: World, cart_id: str = "c-1", at: datetime = START) -> StepOutcome:
    """Cart ``cart_id`` is abandoned at ``at`` and its step-1 email goes out two hours later."""
    world.advance_to(at)
    world.send(cart_updated(at.isoformat(), cart_id=cart_id, email=EMAIL))
    world.advance_to(at + timedelta(hours=2))
    (sent,) = world.fire_due()
    assert sent.message_id
    return sent


def converted(world: World, sent: StepOutcome) -> bool:
    message = world.ledger.get(sent.message_id or "")
    assert message is not None
    return "converted" in message.marks


def test_an_order_naming_its_cart_within_the_window_converts_the_carts_email() -> None:
    world = one_email_world()
    sent = step_one_sent(world)

    world.send(order_placed((STEP1_DUE + ATTRIBUTION_WINDOW - timedelta(minutes=1)).isoformat(), cart_id="c-1"))

    assert converted(world, sent)


def test_an_order_naming_its_cart_after_the_window_converts_nothing() -> None:
    """The cart is kept for 90 days; a shopper who buys it weeks after its email came back on their own."""
    world = one_email_world()
    sent = step_one_sent(world)

    world.send(order_placed((STEP1_DUE + ATTRIBUTION_WINDOW + timedelta(minutes=1)).isoformat(), cart_id="c-1"))

    assert not converted(world, sent)
    assert not any(values.get("converted") for values in world.ledger.counters.values())


def test_past_its_carts_window_an_order_is_credited_to_the_addresss_later_email() -> None:
    world = one_email_world()
    old = step_one_sent(world, "c-old")
    later = step_one_sent(world, "c-new", START + timedelta(days=6))
    world.advance_to(START + timedelta(days=9))

    world.send(order_placed((START + timedelta(days=9)).isoformat(), cart_id="c-old"))

    assert not converted(world, old)
    assert converted(world, later)
