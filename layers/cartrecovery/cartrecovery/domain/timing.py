"""When a cart's next step is due, and the schedule that stands for it."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from cartrecovery.domain.cart import SKIPPED, CartState, Timer, step_key
from cartrecovery.domain.store import Flow, FlowStep

# Scheduler fires within about a minute of the time; a schedule must not be set in the past.
MIN_LEAD = timedelta(seconds=60)


def due_at(cart: CartState, step: FlowStep) -> datetime:
    assert cart.last_activity_at is not None
    return cart.last_activity_at + timedelta(seconds=step.delay_seconds)


def next_step(cart: CartState, flow: Flow) -> FlowStep | None:
    """The first step of the flow with no outcome yet on this cart."""
    return next((s for s in flow.steps if step_key(flow.name, s.step) not in cart.steps), None)


def schedule_name(store_id: str, cart_id: str, flow: str, step: int, fire_at: datetime) -> str:
    """Deterministic per (cart, step, time): re-creating the same timer collides instead of duplicating,
    and a cart abandoned again gets a new name instead of colliding with a finished one."""
    digest = hashlib.sha256(f"{store_id}|{cart_id}|{flow}|{step}|{int(fire_at.timestamp())}".encode())
    return "cr-" + digest.hexdigest()[:56]


def timer_for(cart: CartState, flow: Flow, step: FlowStep, now: datetime, not_before: datetime | None = None) -> Timer:
    fire_at = max(not_before or due_at(cart, step), now + MIN_LEAD)
    fire_at = fire_at.replace(microsecond=0)
    return Timer(
        flow=flow.name,
        step=step.step,
        due_at=fire_at,
        schedule_name=schedule_name(cart.store_id, cart.cart_id, flow.name, step.step, fire_at),
    )


def is_skipped(cart: CartState, flow: str, step: int) -> bool:
    record = cart.steps.get(step_key(flow, step))
    return record is not None and record.status == SKIPPED
