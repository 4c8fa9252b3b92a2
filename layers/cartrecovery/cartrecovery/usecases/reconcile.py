"""The reconciliation sweep: no armed step is silently lost.

A cart's next step lives in two places: the ``timer`` on the cart item and the one-time schedule it names.
They can drift apart: a schedule fired but every delivery of it failed (Lambda gives up after its retries),
an invocation died between arming the cart and creating the schedule, someone deleted the schedule. The
cart then waits forever for a firing that will never come.

Every few minutes the sweep asks the sparse timers index for timers overdue by more than ``GRACE`` (the
time Scheduler and Lambda's own retries need), re-reads each cart, and for each whose schedule is gone:
re-arms an open cart with a new one-time schedule due now (a conditional write on the old schedule name,
so a step handler that moved the timer meanwhile wins), or removes the timer of a closed cart. The step
handler decides everything else when the new schedule fires, and its claim keeps a step from going out
twice, so running the sweep twice, or alongside a late firing, is harmless. Each run handles at most
``limit`` carts, oldest first; the next run continues.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from cartrecovery.clock import Clock
from cartrecovery.domain.cart import Decision
from cartrecovery.domain.timing import fire_timer
from cartrecovery.ports import ArmedTimers, Schedules
from cartrecovery.usecases.ingest import schedule_payload

log = logging.getLogger(__name__)

# Scheduler fires within a minute; Lambda retries a failed asynchronous invocation twice over about three.
GRACE = timedelta(minutes=10)
DEFAULT_LIMIT = 200


@dataclass(frozen=True)
class SweepResult:
    examined: int = 0  # overdue timers read this run
    rearmed: int = 0  # schedule gone, cart open: a new schedule due now
    cleared: int = 0  # schedule gone, cart closed: timer removed
    live: int = 0  # the schedule is still there (Scheduler is late, or retrying): left alone
    moved: int = 0  # the timer changed since the index saw it: nothing to do
    more: bool = False  # the limit was reached: the next run continues

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ReconcileTimers:
    def __init__(
        self,
        carts: ArmedTimers,
        schedules: Schedules,
        clock: Clock,
        *,
        grace: timedelta = GRACE,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.carts = carts
        self.schedules = schedules
        self.clock = clock
        self.grace = grace
        self.limit = limit

    def __call__(self) -> SweepResult:
        now = self.clock.now()
        cutoff = now - self.grace
        candidates = self.carts.overdue(cutoff, self.limit + 1)
        counts = dict.fromkeys(("examined", "rearmed", "cleared", "live", "moved"), 0)
        for store_id, cart_id in candidates[: self.limit]:
            counts["examined"] += 1
            cart = self.carts.get(store_id, cart_id)
            timer = cart.timer if cart is not None else None
            if cart is None or timer is None or timer.due_at > cutoff:
                counts["moved"] += 1  # the index lags the table: the cart was handled meanwhile
                continue
            if self.schedules.exists(timer.schedule_name):
                counts["live"] += 1
                continue
            if not cart.is_open:
                decision = Decision(now, "skipped", timer.flow, timer.step, f"cart_{cart.status}")
                cleared = self.carts.replace_timer(store_id, cart_id, timer.schedule_name, None, decision)
                counts["cleared" if cleared else "moved"] += 1
                continue
            # The lost timer's plan is kept: lateness counts from when the step was meant to go.
            fresh = fire_timer(store_id, cart_id, timer.flow, timer.step, timer.meant_for, now)
            decision = Decision(now, "rearmed", timer.flow, timer.step, "schedule_missing", fresh.due_at)
            if not self.carts.replace_timer(store_id, cart_id, timer.schedule_name, fresh, decision):
                counts["moved"] += 1
                continue
            # Cart first, then schedule: if this dies in between, the new timer is overdue by the next
            # runs and the sweep re-arms it again.
            self.schedules.arm(fresh, schedule_payload(cart, fresh.flow, fresh.step))
            counts["rearmed"] += 1
        result = SweepResult(**counts, more=len(candidates) > self.limit)
        if result.rearmed or result.cleared:
            log.warning("sweep repaired lost timers: %s", result.as_dict())
        return result
