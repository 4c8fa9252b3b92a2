"""The stored cart and the rules that fold events into it.

``fold`` is pure: it takes the cart as stored (or None) and one event, and returns the new cart, or the same
object when the event changes nothing (a stale update, anything after a terminal state). Event order comes
from ``occurred_at``, never from arrival, and ``ordered`` and ``cleared`` are terminal: no late event can
resurrect a cart that was bought or emptied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from cartrecovery.domain.events import CART_ACTIVITY, Consent, Customer, Event, Item

OPEN = "open"
ORDERED = "ordered"
CLEARED = "cleared"
TERMINAL = frozenset({ORDERED, CLEARED})

# Outcomes of a step kept on the cart. A claimed step is never sent again; a skipped step is passed over.
CLAIMED = "claimed"
SENT = "sent"
UNKNOWN = "unknown"
SKIPPED = "skipped"
# The shopper is in the flow's holdout group: no email, and no later step of the flow (domain/measurement.py).
HELD_OUT = "held_out"


@dataclass(frozen=True)
class StepRecord:
    status: str
    at: datetime
    variant: str = "a"
    message_id: str | None = None
    day: str | None = None  # the send day whose report row this message counts in
    reason: str | None = None
    # The ledger key of the cart's entry into the flow, on the first step's record, when the store measures
    # a holdout group: an order for the cart converts the entry as well as the email.
    entry_id: str | None = None


@dataclass(frozen=True)
class Timer:
    """The one armed schedule of a cart: which step it is for and when it fires."""

    flow: str
    step: int
    due_at: datetime
    schedule_name: str
    # When the step was meant to go, where the timer had to be set later (a schedule is never set less than
    # a minute ahead, and a lost one is re-armed by the sweep): the late limit counts from here, not from
    # ``due_at``. None when the timer fires when it was meant to.
    planned_at: datetime | None = None

    @property
    def meant_for(self) -> datetime:
        """The time this timer stands for: its step's lateness is measured from it."""
        return self.planned_at or self.due_at


@dataclass(frozen=True)
class Decision:
    """One line of the per-cart decision log: what the system did and why (no personal data)."""

    at: datetime
    action: str  # armed, rearmed, deferred, skipped, sent, unknown, throttled, stopped
    flow: str
    step: int | None = None
    reason: str | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class CartState:
    store_id: str
    cart_id: str
    status: str = OPEN
    currency: str | None = None
    items: tuple[Item, ...] = ()
    total: Decimal | None = None
    recovery_url: str | None = None
    customer: Customer = field(default_factory=Customer)
    first_seen_at: datetime | None = None
    last_activity_at: datetime | None = None
    closed_at: datetime | None = None
    order_id: str | None = None
    order_total: Decimal | None = None
    version: int = 0
    steps: dict[str, StepRecord] = field(default_factory=dict)
    timer: Timer | None = None
    decisions: tuple[Decision, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    def step_record(self, flow: str, step: int) -> StepRecord | None:
        return self.steps.get(step_key(flow, step))

    def flow_records(self, flow: str) -> list[StepRecord]:
        """The outcomes of ``flow``'s steps on this cart (whichever steps the flow lists now)."""
        return [record for key, record in self.steps.items() if flow_of(key) == flow]


def step_key(flow: str, step: int) -> str:
    return f"{flow}#{step}"


def flow_of(key: str) -> str:
    """The flow of a ``step_key``."""
    return key.rpartition("#")[0]


def merge_customer(old: Customer, new: Customer | None) -> Customer:
    """Fields the newer event carries win; fields it leaves out keep what an earlier event said."""
    if new is None:
        return old
    return Customer(
        id=new.id or old.id,
        email=new.email or old.email,
        name=new.name or old.name,
        locale=new.locale or old.locale,
        timezone=new.timezone or old.timezone,
        consent=new.consent or old.consent,
        orders_count=new.orders_count if new.orders_count is not None else old.orders_count,
    )


def fold(cart: CartState | None, event: Event, store_id: str, cart_id: str) -> CartState:
    """The cart after ``event``; returns ``cart`` itself (identity) when nothing changes."""
    current = cart or CartState(store_id=store_id, cart_id=cart_id)
    if not current.is_open:
        return _earlier_close(current, event)
    if event.type in CART_ACTIVITY:
        if current.last_activity_at is not None and event.occurred_at <= current.last_activity_at:
            return current  # stale: a newer snapshot already holds
        return with_newer_activity(current, activity_snapshot(event, store_id, cart_id))
    if event.type in ("order.placed", "cart.cleared"):
        return _close(current, event)
    return current


def activity_snapshot(event: Event, store_id: str, cart_id: str) -> CartState:
    """A cart-activity event on its own, as the open cart it describes."""
    snapshot = event.cart
    assert event.type in CART_ACTIVITY and snapshot is not None
    return CartState(
        store_id=store_id,
        cart_id=cart_id,
        currency=snapshot.currency,
        items=snapshot.items,
        total=snapshot.total,
        recovery_url=snapshot.recovery_url,
        customer=merge_customer(Customer(), _with_consent_time(event)),
        first_seen_at=event.occurred_at,
        last_activity_at=event.occurred_at,
    )


def with_newer_activity(current: CartState, snapshot: CartState) -> CartState:
    """An open cart after a newer ``activity_snapshot``: the snapshot's contents replace the cart's; of the
    customer and the currency, only what the event states replaces what the cart holds."""
    return dataclasses.replace(
        current,
        currency=snapshot.currency or current.currency,
        items=snapshot.items,
        total=snapshot.total,
        recovery_url=snapshot.recovery_url,
        customer=merge_customer(current.customer, snapshot.customer),
        first_seen_at=current.first_seen_at or snapshot.first_seen_at,
        last_activity_at=snapshot.last_activity_at,
    )


def _earlier_close(closed: CartState, event: Event) -> CartState:
    """A closed cart stays closed, but by whichever order or clear happened first, not whichever arrived first:
    one that happened earlier (an order wins a tie) takes the place of the one that closed it."""
    if event.type not in ("order.placed", "cart.cleared") or closed.closed_at is None:
        return closed
    if (event.occurred_at, event.type != "order.placed") >= (closed.closed_at, closed.status != ORDERED):
        return closed
    return _close(dataclasses.replace(closed, status=OPEN, closed_at=None, order_id=None, order_total=None), event)


def _close(current: CartState, event: Event) -> CartState:
    if event.type == "order.placed":
        assert event.order is not None
        return dataclasses.replace(
            current,
            status=ORDERED,
            closed_at=event.occurred_at,
            order_id=event.order.id,
            order_total=event.order.total,
            customer=merge_customer(current.customer, event.customer),
            first_seen_at=current.first_seen_at or event.occurred_at,
        )
    if event.type == "cart.cleared":
        return dataclasses.replace(
            current,
            status=CLEARED,
            closed_at=event.occurred_at,
            first_seen_at=current.first_seen_at or event.occurred_at,
        )
    return current


def _with_consent_time(event: Event) -> Customer | None:
    """A consent without its own time is dated by the event that carried it."""
    customer = event.customer
    if customer is None or customer.consent is None or customer.consent.at is not None:
        return customer
    consent = Consent(granted=customer.consent.granted, at=event.occurred_at, source=customer.consent.source)
    return dataclasses.replace(customer, consent=consent)
