"""When a step may go out: quiet hours, Japanese holidays and year-end days, the per-shopper frequency cap."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cartrecovery.domain.holidays_jp import holidays, is_closed_day
from cartrecovery.domain.send_window import earliest_send
from cartrecovery.domain.store import Legal, QuietHours, StoreSettings

TOKYO = ZoneInfo("Asia/Tokyo")


def settings(**changes: object) -> StoreSettings:
    base = StoreSettings(store_id="s1", name="Shop", sender_email="shop@example.jp", legal=Legal("Shop", "Tokyo", "x"))
    return StoreSettings(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def tokyo(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)  # type: ignore[misc]


def test_2026_holidays_match_the_cabinet_office_calendar() -> None:
    expected = {
        "01-01", "01-12", "02-11", "02-23", "03-20", "04-29", "05-03", "05-04", "05-05", "05-06",
        "07-20", "08-11", "09-21", "09-22", "09-23", "10-12", "11-03", "11-23",
    }  # fmt: skip
    assert {d.strftime("%m-%d") for d in holidays(2026)} == expected


def test_substitute_holiday_follows_a_sunday_equinox() -> None:
    assert date(2027, 3, 21).weekday() == 6  # 春分の日 on a Sunday
    assert date(2027, 3, 22) in holidays(2027)
    assert date(2027, 3, 23) not in holidays(2027)


@pytest.mark.parametrize(
    ("day", "closed"),
    [(date(2026, 12, 28), False), (date(2026, 12, 29), True), (date(2027, 1, 3), True), (date(2027, 1, 4), False)],
)
def test_year_end_days_are_closed(day: date, closed: bool) -> None:
    assert is_closed_day(day) is closed


def test_inside_the_window_nothing_defers() -> None:
    assert earliest_send(tokyo(2026, 12, 1, 10), settings(), TOKYO) is None


def test_quiet_hours_defer_to_the_end_of_the_window_in_the_recipients_zone() -> None:
    assert earliest_send(tokyo(2026, 12, 1, 22, 30), settings(), TOKYO) == (tokyo(2026, 12, 2, 8), "quiet_hours")
    new_york = ZoneInfo("America/New_York")
    late_evening = datetime(2026, 12, 1, 23, tzinfo=new_york)
    assert earliest_send(late_evening, settings(), new_york) == (
        datetime(2026, 12, 2, 8, tzinfo=new_york),
        "quiet_hours",
    )


def test_closed_days_are_skipped_only_when_the_store_asks() -> None:
    holiday_morning = tokyo(2026, 11, 23, 10)  # 勤労感謝の日
    assert earliest_send(holiday_morning, settings(), TOKYO) is None
    assert earliest_send(holiday_morning, settings(skip_closed_days=True), TOKYO) == (
        tokyo(2026, 11, 24, 8),
        "closed_day",
    )


def test_year_end_defers_to_the_first_working_morning() -> None:
    result = earliest_send(tokyo(2026, 12, 29, 12), settings(skip_closed_days=True), TOKYO)
    assert result == (tokyo(2027, 1, 4, 8), "closed_day")


def test_frequency_cap_reschedules_after_the_last_email_and_respects_quiet_hours() -> None:
    last = tokyo(2026, 12, 1, 10)
    # 16 h after 10:00 is 02:00, inside quiet hours: the step waits for 08:00, and the cap is why.
    assert earliest_send(tokyo(2026, 12, 1, 12), settings(), TOKYO, last) == (tokyo(2026, 12, 2, 8), "frequency_cap")
    no_quiet_hours = settings(quiet_hours=QuietHours.parse("00:00-00:00"))
    assert earliest_send(tokyo(2026, 12, 1, 12), no_quiet_hours, TOKYO, last) == (
        tokyo(2026, 12, 2, 2),
        "frequency_cap",
    )
    assert earliest_send(last + timedelta(hours=16), no_quiet_hours, TOKYO, last) is None
    assert earliest_send(tokyo(2026, 12, 1, 12), settings(frequency_cap_hours=0), TOKYO, last) is None


def test_negative_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="frequency_cap_hours"):
        settings(frequency_cap_hours=-1)
