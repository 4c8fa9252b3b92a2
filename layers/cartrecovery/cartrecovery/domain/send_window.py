"""When a marketing email may go out: outside quiet hours, on a day the store emails, and not sooner than
the per-shopper frequency cap allows. Each rule defers; none drops a step."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from cartrecovery.domain.holidays_jp import is_closed_day
from cartrecovery.domain.store import StoreSettings

# Quiet hours, closed days and the cap can push each other along; a handful of rounds always settles them
# (the year-end run of closed days is the longest), and the bound keeps a misconfiguration from spinning.
MAX_ROUNDS = 32


def earliest_send(
    now: datetime, settings: StoreSettings, zone: ZoneInfo, last_sent_at: datetime | None = None
) -> tuple[datetime, str] | None:
    """The first instant at or after ``now`` at which the step may be sent, with the first rule that
    deferred it (``quiet_hours``, ``closed_day``, ``frequency_cap``); None when it may be sent now."""
    moment, reason = now, None
    if last_sent_at is not None and settings.frequency_cap_hours > 0:
        allowed = last_sent_at + timedelta(hours=settings.frequency_cap_hours)
        if allowed > moment:
            moment, reason = allowed, "frequency_cap"
    for _ in range(MAX_ROUNDS):
        quiet_end = settings.quiet_hours.window_end(moment, zone)
        if quiet_end is not None:
            moment, reason = quiet_end, reason or "quiet_hours"
            continue
        local = moment.astimezone(zone)
        if settings.skip_closed_days and is_closed_day(local.date()):
            # The next day, at the hour sending resumes (the end of quiet hours; midnight without them).
            resume = settings.quiet_hours.end if settings.quiet_hours.start != settings.quiet_hours.end else time(0)
            moment = datetime.combine(local.date() + timedelta(days=1), resume, tzinfo=zone)
            reason = reason or "closed_day"
            continue
        break
    return (moment, reason) if reason is not None else None
