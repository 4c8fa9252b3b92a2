"""The step handler's decisions, run against in-memory fakes: what is sent, what is skipped and why, and
that a step is never sent twice or early."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cartrecovery.domain.cart import SENT, SKIPPED, StepRecord
from cartrecovery.domain.store import FlowStep
from cartrecovery.ports import MessageRecord
from cartrecovery.usecases.run_step import StepOutcome
from cartrecovery.usecases.unsubscribe import Unsubscribe
from tests.fakes import (
    PUBLIC_BASE_URL,
    FakeCarts,
    FakeLedger,
    World,
    cart_cleared,
    cart_updated,
    order_placed,
    store_settings,
    unsubscribed,
)

START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
ABANDONED = "2026-12-01T10:00:00+09:00"
LATER = "2026-12-01T11:00:00+09:00"  # after the abandonment, before step 1 is due
STEP1_DUE = START + timedelta(hours=2)
EMAIL = "taro@example.jp"


def abandoned_world(**cart: Any) -> World:
    world = World.create(START)
    world.send(cart_updated(ABANDONED, **cart))
    return world


def fire_step1(world: World) -> StepOutcome:
    world.advance_to(STEP1_DUE)
    (outcome,) = world.fire_due()
    return outcome


def assert_skipped(world: World, outcome: StepOutcome, reason: str) -> None:
    """Nothing sent, the reason recorded on the cart, and nothing left armed."""
    assert (outcome.action, outcome.reason) == ("skipped", reason)
    assert world.mailer.sent == []
    cart = world.cart("c-1")
    assert (cart.decisions[-1].action, cart.decisions[-1].reason) == ("skipped", reason)
    assert cart.timer is None
    assert world.schedules.pending == {}
    assert len(world.schedules.created) == 1  # only the first step's timer, never a next one


# --- sending ------------------------------------------------------------------------------------------------


def test_step_one_is_sent_and_step_two_armed() -> None:
    world = abandoned_world()
    outcome = fire_step1(world)

    assert outcome.action == "sent" and outcome.message_id
    (email,) = world.mailer.sent
    assert email.to == EMAIL
    assert "Matcha Shop" in email.sender and "shop@example.jp" in email.sender
    assert email.subject and "抹茶ラテ" in email.html
    unsubscribe = email.headers["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{PUBLIC_BASE_URL}/u/") and unsubscribe.endswith(">")
    assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe[1:-1] in email.text  # the same link, visibly in the body
    assert email.tags == {"store": "shop-1", "flow": "cart_recovery", "step": "1", "variant": "a", "day": "2026-12-01"}

    cart = world.cart("c-1")
    record = cart.step_record("cart_recovery", 1)
    assert record is not None and (record.status, record.message_id) == (SENT, outcome.message_id)
    assert cart.timer is not None and cart.timer.step == 2
    assert cart.timer.due_at == datetime.fromisoformat(ABANDONED) + timedelta(days=3)
    assert world.schedules.pending[cart.timer.schedule_name].payload == {
        "store_id": "shop-1",
        "cart_id": "c-1",
        "flow": "cart_recovery",
        "step": 2,
    }
    assert [d.action for d in cart.decisions] == ["armed", "sent"]

    message = world.ledger.get(outcome.message_id or "")
    assert message is not None and (message.cart_id, message.step) == ("c-1", 1)
    assert EMAIL not in repr(message)  # the ledger keeps a salted hash, not the address
    contact = world.contacts.get_many("shop-1", [world.email_key(EMAIL)])[world.email_key(EMAIL)]
    assert contact.last_message is not None and contact.last_message["message_id"] == outcome.message_id


def test_the_three_steps_go_out_and_no_fourth_is_armed() -> None:
    world = abandoned_world()
    abandoned = datetime.fromisoformat(ABANDONED)
    for due in (timedelta(hours=2), timedelta(days=3), timedelta(days=7)):
        world.advance_to(abandoned + due)
        assert [o.action for o in world.fire_due()] == ["sent"]

    assert [e.tags["step"] for e in world.mailer.sent] == ["1", "2", "3"]
    cart = world.cart("c-1")
    assert cart.timer is None
    assert world.schedules.pending == {}
    assert [t.step for t in world.schedules.created] == [1, 2, 3]

    # A stray re-delivery after the last step sends nothing and arms nothing.
    stray = world.fire("c-1", 3)
    assert (stray.action, stray.reason) == ("already_done", None)
    assert len(world.mailer.sent) == 3 and world.schedules.pending == {}


def test_an_order_before_the_abandonment_does_not_block_the_reminder() -> None:
    world = abandoned_world()
    world.send(order_placed("2026-11-20T10:00:00+09:00", cart_id="c-old", email=EMAIL, order_id="o-old"))
    assert fire_step1(world).action == "sent"


# --- skips, with the reason recorded ------------------------------------------------------------------------


def test_an_order_for_this_cart_stops_it() -> None:
    world = abandoned_world()
    world.send(order_placed(LATER))
    assert_skipped(world, fire_step1(world), "cart_ordered")


def test_an_order_by_the_same_address_for_another_cart_stops_it() -> None:
    world = abandoned_world()
    world.send(order_placed(LATER, cart_id="c-other-device", email="Taro@Example.jp"))
    assert_skipped(world, fire_step1(world), "ordered_since")


def test_an_order_by_the_same_customer_id_stops_it_whatever_the_address() -> None:
    world = abandoned_world(customer_id="u-42")
    world.send(order_placed(LATER, cart_id=None, email="work-address@example.com", customer_id="u-42"))
    assert_skipped(world, fire_step1(world), "ordered_since")


def test_a_cleared_cart_is_not_reminded() -> None:
    world = abandoned_world()
    world.send(cart_cleared(LATER))
    assert_skipped(world, fire_step1(world), "cart_cleared")


def test_an_unsubscribed_address_is_not_emailed() -> None:
    world = abandoned_world()
    world.send(unsubscribed(LATER))
    assert_skipped(world, fire_step1(world), "unsubscribed")


def test_a_suppressed_address_is_not_emailed() -> None:
    world = abandoned_world()
    world.contacts.suppress("shop-1", world.email_key(EMAIL), "bounced", START)
    assert_skipped(world, fire_step1(world), "suppressed")


@pytest.mark.parametrize("consent", [None, False], ids=["no-consent-given", "consent-refused"])
def test_without_marketing_consent_nothing_is_sent(consent: bool | None) -> None:
    world = abandoned_world(consent=consent)
    assert_skipped(world, fire_step1(world), "no_consent")


def test_a_cart_paused_for_consent_resumes_when_later_activity_brings_it() -> None:
    world = abandoned_world(consent=None)
    assert_skipped(world, fire_step1(world), "no_consent")

    world.advance_to(datetime.fromisoformat("2026-12-01T13:00:00+09:00"))
    world.send(cart_updated("2026-12-01T13:00:00+09:00", consent=True))
    timer = world.cart("c-1").timer
    assert timer is not None and (timer.step, timer.due_at) == (1, datetime.fromisoformat("2026-12-01T15:00:00+09:00"))
    world.advance_to(timer.due_at)
    assert [o.action for o in world.fire_due()] == ["sent"]


def test_a_cart_without_an_address_is_stored_but_never_emailed() -> None:
    world = abandoned_world(email=None)
    assert_skipped(world, fire_step1(world), "no_email")


def test_one_click_unsubscribe_from_step_one_stops_step_two() -> None:
    world = abandoned_world()
    assert fire_step1(world).action == "sent"
    token = world.mailer.sent[0].headers["List-Unsubscribe"][1:-1].rsplit("/", 1)[1]
    Unsubscribe(world.stores, world.contacts, world.ledger, world.clock)(token)

    world.advance_to(datetime.fromisoformat(ABANDONED) + timedelta(days=3))
    (outcome,) = world.fire_due()
    assert (outcome.action, outcome.reason) == ("skipped", "unsubscribed")
    assert len(world.mailer.sent) == 1
    assert world.cart("c-1").timer is None


def test_a_step_overdue_past_the_late_limit_is_skipped_and_the_next_one_armed() -> None:
    world = abandoned_world()
    world.advance_to(STEP1_DUE + timedelta(days=1, minutes=1))  # an outage: the schedule fired a day late
    (outcome,) = world.fire_due()

    assert outcome.action == "rearmed" and outcome.step == 2
    assert world.mailer.sent == []
    record = world.cart("c-1").step_record("cart_recovery", 1)
    assert record is not None and (record.status, record.reason) == (SKIPPED, "too_late")


def test_a_step_whose_delay_the_store_shortened_after_arming_is_sent_when_its_timer_fires() -> None:
    # Step 2 was armed for three days after the activity; the store then asks for it after one day. The
    # timer fires at its time: the step is as late as the store's change, which is no outage.
    world = abandoned_world()
    fire_step1(world)
    armed = world.cart("c-1").timer
    assert armed is not None and armed.step == 2
    flow = world.store.settings.flows["cart_recovery"]
    shorter = dataclasses.replace(flow, steps=(flow.steps[0], FlowStep(2, 86400), *flow.steps[2:]))
    settings = dataclasses.replace(world.store.settings, flows={"cart_recovery": shorter})
    world.stores.save(dataclasses.replace(world.store, settings=settings))

    world.advance_to(armed.due_at)
    (outcome,) = world.fire_due()

    assert (outcome.action, outcome.step) == ("sent", 2)
    assert len(world.mailer.sent) == 2


def test_steps_skipped_as_too_late_arm_the_next_one_as_the_next_step_not_as_activity() -> None:
    world = abandoned_world()
    world.advance_to(STEP1_DUE + timedelta(days=1, minutes=1))
    world.fire_due()

    decision = world.cart("c-1").decisions[-1]
    assert (decision.action, decision.step, decision.reason) == ("rearmed", 2, "next_step")


# --- never twice, never early -------------------------------------------------------------------------------


def test_a_message_that_cannot_be_written_fails_with_the_step_unclaimed() -> None:
    # A store saved before its sender name was checked: the From header cannot hold the line break. The
    # invocation must fail visibly (retried, then dead-lettered) and leave the step free to send once the
    # store is fixed, not claimed and then abandoned as an unknown outcome.
    world = World.create(START, store_settings(sender_name="Matcha\nShop"))
    world.send(cart_updated(ABANDONED))
    world.advance_to(STEP1_DUE)
    (due,) = world.schedules.due(world.clock.now())

    with pytest.raises(ValueError, match="CR or LF"):
        world.run_step(due.payload)

    assert world.mailer.sent == []
    assert world.cart("c-1").steps == {}


def test_a_second_delivery_of_the_same_firing_sends_nothing() -> None:
    world = abandoned_world()
    assert fire_step1(world).action == "sent"
    decisions_before = world.cart("c-1").decisions
    again = world.fire("c-1", 1)
    assert again.action == "already_done"
    assert len(world.mailer.sent) == 1
    record = world.cart("c-1").step_record("cart_recovery", 1)
    assert record is not None and record.status == SENT
    # The operator's "why" log is left as it was: a retried delivery is not cart activity.
    assert world.cart("c-1").decisions == decisions_before


class RacingCarts(FakeCarts):
    """Lets a second delivery run to completion between the first one's read and its claim."""

    def __init__(self) -> None:
        super().__init__()
        self.before_first_claim: list[StepOutcome] = []
        self.racer: Callable[[], StepOutcome] | None = None

    def claim_step(self, store_id: str, cart_id: str, key: str, record: StepRecord) -> bool:
        racer, self.racer = self.racer, None
        if racer is not None:
            self.before_first_claim.append(racer())
        return super().claim_step(store_id, cart_id, key, record)


def test_two_deliveries_racing_for_the_same_step_send_one_email() -> None:
    carts = RacingCarts()
    world = World.create(START, carts=carts)
    world.send(cart_updated(ABANDONED))
    world.advance_to(STEP1_DUE)
    carts.racer = lambda: world.fire("c-1", 1)

    first = world.fire("c-1", 1)

    (second,) = carts.before_first_claim
    assert second.action == "sent"
    assert first.action == "already_claimed"
    assert len(world.mailer.sent) == 1
    assert [t.step for t in world.schedules.created] == [1, 2]  # step 2 armed once


class LedgerDownOnce(FakeLedger):
    """A ledger whose first record fails after SES took the email (DynamoDB unavailable, or a counter row
    contended for past every retry)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def record_sent(self, message: MessageRecord) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("messages table unavailable")
        super().record_sent(message)


def test_an_email_whose_record_failed_after_sending_still_holds_the_frequency_cap() -> None:
    world = World.create(START, ledger=LedgerDownOnce())
    world.send(cart_updated(ABANDONED, "c-1"))
    world.send(cart_updated(LATER, "c-2"))  # the same address, another cart, an hour later
    world.advance_to(STEP1_DUE)
    with pytest.raises(RuntimeError, match="messages table"):
        world.fire_due()
    assert len(world.mailer.sent) == 1  # SES took it; the invocation failed after

    world.advance_to(STEP1_DUE + timedelta(hours=1))
    (second,) = world.fire_due()

    assert (second.action, second.reason) == ("deferred", "frequency_cap")
    assert len(world.mailer.sent) == 1


def test_a_timer_that_fires_before_newer_activity_plus_delay_waits_instead_of_sending() -> None:
    world = abandoned_world()
    world.send(cart_updated("2026-12-01T11:30:00+09:00"))  # the shopper came back; the old timer stays armed
    new_due = datetime.fromisoformat("2026-12-01T13:30:00+09:00")

    early = fire_step1(world)
    assert (early.action, early.reason) == ("rearmed", "cart_activity")
    assert world.mailer.sent == []
    cart = world.cart("c-1")
    assert cart.timer is not None and cart.timer.due_at == new_due

    world.advance_to(new_due - timedelta(minutes=1))
    assert world.fire("c-1", 1).action == "rearmed"  # a retry of the old firing still does not send
    assert world.mailer.sent == []

    world.advance_to(new_due)
    assert [o.action for o in world.fire_due()] == ["sent"]
    assert len(world.mailer.sent) == 1


class StaleOnce(FakeCarts):
    """Carts whose next read returns ``stale``: a delivery that read the cart just before another delivery of
    the same firing claimed its step."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: Any = None

    def get(self, store_id: str, cart_id: str) -> Any:
        stale, self.stale = self.stale, None
        return stale or super().get(store_id, cart_id)


def test_a_delivery_that_read_the_cart_before_another_sent_the_step_changes_nothing() -> None:
    """It then finds the address emailed a moment ago and would defer the step for the frequency cap: setting
    the timer back to the sent step over the next one, and logging a deferral of an email that went out."""
    world = World.create(START, carts=StaleOnce())
    world.send(cart_updated(ABANDONED))
    world.advance_to(STEP1_DUE)
    before = world.cart("c-1")
    (sent,) = world.fire_due()
    assert sent.action == "sent"
    after = world.cart("c-1")
    assert after.timer is not None and after.timer.step == 2

    world.carts.stale = before  # type: ignore[attr-defined]
    late = world.fire("c-1", 1)

    assert (late.action, late.step) == ("already_claimed", 1)
    assert world.cart("c-1").timer == after.timer
    assert world.cart("c-1").decisions == after.decisions
    assert len(world.mailer.sent) == 1


def test_a_delivery_that_judged_a_step_too_late_keeps_the_record_of_one_that_sent_it() -> None:
    """At the late limit's edge one delivery may send the step and another, a moment later, find it overdue:
    the second must not overwrite the sent step's record (its message id credits the cart's orders)."""
    world = World.create(START, store_settings(late_limit_seconds=3600), carts=StaleOnce())
    world.send(cart_updated(ABANDONED))
    world.advance_to(STEP1_DUE + timedelta(minutes=59))
    before = world.cart("c-1")
    (sent,) = world.fire_due()
    assert sent.action == "sent"

    world.advance_to(STEP1_DUE + timedelta(minutes=61))
    world.carts.stale = before  # type: ignore[attr-defined]
    late = world.fire("c-1", 1)

    assert (late.action, late.step) == ("already_claimed", 1)
    record = world.cart("c-1").step_record("cart_recovery", 1)
    assert record is not None and record.status == SENT and record.message_id == sent.message_id
