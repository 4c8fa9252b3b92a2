"""The one seam through which business time is read.

Use cases never call ``datetime.now()``: they receive a ``Clock``. Lambda uses ``SystemClock``; the local
mode's virtual clock and the tests' frozen clock implement the same protocol.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: the tests' frozen clock and the local mode's virtual clock."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("clock start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now = self._now + timedelta(seconds=seconds)
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment.astimezone(UTC)


def isoformat(moment: datetime, *, exact: bool = False) -> str:
    """RFC 3339 with offset and whole seconds, as every stored and wire timestamp is written; ``exact`` keeps
    the fraction (a cart's event times, which events are ordered by)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    utc = moment.astimezone(UTC)
    return (utc if exact else utc.replace(microsecond=0)).isoformat().replace("+00:00", "Z")


# RFC 3339's date-time (section 5.6), with the space its note allows in place of "T". ``fromisoformat``
# alone takes any ISO 8601 form (20261201T1015+0900, week dates, hours without minutes, offsets with
# seconds), which the API promises to refuse.
_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<time>[0-9]{2}:[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?P<fraction>\.[0-9]+)?(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp, which always carries an offset. A leap second (``23:59:60``) is read
    as the second after ``23:59:59``, as POSIX time does; Python's datetime cannot hold it."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("not an RFC 3339 timestamp with an offset")
    leap = match["second"] == "60" and match["time"].endswith(":59")  # a leap second ends a minute
    offset = "+00:00" if match["offset"] in "Zz" else match["offset"]
    second = "59" if leap else match["second"]
    value = datetime.fromisoformat(f"{match['date']}T{match['time']}:{second}{match['fraction'] or ''}{offset}")
    if not leap:
        return value
    try:
        return value + timedelta(seconds=1)
    except OverflowError:  # the leap second at the end of year 9999: no datetime holds the second after it
        raise ValueError("after the last time a timestamp can hold") from None
