"""Ingest one authentic event: record it once, fold it into its cart, keep the cart's timer armed.

Every effect here is idempotent (a fold of an event already folded changes nothing, timers have
deterministic names, contact updates keep the newest value, conversions are marked once), so a duplicate
delivery simply runs the effects again: if the first delivery died half way, the retry completes it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cartrecovery.clock import Clock, isoformat, parse_rfc3339
from cartrecovery.domain.cart import SENT, CartState, Decision, Timer, activity_snapshot, flow_of, fold
from cartrecovery.domain.events import CART_ACTIVITY, Event
from cartrecovery.domain.measurement import ATTRIBUTION_WINDOW, measurement_window, order_once
from cartrecovery.domain.store import Store
from cartrecovery.domain.timing import next_step, timer_for
from cartrecovery.identity import customer_hash, email_hash
from cartrecovery.ports import (
    ActivityWrite,
    CartRepository,
    ConcurrentUpdate,
    ContactBook,
    ContactRecord,
    EventLog,
    MessageLedger,
    Schedules,
)
from cartrecovery.usecases.report import revenue_column

log = logging.getLogger(__name__)

EVENT_ID_RETENTION = timedelta(days=8)  # senders retry for days; keep ids past the longest retry window
FOLD_ATTEMPTS = 8


@dataclass(frozen=True)
class IngestResult:
    status: str  # "accepted" or "duplicate"
    event_id: str


def contact_keys(store: Store, email: str | None, customer_id: str | None) -> list[str]:
    keys = []
    if email:
        keys.append("e#" + email_hash(store.salt, email))
    if customer_id:
        keys.append("c#" + customer_hash(store.salt, customer_id))
    return keys


class IngestEvent:
    def __init__(
        self,
        events: EventLog,
        carts: CartRepository,
        contacts: ContactBook,
        schedules: Schedules,
        ledger: MessageLedger,
        clock: Clock,
    ) -> None:
        self.events = events
        self.carts = carts
        self.contacts = contacts
        self.schedules = schedules
        self.ledger = ledger
        self.clock = clock

    def __call__(self, store: Store, event_id: str, event: Event, fingerprint: str = "") -> IngestResult:
        """Record and apply an event. ``fingerprint`` (a hash of the body) tells a true re-delivery, whose
        effects are safely re-run to finish a delivery that died half way, from a reused id with another
        body, which has no effect at all."""
        now = self.clock.now()
        summary = {**_summary(event), "fingerprint": fingerprint}
        first = self.events.record(store.store_id, event_id, summary, now + EVENT_ID_RETENTION)
        if first:
            self.apply(store, event, event_id=event_id)
        else:
            recorded = self.events.get(store.store_id, event_id)
            if recorded is not None and recorded.get("fingerprint", "") == fingerprint:
                self.apply(store, event, repair=True, event_id=event_id)
        return IngestResult("accepted" if first else "duplicate", event_id)

    def apply(self, store: Store, event: Event, *, repair: bool = False, event_id: str | None = None) -> None:
        """Run the event's effects; ``repair`` (a re-delivery) also re-creates an armed schedule, in case
        the first delivery died between arming the cart and creating its schedule. ``event_id`` (the
        webhook id) is kept with a consent statement as the event it came from."""
        cart_id = _cart_id(event)
        known = None
        if cart_id and event.type in CART_ACTIVITY and not repair:
            # Most events are a newer snapshot of an open cart whose timer is armed: one write, no read,
            # and nothing else to do. A repair reads, because it re-creates the cart's schedule.
            known = self.carts.apply_activity(activity_snapshot(event, store.store_id, cart_id))
            if known.applied:
                return
        cart, armed = self._fold(store, cart_id, event, known) if cart_id else (None, False)
        if cart is not None and cart.is_open and event.type in CART_ACTIVITY:
            # A cart armed by its creating write still needs its schedule: the same path as a repair.
            self._ensure_armed(store, cart, repair or armed)
        customer = event.customer
        email = customer.email if customer else None
        if event.type == "order.placed":
            keys = contact_keys(store, email, customer.id if customer else None)
            for key in keys:
                self.contacts.record_order(store.store_id, key, event.occurred_at)
            self._convert(store, event, cart, keys)
        elif event.type == "customer.unsubscribed" and email:
            self.contacts.unsubscribe(
                store.store_id, contact_keys(store, email, None)[0], event.occurred_at, source="store", event=event_id
            )
        elif event.type == "customer.consent_changed" and email and customer and customer.consent:
            consent = customer.consent
            if consent.at is None:
                consent = type(consent)(granted=consent.granted, at=event.occurred_at, source=consent.source)
            self.contacts.record_consent(store.store_id, contact_keys(store, email, None)[0], consent, event=event_id)

    def _fold(
        self, store: Store, cart_id: str, event: Event, known: ActivityWrite | None = None
    ) -> tuple[CartState, bool]:
        """The cart with the event folded in and saved, and whether that write armed it: a new open cart is
        saved with its first timer (the caller then creates the schedule), one write instead of two.
        ``known`` (a refused ``apply_activity``) holds the stored cart, so the first attempt need not read."""
        for attempt in range(FOLD_ATTEMPTS):
            current = known.current if known and not attempt else self.carts.get(store.store_id, cart_id)
            folded = fold(current, event, store.store_id, cart_id)
            if folded is current:
                return folded, False
            arm = self._first_timer(store, folded) if current is None and event.type in CART_ACTIVITY else None
            try:
                self.carts.save_fold(folded, current.version if current else None, arm)
            except ConcurrentUpdate:
                continue
            if arm is not None:
                return dataclasses.replace(folded, timer=arm[0], decisions=(arm[1],)), True
            return folded, False
        raise ConcurrentUpdate(f"cart kept changing under {FOLD_ATTEMPTS} attempts")

    def _first_timer(self, store: Store, cart: CartState) -> tuple[Timer, Decision] | None:
        """The timer (and its log line) an open cart without one is armed with, if its flow runs."""
        flow = store.settings.flows.get("cart_recovery")
        step = next_step(cart, flow) if flow is not None and flow.enabled and cart.is_open else None
        if flow is None or step is None:
            return None
        now = self.clock.now()
        timer = timer_for(cart, flow, step, now)
        return timer, Decision(at=now, action="armed", flow=flow.name, step=step.step, until=timer.due_at)

    def _ensure_armed(self, store: Store, cart: CartState, repair: bool) -> None:
        """Give an open cart a timer unless it has one; a live timer is left alone, because the step
        handler re-reads the cart when it fires and re-arms for the later due time itself."""
        flow = store.settings.flows.get("cart_recovery")
        if flow is None or not flow.enabled:
            return
        if cart.timer is not None:
            if repair:  # creating an existing schedule is a no-op; a lost one comes back
                self.schedules.arm(cart.timer, schedule_payload(cart, cart.timer.flow, cart.timer.step))
            return
        arm = self._first_timer(store, cart)
        if arm is None:
            return
        timer, decision = arm
        if self.carts.arm_if_idle(store.store_id, cart.cart_id, timer, decision):
            self.schedules.arm(timer, schedule_payload(cart, timer.flow, timer.step))

    def _convert(self, store: Store, event: Event, cart: CartState | None, keys: list[str]) -> None:
        """Credit the order to the latest email that preceded it: the cart's own, else the customer's; and, for
        a store measuring a holdout group, to the entry it followed (``domain/measurement.py``)."""
        order = event.order
        assert order is not None
        message_id = None
        records: list[ContactRecord] | None = None
        if cart is not None:
            # The same window as an order matched by address: an order weeks after the cart's last email (a
            # cart is kept 90 days) came back for reasons of its own, and crediting the email would inflate it.
            sent = [
                r
                for r in cart.steps.values()
                if r.status == SENT and r.message_id and r.at <= event.occurred_at <= r.at + ATTRIBUTION_WINDOW
            ]
            if sent:
                message_id = max(sent, key=lambda r: r.at).message_id
        if message_id is None and keys:
            records = list(self.contacts.get_many(store.store_id, keys).values())
            found = (_email_before(record, event.occurred_at) for record in records)
            message_id = next((m for m in found if m), None)
        entry = self._entry_before(store, event.occurred_at, cart, keys, records)
        # Amounts in different currencies are not added up: another currency's revenue has its own column.
        column = revenue_column(order.currency, store.settings.currency)
        for credited in (message_id, entry):
            if credited:
                self.ledger.mark(
                    credited,
                    "converted",
                    event.occurred_at,
                    revenue=order.total,
                    detail={"order_id": order.id},
                    revenue_column=column,
                    # One order converts one email and one entry, however often the shop sends it.
                    once=order_once(credited, order.id),
                )

    def _entry_before(
        self, store: Store, at: datetime, cart: CartState | None, keys: list[str], records: list[ContactRecord] | None
    ) -> str | None:
        """The flow entry an order at ``at`` converts: the cart's own, else the address's latest, if the order
        came within the entry's measurement window. The address is read only when the store measures a holdout
        group now (or was read already): a store without one records no entries."""
        entries = [
            (record.at, flow_of(key), record.entry_id)
            for key, record in (cart.steps.items() if cart is not None else ())
            if record.entry_id
        ]
        if not entries and keys and (records is not None or store.settings.holdout_percent):
            if records is None:
                records = list(self.contacts.get_many(store.store_id, keys).values())
            entries = [
                (parse_rfc3339(str(r.last_entry["at"])), str(r.last_entry["flow"]), str(r.last_entry["entry_id"]))
                for r in records
                if r.last_entry
            ]
        for entered_at, flow_name, entry in sorted(entries, reverse=True):
            flow = store.settings.flows.get(flow_name)
            window = measurement_window(flow) if flow is not None else ATTRIBUTION_WINDOW
            if entered_at <= at <= entered_at + window:
                return entry
        return None


def _email_before(record: ContactRecord, at: datetime) -> str | None:
    """The latest of the address's emails sent at or before ``at``, within the attribution window. (An order
    that arrives late may find a later email already sent; the one it followed is among the earlier ones.)"""
    sent = (record.last_message, *record.earlier_messages) if record.last_message else ()
    for message in sent:  # newest first
        sent_at = parse_rfc3339(str(message["sent_at"]))
        if sent_at <= at <= sent_at + ATTRIBUTION_WINDOW:
            return str(message["message_id"])
    return None


def schedule_payload(cart: CartState, flow: str, step: int) -> dict[str, Any]:
    """The Scheduler's Input: only references; the handler reads the cart's truth when it fires."""
    return {"store_id": cart.store_id, "cart_id": cart.cart_id, "flow": flow, "step": step}


def _cart_id(event: Event) -> str | None:
    """The cart an event changes: activity and clears name it, an order may; other types change none."""
    if (event.type in CART_ACTIVITY or event.type == "cart.cleared") and event.cart is not None:
        return event.cart.id
    if event.type == "order.placed" and event.order is not None:
        return event.order.cart_id
    return None


def _summary(event: Event) -> dict[str, Any]:
    """What the event log keeps: enough to explain a cart's history, no personal data."""
    summary: dict[str, Any] = {"type": event.type, "occurred_at": isoformat(event.occurred_at)}
    cart_id = _cart_id(event)
    if cart_id:
        summary["cart_id"] = cart_id
    return summary
