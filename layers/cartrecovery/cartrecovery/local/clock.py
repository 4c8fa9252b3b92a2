"""The local stack's virtual clock: business time that ticks with real time and can jump ahead.

``now()`` is ``start + real time elapsed since start + everything advanced so far``. Ticking with real time,
instead of standing still between advances, makes a demo left running behave like production: a cart
abandoned now gets its first email two real hours later with nobody touching the clock, while
``advance`` (``POST /_local/clock/advance``) jumps days ahead for demos and tests. The clock never goes
backwards. It implements :class:`cartrecovery.clock.Clock`, so the use cases read it through
``wiring.configure(clock=...)`` exactly as they read the system clock in Lambda.

Only business time is virtual (``occurred_at`` ordering, due times, quiet hours, report days); webhook
signatures are checked against the wall clock, as in AWS.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

# Far enough for any demo (ten years), small enough that datetime arithmetic cannot overflow.
MAX_ADVANCE_SECONDS = 10 * 366 * 86400


class VirtualClock:
    def __init__(self, start: datetime, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if start.tzinfo is None:
            raise ValueError("clock start must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._monotonic = monotonic
        self._origin = monotonic()
        self._advanced = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now()

    def _now(self) -> datetime:
        return self._start + timedelta(seconds=self._monotonic() - self._origin) + self._advanced

    def advance(self, seconds: float) -> datetime:
        """Jump ahead by ``seconds`` (a finite, non-negative number); returns the new now."""
        step = timedelta(seconds=check_seconds(seconds))
        with self._lock:
            self._advanced += step
            return self._now()

    def advance_to(self, moment: datetime) -> datetime:
        """Move forward to ``moment`` if it is later than now (never backwards); returns the new now."""
        with self._lock:
            current = self._now()
            if moment > current:
                self._advanced += moment - current
            return self._now()

    @property
    def advanced_seconds(self) -> float:
        """The total jumped ahead so far (real elapsed time not included)."""
        with self._lock:
            return self._advanced.total_seconds()


def check_seconds(seconds: float) -> float:
    """A valid advance: a finite number from 0 to ten years (raises ``ValueError`` otherwise)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError("seconds must be a number")
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_ADVANCE_SECONDS:
        raise ValueError(f"seconds must be a number from 0 to {MAX_ADVANCE_SECONDS}")
    return float(seconds)
