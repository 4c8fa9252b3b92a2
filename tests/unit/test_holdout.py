"""Holdout groups: which shoppers get no emails, what is recorded for each group, which orders count for it,
and the report's comparison of the two."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cartrecovery.domain.cart import HELD_OUT, SENT
from cartrecovery.domain.measurement import (
    ENTRY_STEP,
    HOLDOUT,
    TREATED,
    GroupFigures,
    entry_id,
    group_for,
    lift,
    measurement_window,
)
from cartrecovery.domain.store import DEFAULT_CART_RECOVERY, StoreSettings, settings_shape_problem
from cartrecovery.identity import email_hash
from cartrecovery.usecases.report import build_report
from tests.fakes import World, cart_updated, order_placed, store_settings

START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
ABANDONED = "2026-12-01T10:00:00+09:00"
STEP1_DUE = START + timedelta(hours=2)
FLOW = "cart_recovery"


def holdout_world(percent: int = 50) -> World:
    return World.create(START, store_settings(holdout_percent=percent))


def shopper_in(world: World, group: str) -> str:
    """An address the store's salt puts in ``group`` of the cart-recovery flow."""
    for n in range(1000):
        email = f"shopper{n}@example.jp"
        if group_for(email_hash(world.store.salt, email), FLOW, world.store.settings.holdout_percent) == group:
            return email
    raise AssertionError(f"no address in {group}")


def first_step_fired(world: World, group: str) -> str:
    """A shopper of ``group`` abandons cart c-1 and its first step fires; returns the shopper's address."""
    email = shopper_in(world, group)
    world.send(cart_updated(ABANDONED, email=email))
    world.advance_to(STEP1_DUE)
    world.fire_due()
    return email


def entry_rows(world: World) -> dict[str, dict[str, object]]:
    """The counters of entries, by group."""
    return {variant: values for (_, _, _, step, variant), values in world.ledger.counters.items() if step == 0}


# --- who is held out ----------------------------------------------------------------------------------------


def test_groups_are_drawn_per_address_and_flow_in_the_set_share() -> None:
    hashes = [email_hash("salt", f"s{n}@example.jp") for n in range(10_000)]
    held = sum(group_for(h, FLOW, 20) == HOLDOUT for h in hashes)
    assert 1840 <= held <= 2160  # 20% of 10,000 within four standard deviations (40)
    assert all(group_for(h, FLOW, 0) == TREATED for h in hashes[:500])
    # The draw is pinned: changing it would move running shoppers between groups.
    assert [group_for(h, FLOW, 50) for h in hashes[:8]] == [
        HOLDOUT,
        TREATED,
        HOLDOUT,
        TREATED,
        TREATED,
        TREATED,
        HOLDOUT,
        TREATED,
    ]
    # Raising the share only moves emailed shoppers into the holdout, never one back; another flow draws apart.
    assert all(group_for(h, FLOW, 50) == HOLDOUT for h in hashes if group_for(h, FLOW, 20) == HOLDOUT)
    assert [group_for(h, FLOW, 50) for h in hashes[:200]] != [group_for(h, "browse", 50) for h in hashes[:200]]


def test_holdout_percent_is_a_whole_number_up_to_half() -> None:
    base = {"store_id": "s", "name": "n", "sender_email": "a@example.jp"}
    assert settings_shape_problem({**base, "holdout_percent": 10}) is None
    assert settings_shape_problem({**base, "holdout_percent": 0}) is None
    assert "from 0 to 50" in (settings_shape_problem({**base, "holdout_percent": 51}) or "")
    assert "from 0 to 50" in (settings_shape_problem({**base, "holdout_percent": -1}) or "")
    assert "whole number" in (settings_shape_problem({**base, "holdout_percent": 12.5}) or "")
    assert StoreSettings.from_dict({**base, "holdout_percent": 10}).holdout_percent == 10
    assert StoreSettings.from_dict(base).holdout_percent == 0


# --- the held-out cart ----------------------------------------------------------------------------------------


def test_a_held_out_shopper_gets_no_email_and_the_entry_is_recorded() -> None:
    world = holdout_world()
    email = shopper_in(world, HOLDOUT)
    world.send(cart_updated(ABANDONED, email=email))
    world.advance_to(STEP1_DUE)

    (outcome,) = world.fire_due()

    assert (outcome.action, outcome.reason) == ("skipped", "holdout")
    assert world.mailer.sent == []
    cart = world.cart("c-1")
    record = cart.step_record(FLOW, 1)
    assert record is not None and record.status == HELD_OUT
    assert record.entry_id == entry_id("shop-1", FLOW, "c-1")
    assert cart.timer is None and world.schedules.pending == {}
    assert (cart.decisions[-1].action, cart.decisions[-1].reason) == ("skipped", "holdout")
    entry = world.ledger.get(record.entry_id)
    assert entry is not None and (entry.step, entry.variant, entry.day) == (ENTRY_STEP, HOLDOUT, "2026-12-01")
    assert entry_rows(world) == {HOLDOUT: {"entered": 1}}
    contact = world.contacts.get_many("shop-1", [world.email_key(email)])[world.email_key(email)]
    assert contact.last_entry == {"entry_id": record.entry_id, "flow": FLOW, "at": "2026-12-01T03:00:00Z"}
    assert contact.last_message is None  # no email: the frequency cap and email attribution see nothing


def test_a_held_out_cart_stays_out_of_the_flow_after_new_activity() -> None:
    world = holdout_world()
    email = first_step_fired(world, HOLDOUT)

    world.send(cart_updated("2026-12-01T13:00:00+09:00", email=email))
    world.advance_to(START + timedelta(days=10))

    assert world.fire_due() == []
    assert world.mailer.sent == []
    assert world.fire("c-1", 1).action == "already_done"  # a stray re-delivery of the firing
    assert world.fire("c-1", 2).action == "skipped" and world.mailer.sent == []
    assert entry_rows(world) == {HOLDOUT: {"entered": 1}}


def test_a_held_out_step_whose_invocation_died_is_finished_by_the_next_delivery() -> None:
    world = holdout_world()
    email = shopper_in(world, HOLDOUT)
    world.send(cart_updated(ABANDONED, email=email))
    world.advance_to(STEP1_DUE)
    entering = world.cart("c-1")
    world.ledger.record_entry = lambda entry: (_ for _ in ()).throw(RuntimeError("died"))  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        world.fire("c-1", 1)
    del world.ledger.record_entry  # the instance's own again
    assert world.cart("c-1").timer == entering.timer  # claimed, but the flow not ended yet

    outcome = world.fire("c-1", 1)

    assert (outcome.action, outcome.reason) == ("skipped", "holdout")
    assert entry_rows(world) == {HOLDOUT: {"entered": 1}}
    assert world.cart("c-1").timer is None and world.mailer.sent == []


# --- the treated cart -------------------------------------------------------------------------------------------


def test_a_treated_shopper_gets_every_email_and_one_entry() -> None:
    world = holdout_world()
    email = shopper_in(world, TREATED)
    world.send(cart_updated(ABANDONED, email=email))
    abandoned = datetime.fromisoformat(ABANDONED)
    for due in (timedelta(hours=2), timedelta(days=3), timedelta(days=7)):
        world.advance_to(abandoned + due)
        assert [o.action for o in world.fire_due()] == ["sent"]

    assert len(world.mailer.sent) == 3
    cart = world.cart("c-1")
    first = cart.step_record(FLOW, 1)
    assert first is not None and first.status == SENT and first.entry_id == entry_id("shop-1", FLOW, "c-1")
    assert all(cart.step_record(FLOW, n).entry_id is None for n in (2, 3))  # type: ignore[union-attr]
    assert entry_rows(world) == {TREATED: {"entered": 1}}


def test_a_cart_emailed_before_the_store_set_a_holdout_stays_treated() -> None:
    world = World.create(START)
    email = "taro@example.jp"
    world.send(cart_updated(ABANDONED, email=email))
    world.advance_to(STEP1_DUE)
    assert [o.action for o in world.fire_due()] == ["sent"]
    world.stores.save(dataclasses.replace(world.store, settings=store_settings(holdout_percent=50)))
    world.store = world.stores.get("shop-1")  # type: ignore[assignment]

    world.advance_to(datetime.fromisoformat(ABANDONED) + timedelta(days=3))
    assert [o.action for o in world.fire_due()] == ["sent"]
    assert entry_rows(world) == {}


def test_a_store_without_holdout_records_no_entries() -> None:
    world = World.create(START)
    world.send(cart_updated(ABANDONED))
    world.advance_to(STEP1_DUE)
    world.fire_due()
    world.send(order_placed("2026-12-01T15:00:00+09:00"))

    assert entry_rows(world) == {}
    assert not any(m.startswith("entry#") for m in world.ledger.messages)
    assert build_report(world.ledger, "shop-1", START.date(), START.date())["holdout"] == []


# --- orders -------------------------------------------------------------------------------------------------------


def test_an_order_for_a_held_out_cart_converts_its_entry_once() -> None:
    world = holdout_world()
    email = first_step_fired(world, HOLDOUT)

    world.send(order_placed("2026-12-02T10:00:00+09:00", email=email, total=5000))
    world.send(order_placed("2026-12-02T10:00:00+09:00", email=email, total=5000))  # sent again, new webhook-id

    assert entry_rows(world) == {HOLDOUT: {"entered": 1, "converted": 1, "revenue": Decimal(5000)}}


def test_an_order_converts_the_treated_email_and_the_entry_each_once() -> None:
    world = holdout_world()
    email = shopper_in(world, TREATED)
    world.send(cart_updated(ABANDONED, email=email))
    world.advance_to(STEP1_DUE)
    (sent,) = world.fire_due()

    world.send(order_placed("2026-12-01T15:00:00+09:00", email=email, total=3000))

    assert entry_rows(world) == {TREATED: {"entered": 1, "converted": 1, "revenue": Decimal(3000)}}
    message = world.ledger.get(sent.message_id or "")
    assert message is not None and "converted" in message.marks
    report = build_report(world.ledger, "shop-1", START.date(), START.date())
    assert report["totals"]["converted"] == 1 and report["totals"]["revenue"] == 3000  # the email's, once
    assert [row["step"] for row in report["rows"]] == [1]  # entries have no row of their own


def test_an_order_naming_no_cart_finds_the_entry_by_address_within_the_window() -> None:
    world = holdout_world()
    email = first_step_fired(world, HOLDOUT)
    window = measurement_window(DEFAULT_CART_RECOVERY)
    assert window == timedelta(days=7) - timedelta(hours=2) + timedelta(days=7)

    late = (STEP1_DUE + window + timedelta(minutes=1)).isoformat()
    world.send(order_placed(late, cart_id=None, email=email, order_id="o-late"))
    assert entry_rows(world) == {HOLDOUT: {"entered": 1}}

    inside = (STEP1_DUE + window - timedelta(minutes=1)).isoformat()
    world.send(order_placed(inside, cart_id=None, email=email, order_id="o-in", total=1200))
    assert entry_rows(world) == {HOLDOUT: {"entered": 1, "converted": 1, "revenue": Decimal(1200)}}


def test_an_order_before_the_entry_does_not_convert_it() -> None:
    world = holdout_world()
    email = first_step_fired(world, HOLDOUT)

    world.send(order_placed("2026-12-01T11:00:00+09:00", cart_id=None, email=email, order_id="o-before"))

    assert entry_rows(world) == {HOLDOUT: {"entered": 1}}


# --- the report -----------------------------------------------------------------------------------------------


def test_the_report_compares_the_groups() -> None:
    world = holdout_world()
    emails: dict[str, list[str]] = {TREATED: [], HOLDOUT: []}  # four shoppers of each group
    for n in range(1000):
        address = f"buyer{n}@example.jp"
        group = group_for(email_hash(world.store.salt, address), FLOW, 50)
        if len(emails[group]) < 4:
            emails[group].append(address)
    for group, addresses in emails.items():
        for i, address in enumerate(addresses):
            world.send(cart_updated(ABANDONED, cart_id=f"{group}-{i}", email=address))
    world.advance_to(STEP1_DUE)
    world.fire_due()
    # Two treated carts and one held-out cart are bought.
    for cart_id, address in (("treated-0", emails[TREATED][0]), ("treated-1", emails[TREATED][1])):
        world.send(order_placed("2026-12-01T15:00:00+09:00", cart_id=cart_id, email=address, order_id=cart_id))
    world.send(order_placed("2026-12-01T15:00:00+09:00", cart_id="holdout-0", email=emails[HOLDOUT][0], total=1000))

    (flow,) = build_report(world.ledger, "shop-1", START.date(), START.date())["holdout"]

    assert flow["flow"] == FLOW
    assert flow[TREATED] == {
        "carts": 4,
        "converted": 2,
        "revenue": 5120,
        "conversion_rate": 0.5,
        "revenue_per_cart": 1280,
    }
    assert flow[HOLDOUT] == {
        "carts": 4,
        "converted": 1,
        "revenue": 1000,
        "conversion_rate": 0.25,
        "revenue_per_cart": 250,
    }
    assert flow["lift"]["conversion_rate"] == 0.25
    assert flow["lift"]["incremental_revenue"] == 4120  # (1280 - 250) x 4 treated carts
    assert flow["lift"]["significant"] is False  # four carts a side prove nothing
    low, high = flow["lift"]["interval_95"]
    assert low < 0 < high


def test_lift_and_its_interval() -> None:
    measured = lift(GroupFigures(100, 30, Decimal(30000)), GroupFigures(100, 10, Decimal(9000)))
    assert measured is not None
    assert measured.points == pytest.approx(0.20)
    # One success and one failure added a side: 31/102 and 11/102, centred on 0.196078, spread
    # sqrt(31/102 * 71/102 / 102 + 11/102 * 91/102 / 102) = 0.054930.
    assert (measured.low, measured.high) == (
        pytest.approx(0.196078 - 1.959964 * 0.054930, abs=1e-6),
        pytest.approx(0.196078 + 1.959964 * 0.054930, abs=1e-6),
    )
    assert measured.significant
    assert measured.incremental_revenue == Decimal(21000)
    assert lift(GroupFigures(10, 1, Decimal(0)), GroupFigures(0, 0, Decimal(0))) is None


def test_a_small_group_with_no_orders_is_not_taken_as_certain() -> None:
    """5 of 50 emailed carts bought and none of 10 held out: the plain interval (0.018 to 0.18) would call
    that significant, as if ten carts had shown the held-out rate to be exactly zero."""
    measured = lift(GroupFigures(50, 5, Decimal(0)), GroupFigures(10, 0, Decimal(0)))
    assert measured is not None
    assert measured.points == pytest.approx(0.10)
    assert measured.low < 0 < measured.high
    assert not measured.significant
