"""When a cart's next step is due, and the schedule that stands for it."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from cartrecovery.domain.cart import HELD_OUT, SKIPPED, CartState, Timer, step_key
from cartrecovery.domain.store import Flow, FlowStep

# Scheduler fires within about a minute of the time; a schedule must not be set in the past.
MIN_LEAD = timedelta(seconds=60)


def due_at(cart: CartState, step: FlowStep) -> datetime:
    assert cart.last_activity_at is not None
    return cart.last_activity_at + timedelta(seconds=step.delay_seconds)


def next_step(cart: CartState, flow: Flow) -> FlowStep | None:
    """The first step of the flow with no outcome yet on this cart; none once the cart is held out of it."""
    if any(record.status == HELD_OUT for record in cart.flow_records(flow.name)):
        return None
    return next((s for s in flow.steps if step_key(flow.name, s.step) not in cart.steps), None)


def schedule_name(store_id: str, cart_id: str, flow: str, step: int, fire_at: datetime) -> str:
    """Deterministic per (cart, step, time): re-creating the same timer collides instead of duplicating,
    and a cart abandoned again gets a new name instead of colliding with a finished one."""
    digest = hashlib.sha256(f"{store_id}|{cart_id}|{flow}|{step}|{int(fire_at.timestamp())}".encode())
    return "cr-" + digest.hexdigest()[:56]


def timer_for(cart: CartState, flow: Flow, step: FlowStep, now: datetime, not_before: datetime | None = None) -> Timer:
    planned = not_before or due_at(cart, step)
    return fire_timer(cart.store_id, cart.cart_id, flow.name, step.step, planned, now)


def fire_timer(store_id: str, cart_id: str, flow: str, step: int, planned: datetime, now: datetime) -> Timer:
    """A timer for ``planned``: Scheduler's times are whole seconds, so a fraction rounds up (never before the
    due time), and a schedule is set at least ``MIN_LEAD`` ahead; the plan is kept when that moves it."""
    on_time = planned if planned.microsecond == 0 else planned.replace(microsecond=0) + timedelta(seconds=1)
    fire_at = max(on_time, (now + MIN_LEAD).replace(microsecond=0))
    return Timer(
        flow=flow,
        step=step,
        due_at=fire_at,
        schedule_name=schedule_name(store_id, cart_id, flow, step, fire_at),
        planned_at=planned if fire_at > on_time else None,
    )


def is_skipped(cart: CartState, flow: str, step: int) -> bool:
    record = cart.steps.get(step_key(flow, step))
    return record is not None and record.status == SKIPPED
