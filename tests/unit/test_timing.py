"""When steps fall due (2 h, 3 d, 7 d after the last activity) and how quiet hours defer them, in the
recipient's time zone or else the store's."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from cartrecovery.domain.cart import CartState
from cartrecovery.domain.store import CART_RECOVERY, DEFAULT_CART_RECOVERY, QuietHours
from cartrecovery.domain.timing import MIN_LEAD, due_at, next_step, timer_for
from tests.fakes import World, cart_updated, store_settings

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
QUIET = QuietHours(time(21, 0), time(8, 0))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def test_the_default_flow_is_2_hours_3_days_7_days_after_last_activity() -> None:
    last = local(TOKYO, 2026, 12, 1, 10, 15)
    cart = CartState("shop-1", "c-1", last_activity_at=last)
    due = [due_at(cart, step) for step in DEFAULT_CART_RECOVERY.steps]
    assert due == [last + timedelta(hours=2), last + timedelta(days=3), last + timedelta(days=7)]


def test_ingest_arms_step_one_two_hours_after_the_activity() -> None:
    world = World.create(utc(2026, 12, 1, 1, 15, 30))
    world.send(cart_updated("2026-12-01T10:15:00+09:00"))
    timer = world.cart("c-1").timer
    assert timer is not None
    assert (timer.flow, timer.step, timer.due_at) == (CART_RECOVERY, 1, utc(2026, 12, 1, 3, 15))
    assert [t.schedule_name for t in world.schedules.created] == [timer.schedule_name]


def test_a_due_time_already_past_is_set_a_minute_ahead_never_in_the_past() -> None:
    cart = CartState("shop-1", "c-1", last_activity_at=utc(2026, 12, 1, 0, 0))
    step = DEFAULT_CART_RECOVERY.steps[0]
    now = utc(2026, 12, 1, 5, 0, 0, 250_000)
    timer = timer_for(cart, DEFAULT_CART_RECOVERY, step, now)
    assert now + MIN_LEAD - timedelta(seconds=1) <= timer.due_at <= now + MIN_LEAD
    assert timer.due_at.microsecond == 0


def test_a_timer_set_later_than_its_plan_keeps_the_plan_and_one_on_time_does_not() -> None:
    cart = CartState("shop-1", "c-1", last_activity_at=utc(2026, 12, 1, 0, 0))
    flow, step = DEFAULT_CART_RECOVERY, DEFAULT_CART_RECOVERY.steps[0]
    late = timer_for(cart, flow, step, utc(2026, 12, 1, 5, 0))  # a late event: due three hours ago
    assert late.planned_at == utc(2026, 12, 1, 2, 0) and late.meant_for == utc(2026, 12, 1, 2, 0)
    on_time = timer_for(cart, flow, step, utc(2026, 12, 1, 0, 0))
    assert on_time.planned_at is None and on_time.meant_for == on_time.due_at == utc(2026, 12, 1, 2, 0)


def test_a_due_time_with_a_fraction_of_a_second_fires_at_the_next_whole_second_never_before() -> None:
    # Scheduler's times are whole seconds: rounded down, the timer fired before the step was due and was
    # re-armed a minute later, as if the cart had moved.
    cart = CartState("shop-1", "c-1", last_activity_at=utc(2026, 12, 1, 0, 0, 1, 900_000))
    timer = timer_for(cart, DEFAULT_CART_RECOVERY, DEFAULT_CART_RECOVERY.steps[0], utc(2026, 12, 1, 0, 0, 2))
    assert timer.due_at == utc(2026, 12, 1, 2, 0, 2) and timer.planned_at is None


def test_schedule_names_are_stable_per_step_and_time_and_differ_otherwise() -> None:
    cart = CartState("shop-1", "c-1", last_activity_at=utc(2026, 12, 1, 0, 0))
    flow, now = DEFAULT_CART_RECOVERY, utc(2026, 12, 1, 0, 0)
    one = timer_for(cart, flow, flow.steps[0], now)
    assert one == timer_for(cart, flow, flow.steps[0], now)  # a retry collides instead of duplicating
    assert one.schedule_name != timer_for(cart, flow, flow.steps[1], now).schedule_name
    moved = CartState("shop-1", "c-1", last_activity_at=utc(2026, 12, 1, 0, 5))
    assert one.schedule_name != timer_for(moved, flow, flow.steps[0], now).schedule_name
    other_cart = CartState("shop-1", "c-2", last_activity_at=utc(2026, 12, 1, 0, 0))
    assert one.schedule_name != timer_for(other_cart, flow, flow.steps[0], now).schedule_name
    assert len(one.schedule_name) <= 64  # EventBridge Scheduler's limit


def test_the_next_step_is_the_first_without_an_outcome() -> None:
    cart = CartState("shop-1", "c-1", last_activity_at=utc(2026, 12, 1, 0, 0))
    assert next_step(cart, DEFAULT_CART_RECOVERY) == DEFAULT_CART_RECOVERY.steps[0]


# --- quiet hours --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "ends"),
    [
        ((20, 59), None),
        ((21, 0), (2, 8, 0)),  # the start is inside
        ((23, 30), (2, 8, 0)),  # before midnight: ends the next morning
        ((0, 0), (1, 8, 0)),
        ((2, 0), (1, 8, 0)),  # after midnight: ends the same morning
        ((7, 59), (1, 8, 0)),
        ((8, 0), None),  # the end is outside
        ((12, 0), None),
    ],
)
def test_the_window_crosses_midnight(clock: tuple[int, int], ends: tuple[int, int, int] | None) -> None:
    moment = local(TOKYO, 2026, 12, 1, *clock)
    expected = local(TOKYO, 2026, 12, ends[0], ends[1], ends[2]) if ends else None
    assert QUIET.window_end(moment, TOKYO) == expected


def test_the_window_is_read_in_the_given_zone_whatever_the_instant_is_written_in() -> None:
    moment = utc(2026, 12, 1, 13, 0)  # 22:00 in Tokyo, 08:00 in New York
    assert QUIET.window_end(moment, TOKYO) == local(TOKYO, 2026, 12, 2, 8, 0)
    assert QUIET.window_end(moment, NEW_YORK) is None


def test_a_daytime_window_and_an_empty_window() -> None:
    lunch = QuietHours.parse("12:00-13:00")
    assert lunch.window_end(local(TOKYO, 2026, 12, 1, 12, 30), TOKYO) == local(TOKYO, 2026, 12, 1, 13, 0)
    assert lunch.window_end(local(TOKYO, 2026, 12, 1, 23, 0), TOKYO) is None
    never = QuietHours.parse("00:00-00:00")
    assert never.window_end(local(TOKYO, 2026, 12, 1, 3, 0), TOKYO) is None
    assert str(QuietHours.parse(" 21:00 - 08:00 ")) == "21:00-08:00"


def test_the_window_ends_at_local_8_even_across_a_clock_change() -> None:
    # New York springs forward at 02:00 on 8 March 2026: 08:00 that morning is 12:00 UTC, not 13:00.
    end = QUIET.window_end(local(NEW_YORK, 2026, 3, 7, 23, 0), NEW_YORK)
    assert end is not None and end.astimezone(UTC) == utc(2026, 3, 8, 12, 0)


# --- the step handler applies them ---------------------------------------------------------------------------


def fire_first_step(world: World, activity: str, timezone: str | None = None) -> tuple[str, list[str]]:
    world.send(cart_updated(activity, timezone=timezone))
    timer = world.cart("c-1").timer
    assert timer is not None
    world.advance_to(timer.due_at)
    (outcome,) = world.fire_due()
    return outcome.action, [e.to for e in world.mailer.sent]


def test_a_window_ending_in_the_hour_clocks_repeat_ends_at_its_end_on_the_clock_now_shown() -> None:
    # New York falls back at 02:00 on 1 November 2026: 01:00-02:00 happens twice. At 01:05 of the second
    # pass (06:05 UTC) the first 01:30 (05:30 UTC) is over; the window ends at the second one.
    window = QuietHours.parse("21:00-01:30")
    assert window.window_end(utc(2026, 11, 1, 6, 5), NEW_YORK) == utc(2026, 11, 1, 6, 30)
    assert window.window_end(utc(2026, 11, 1, 4, 50), NEW_YORK) == utc(2026, 11, 1, 5, 30)  # first pass


def test_a_window_ending_in_the_hour_clocks_skip_ends_when_they_jump_past_it() -> None:
    # New York springs forward at 02:00 on 14 March 2027: 02:30 never shows; at 03:00 EDT it has passed.
    window = QuietHours.parse("21:00-02:30")
    assert window.window_end(utc(2027, 3, 14, 6, 0), NEW_YORK) == utc(2027, 3, 14, 7, 0)
    # Lord Howe moves its clocks by half an hour (02:00 -> 02:30 on 4 October 2026).
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    end = QuietHours.parse("21:00-02:15").window_end(local(lord_howe, 2026, 10, 4, 1, 0), lord_howe)
    assert end is not None and end.astimezone(lord_howe).replace(tzinfo=None) == datetime(2026, 10, 4, 2, 30)


def test_a_step_due_in_the_recipients_quiet_hours_waits_for_their_morning() -> None:
    # Activity 20:00 JST, so step 1 is due 22:00 JST (13:00 UTC) -- 08:00 in New York.
    world = World.create(utc(2026, 12, 1, 11, 0))
    action, sent = fire_first_step(world, "2026-12-01T20:00:00+09:00", timezone="Asia/Tokyo")
    assert (action, sent) == ("deferred", [])

    cart = world.cart("c-1")
    last = cart.decisions[-1]
    assert (last.action, last.reason, last.until) == ("deferred", "quiet_hours", local(TOKYO, 2026, 12, 2, 8, 0))
    assert cart.timer is not None and cart.timer.due_at == local(TOKYO, 2026, 12, 2, 8, 0)

    world.advance_to(cart.timer.due_at)
    assert [o.action for o in world.fire_due()] == ["sent"]
    assert len(world.mailer.sent) == 1


def test_the_same_moment_is_daytime_for_a_recipient_in_new_york() -> None:
    world = World.create(utc(2026, 12, 1, 11, 0))
    assert fire_first_step(world, "2026-12-01T20:00:00+09:00", timezone="America/New_York") == (
        "sent",
        ["taro@example.jp"],
    )


def test_without_a_recipient_zone_the_stores_zone_decides() -> None:
    tokyo_store = World.create(utc(2026, 12, 1, 11, 0))
    assert fire_first_step(tokyo_store, "2026-12-01T20:00:00+09:00")[0] == "deferred"

    new_york_store = World.create(utc(2026, 12, 1, 11, 0), store_settings(timezone="America/New_York"))
    assert fire_first_step(new_york_store, "2026-12-01T20:00:00+09:00")[0] == "sent"


def test_a_deferral_past_the_late_limit_still_sends_in_the_morning() -> None:
    # With a one-hour late limit, a step deferred ten hours by quiet hours is still the plan, not too late.
    world = World.create(utc(2026, 12, 1, 11, 0), store_settings(late_limit_seconds=3600))
    assert fire_first_step(world, "2026-12-01T20:00:00+09:00")[0] == "deferred"
    timer = world.cart("c-1").timer
    assert timer is not None
    world.advance_to(timer.due_at + timedelta(seconds=30))
    assert [o.action for o in world.fire_due()] == ["sent"]
