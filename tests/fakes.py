"""In-memory stand-ins for the ports the use cases depend on, with the same conditional-write behaviour as the
DynamoDB, Scheduler and SES adapters (a claim succeeds once, a fold checks the version, arming is idempotent
by name), plus a ``World`` that wires them to the real use cases for the unit tests."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cartrecovery.clock import ManualClock, isoformat
from cartrecovery.domain.cart import CLAIMED, CartState, Decision, StepRecord, Timer, with_newer_activity
from cartrecovery.domain.events import Consent, Event, decode_json, parse_event
from cartrecovery.domain.store import Legal, Store, StoreSettings
from cartrecovery.email.render import EmailRenderer
from cartrecovery.identity import customer_hash, email_hash
from cartrecovery.ports import (
    EARLIER_MESSAGES_KEPT,
    ActivityWrite,
    AlreadyExists,
    ConcurrentUpdate,
    ContactRecord,
    Mark,
    MessageRecord,
    OutgoingEmail,
    PoolStats,
)
from cartrecovery.usecases.ingest import IngestEvent, IngestResult
from cartrecovery.usecases.run_step import RunDueStep, StepOutcome
from cartrecovery.usecases.stores import new_store

PUBLIC_BASE_URL = "https://cr.example.test"


class FakeStores:
    def __init__(self) -> None:
        self.items: dict[str, Store] = {}

    def get(self, store_id: str) -> Store | None:
        return self.items.get(store_id)

    def create(self, store: Store) -> None:
        if store.store_id in self.items:
            raise AlreadyExists(store.store_id)
        self.items[store.store_id] = store

    def save(self, store: Store) -> None:
        self.items[store.store_id] = store

    def list_ids(self) -> list[str]:
        return sorted(self.items)


class FakeEventLog:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def record(self, store_id: str, event_id: str, summary: dict[str, Any], expires_at: datetime) -> bool:
        if (store_id, event_id) in self.items:
            return False
        self.items[(store_id, event_id)] = {**summary, "expires_at": expires_at}
        return True

    def get(self, store_id: str, event_id: str) -> dict[str, Any] | None:
        return self.items.get((store_id, event_id))


# What an event fold writes; steps, timer and decisions belong to the step handler and are never overwritten.
_FOLD_FIELDS = (
    "status",
    "currency",
    "items",
    "total",
    "recovery_url",
    "customer",
    "first_seen_at",
    "last_activity_at",
    "closed_at",
    "order_id",
    "order_total",
)


class FakeCarts:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], CartState] = {}

    def get(self, store_id: str, cart_id: str) -> CartState | None:
        cart = self.items.get((store_id, cart_id))
        return dataclasses.replace(cart, steps=dict(cart.steps)) if cart else None

    def _put(self, cart: CartState) -> None:
        self.items[(cart.store_id, cart.cart_id)] = cart

    def _require(self, store_id: str, cart_id: str) -> CartState:
        cart = self.items.get((store_id, cart_id))
        if cart is None:
            raise KeyError(f"no cart {store_id}/{cart_id}")  # DynamoDB: attribute_exists(cart_id) fails
        return cart

    def save_fold(
        self, cart: CartState, expected_version: int | None, arm: tuple[Timer, Decision] | None = None
    ) -> None:
        stored = self.items.get((cart.store_id, cart.cart_id))
        if expected_version is None:
            if stored is not None:
                raise ConcurrentUpdate(cart.cart_id)
            timer, decisions = (arm[0], (arm[1],)) if arm else (None, ())
            self._put(dataclasses.replace(cart, version=cart.version + 1, steps={}, timer=timer, decisions=decisions))
            return
        assert arm is None, "only a new cart is armed with its fold"
        if stored is None or stored.version != expected_version:
            raise ConcurrentUpdate(cart.cart_id)
        changes = {name: getattr(cart, name) for name in _FOLD_FIELDS}
        self._put(dataclasses.replace(stored, **changes, version=cart.version + 1))

    def apply_activity(self, snapshot: CartState) -> ActivityWrite:
        stored = self.items.get((snapshot.store_id, snapshot.cart_id))
        assert snapshot.last_activity_at is not None
        newer = (
            stored is not None
            and stored.last_activity_at is not None
            # DynamoDB compares the stored text: whole seconds
            and isoformat(stored.last_activity_at) < isoformat(snapshot.last_activity_at)
        )
        if stored is None or not stored.is_open or stored.timer is None or not newer:
            return ActivityWrite(False, self.get(snapshot.store_id, snapshot.cart_id))
        self._put(dataclasses.replace(with_newer_activity(stored, snapshot), version=stored.version + 1))
        return ActivityWrite(True)

    def arm_if_idle(self, store_id: str, cart_id: str, timer: Timer, decision: Decision) -> bool:
        cart = self._require(store_id, cart_id)
        if cart.timer is not None or not cart.is_open:
            return False
        self._put(dataclasses.replace(cart, timer=timer, decisions=(*cart.decisions, decision)))
        return True

    def update_progress(
        self,
        store_id: str,
        cart_id: str,
        *,
        decision: Decision,
        timer: Timer | bool | None = False,
        step: tuple[str, StepRecord] | None = None,
        undecided: str | None = None,
    ) -> bool:
        cart = self._require(store_id, cart_id)
        if undecided is not None and undecided in cart.steps:
            return False
        changes: dict[str, Any] = {"decisions": (*cart.decisions, decision)}
        if timer is None or isinstance(timer, Timer):
            changes["timer"] = timer
        if step is not None:
            changes["steps"] = {**cart.steps, step[0]: step[1]}
        self._put(dataclasses.replace(cart, **changes))
        return True

    def claim_step(self, store_id: str, cart_id: str, key: str, record: StepRecord) -> bool:
        cart = self._require(store_id, cart_id)
        if not cart.is_open or key in cart.steps:
            return False
        self._put(dataclasses.replace(cart, steps={**cart.steps, key: record}))
        return True

    def release_step(self, store_id: str, cart_id: str, key: str, decision: Decision) -> None:
        cart = self._require(store_id, cart_id)
        record = cart.steps.get(key)
        if record is None or record.status != CLAIMED:
            return
        steps = {k: v for k, v in cart.steps.items() if k != key}
        self._put(dataclasses.replace(cart, steps=steps, decisions=(*cart.decisions, decision)))


class FakeContacts:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], ContactRecord] = {}

    def _record(self, store_id: str, key: str) -> ContactRecord:
        return self.items.get((store_id, key)) or ContactRecord(key=key)

    def _put(self, store_id: str, record: ContactRecord) -> None:
        self.items[(store_id, record.key)] = record

    def get_many(self, store_id: str, keys: list[str]) -> dict[str, ContactRecord]:
        return {k: self.items[(store_id, k)] for k in keys if (store_id, k) in self.items}

    def record_order(self, store_id: str, key: str, at: datetime) -> None:
        record = self._record(store_id, key)
        if record.last_order_at is None or record.last_order_at < at:
            self._put(store_id, dataclasses.replace(record, last_order_at=at))

    def record_consent(self, store_id: str, key: str, consent: Consent, event: str | None = None) -> None:
        assert consent.at is not None
        record = self._record(store_id, key)
        current = record.consent
        if current is None or current.at is None or current.at < consent.at:
            self._put(store_id, dataclasses.replace(record, consent=consent))

    def unsubscribe(self, store_id: str, key: str, at: datetime, source: str, event: str | None = None) -> bool:
        record = self._record(store_id, key)
        withdrawn = Consent(granted=False, at=at, source=source)
        if record.unsubscribed_at is None:
            # Only the address's first opt-out counts; a withdrawal in the shop came first here.
            first = record.consent is None or record.consent.granted
            self._put(store_id, dataclasses.replace(record, unsubscribed_at=at, consent=withdrawn))
            return first
        self.record_consent(store_id, key, withdrawn)
        return False

    def suppress(self, store_id: str, key: str, reason: str, at: datetime) -> None:
        record = self._record(store_id, key)
        if record.suppressed_reason is None:
            self._put(store_id, dataclasses.replace(record, suppressed_reason=reason))

    def note_sent(self, store_id: str, key: str, last_message: dict[str, Any], **proof: Any) -> None:
        """The consent proof (``consent``, ``seen``) is the DynamoDB adapter's; its tests are integration tests.
        The email before joins ``earlier_messages``, as the adapter keeps them."""
        record = self._record(store_id, key)
        previous = record.last_message
        moved = (
            [{"message_id": previous["message_id"], "sent_at": previous["sent_at"]}]
            if previous and previous["message_id"] != last_message["message_id"]
            else []
        )
        earlier = tuple([*moved, *record.earlier_messages][:EARLIER_MESSAGES_KEPT])
        self._put(store_id, dataclasses.replace(record, last_message=dict(last_message), earlier_messages=earlier))

    def note_entry(self, store_id: str, key: str, entry: dict[str, Any], until: datetime) -> None:
        self._put(store_id, dataclasses.replace(self._record(store_id, key), last_entry=dict(entry)))


@dataclass
class ArmedSchedule:
    timer: Timer
    payload: dict[str, Any]


class FakeSchedules:
    """One-time schedules by name; ``fire_due`` plays the Scheduler (deletes a schedule as it fires it)."""

    def __init__(self) -> None:
        self.pending: dict[str, ArmedSchedule] = {}
        self.created: list[Timer] = []  # every distinct creation, in order

    def arm(self, timer: Timer, payload: dict[str, Any]) -> None:
        if timer.schedule_name in self.pending:
            return
        self.pending[timer.schedule_name] = ArmedSchedule(timer, dict(payload))
        self.created.append(timer)

    def exists(self, name: str) -> bool:
        return name in self.pending

    def due(self, now: datetime) -> list[ArmedSchedule]:
        return sorted((s for s in self.pending.values() if s.timer.due_at <= now), key=lambda s: s.timer.due_at)

    def take(self, name: str) -> ArmedSchedule:
        return self.pending.pop(name)


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self._ids = itertools.count(1)
        self.fail_with: Exception | None = None

    def send(self, email: OutgoingEmail) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(email)
        return f"ses-{next(self._ids):04d}"


class FakeLedger:
    def __init__(self) -> None:
        self.messages: dict[str, MessageRecord] = {}
        self.counters: dict[tuple[str, str, str, int, str], dict[str, Any]] = {}
        self.once: set[tuple[str, str, str]] = set()  # (store, kind, once) marked already

    def _bump(
        self,
        store_id: str,
        row: dict[str, Any],
        kind: str,
        amount: int,
        revenue: Decimal | None,
        revenue_column: str = "revenue",
    ) -> None:
        key = (store_id, str(row["day"]), str(row["flow"]), int(row["step"]), str(row["variant"]))
        counter = self.counters.setdefault(key, {})
        counter[kind] = counter.get(kind, 0) + amount
        if revenue is not None:
            counter[revenue_column] = counter.get(revenue_column, Decimal(0)) + revenue

    def record_sent(self, message: MessageRecord, column: str = "sent") -> None:
        if message.message_id in self.messages:
            return
        self.messages[message.message_id] = message
        row = {"day": message.day, "flow": message.flow, "step": message.step, "variant": message.variant}
        self._bump(message.store_id, row, column, 1, None)

    def record_entry(self, entry: MessageRecord) -> None:
        self.record_sent(entry, "entered")

    def get(self, message_id: str) -> MessageRecord | None:
        return self.messages.get(message_id)

    def mark(
        self,
        message_id: str,
        kind: str,
        at: datetime,
        revenue: Decimal | None = None,
        detail: dict[str, str] | None = None,
        row: dict[str, Any] | None = None,
        revenue_column: str = "revenue",
        once: str | None = None,
    ) -> str:
        message = self.messages.get(message_id)
        if message is None:
            return "missing"
        if kind in message.marks or (once is not None and (message.store_id, kind, once) in self.once):
            return "again"
        if once is not None:
            self.once.add((message.store_id, kind, once))
        self.messages[message_id] = dataclasses.replace(message, marks={**message.marks, kind: at.isoformat()})
        counter_row = {"day": message.day, "flow": message.flow, "step": message.step, "variant": message.variant}
        self._bump(message.store_id, counter_row, kind, 1, revenue, revenue_column)
        return "new"

    def mark_batch(self, marks: list[Mark]) -> list[str] | None:
        # All or nothing, as the DynamoDB transaction: a missing message, or a repeat only the write's
        # condition would see (the row was given, so nothing read the message), writes nothing.
        for mark in marks:
            message = self.messages.get(mark.message_id)
            if message is None or (mark.row is not None and mark.kind in message.marks):
                return None
        return [self.mark(m.message_id, m.kind, m.at, m.revenue, m.detail, m.row, m.revenue_column) for m in marks]

    def count(self, store_id: str, row: dict[str, Any], kind: str, amount: int = 1) -> None:
        self._bump(store_id, row, kind, amount, None)

    def report_rows(self, store_id: str, day_from: str, day_to: str) -> list[dict[str, Any]]:
        return [
            {"day": day, "flow": flow, "step": step, "variant": variant, **values}
            for (store, day, flow, step, variant), values in sorted(self.counters.items())
            if store == store_id and day_from <= day <= day_to
        ]


class FakeCouponPool:
    """Codes in upload order and a hand-out counter that only moves forward, like the DynamoDB adapter:
    a holder (cart step) keeps its code, and a number once taken is never taken again."""

    def __init__(self) -> None:
        self.codes: dict[str, list[str]] = {}
        self.taken: dict[str, int] = {}
        self.holders: dict[tuple[str, str], str] = {}
        self.hand_out_calls = 0

    def hand_out(self, store_id: str, holder: str, at: datetime) -> str | None:
        self.hand_out_calls += 1
        if (store_id, holder) in self.holders:
            return self.holders[(store_id, holder)]
        codes, taken = self.codes.get(store_id, []), self.taken.get(store_id, 0)
        if taken >= len(codes):
            return None
        self.taken[store_id] = taken + 1
        self.holders[(store_id, holder)] = codes[taken]
        return codes[taken]

    def existing_codes(self, store_id: str) -> set[str]:
        return set(self.codes.get(store_id, []))

    def add_codes(self, store_id: str, codes: list[str], at: datetime) -> None:
        self.codes.setdefault(store_id, []).extend(codes)

    def stats(self, store_id: str) -> PoolStats:
        return PoolStats(len(self.codes.get(store_id, [])), self.taken.get(store_id, 0))


def store_settings(store_id: str = "shop-1", **changes: Any) -> StoreSettings:
    base = StoreSettings(
        store_id=store_id,
        name="Matcha Shop",
        sender_email="shop@example.jp",
        sender_name="Matcha Shop",
        url="https://shop.example.jp",
        legal=Legal("Matcha Shop K.K.", "1-2-3 Chiyoda, Tokyo", "support@example.jp"),
    )
    return dataclasses.replace(base, **changes)


_RENDERER: EmailRenderer | None = None


def shared_renderer() -> EmailRenderer:
    """The shipped templates, loaded once for the whole test run."""
    global _RENDERER
    if _RENDERER is None:
        _RENDERER = EmailRenderer()
    return _RENDERER


@dataclass
class World:
    """One store and every fake, wired to the real ``IngestEvent`` and ``RunDueStep``."""

    clock: ManualClock
    store: Store
    stores: FakeStores = field(default_factory=FakeStores)
    events: FakeEventLog = field(default_factory=FakeEventLog)
    carts: FakeCarts = field(default_factory=FakeCarts)
    contacts: FakeContacts = field(default_factory=FakeContacts)
    schedules: FakeSchedules = field(default_factory=FakeSchedules)
    mailer: FakeMailer = field(default_factory=FakeMailer)
    ledger: FakeLedger = field(default_factory=FakeLedger)
    coupons: FakeCouponPool = field(default_factory=FakeCouponPool)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.stores.create(self.store)
        self.ingest = IngestEvent(self.events, self.carts, self.contacts, self.schedules, self.ledger, self.clock)
        self.run_step = RunDueStep(
            self.stores,
            self.carts,
            self.contacts,
            self.schedules,
            self.mailer,
            self.ledger,
            shared_renderer(),
            self.clock,
            PUBLIC_BASE_URL,
            coupons=self.coupons,
        )

    @classmethod
    def create(cls, start: datetime, settings: StoreSettings | None = None, **fakes: Any) -> World:
        """A world at ``start`` with one store; ``fakes`` replaces any of the default fakes by name."""
        clock = ManualClock(start)
        return cls(clock=clock, store=new_store(settings or store_settings(), clock.now()), **fakes)

    @property
    def store_id(self) -> str:
        return self.store.store_id

    def send(self, body: dict[str, Any], event_id: str | None = None) -> IngestResult:
        """Deliver a wire event body (validated as the API would) to the store."""
        event: Event = parse_event(body)
        return self.ingest(self.store, event_id or f"evt-{next(self._ids)}", event, fingerprint=repr(body))

    def cart(self, cart_id: str) -> CartState:
        cart = self.carts.get(self.store_id, cart_id)
        assert cart is not None, f"no cart {cart_id}"
        return cart

    def fire(self, cart_id: str, step: int, flow: str = "cart_recovery") -> StepOutcome:
        """Invoke the step handler the way a schedule's input would (the schedule itself stays put)."""
        return self.run_step({"store_id": self.store_id, "cart_id": cart_id, "flow": flow, "step": step})

    def fire_due(self) -> list[StepOutcome]:
        """Play the Scheduler up to now: fire (and delete) every schedule whose time has come."""
        outcomes = []
        while due := self.schedules.due(self.clock.now()):
            armed = self.schedules.take(due[0].timer.schedule_name)
            outcomes.append(self.run_step(armed.payload))
        return outcomes

    def advance_to(self, moment: datetime) -> None:
        self.clock.set(moment)

    def email_key(self, email: str) -> str:
        return "e#" + email_hash(self.store.salt, email)

    def customer_key(self, customer_id: str) -> str:
        return "c#" + customer_hash(self.store.salt, customer_id)


def parse_body(raw: bytes) -> Event:
    """A raw request body through the same decoding and validation the ingest API applies."""
    return parse_event(decode_json(raw))


# --- wire event bodies ------------------------------------------------------------------------------------


def item_body(sku: str = "TEA-001", price: int = 1280, quantity: int = 2) -> dict[str, Any]:
    return {
        "sku": sku,
        "name": "抹茶ラテ",
        "url": f"https://shop.example.jp/products/{sku.lower()}",
        "unit_price": price,
        "quantity": quantity,
    }


def cart_updated(
    at: str,
    cart_id: str = "c-1",
    email: str | None = "taro@example.jp",
    *,
    consent: bool | None = True,
    customer_id: str | None = None,
    timezone: str | None = None,
    items: list[dict[str, Any]] | None = None,
    kind: str = "cart.updated",
    consent_at: str | None = None,
) -> dict[str, Any]:
    customer: dict[str, Any] = {"name": "山田 太郎", "locale": "ja"}
    if email is not None:
        customer["email"] = email
    if customer_id is not None:
        customer["id"] = customer_id
    if timezone is not None:
        customer["timezone"] = timezone
    if consent is not None:
        customer["marketing_consent"] = {"granted": consent, "source": "checkout-form"}
        if consent_at is not None:
            customer["marketing_consent"]["at"] = consent_at
    lines = [item_body()] if items is None else items
    total = sum(int(i["unit_price"]) * int(i["quantity"]) for i in lines)
    return {
        "type": kind,
        "occurred_at": at,
        "customer": customer,
        "cart": {
            "id": cart_id,
            "currency": "JPY",
            "items": lines,
            "total": total,
            "recovery_url": f"https://shop.example.jp/cart/restore?t={cart_id}",
        },
    }


def order_placed(
    at: str,
    cart_id: str | None = "c-1",
    email: str | None = "taro@example.jp",
    *,
    customer_id: str | None = None,
    order_id: str = "o-1",
    total: int = 2560,
) -> dict[str, Any]:
    order: dict[str, Any] = {"id": order_id, "total": total, "currency": "JPY"}
    if cart_id is not None:
        order["cart_id"] = cart_id
    customer: dict[str, Any] = {}
    if email is not None:
        customer["email"] = email
    if customer_id is not None:
        customer["id"] = customer_id
    body: dict[str, Any] = {"type": "order.placed", "occurred_at": at, "order": order}
    if customer:
        body["customer"] = customer
    return body


def cart_cleared(at: str, cart_id: str = "c-1") -> dict[str, Any]:
    return {"type": "cart.cleared", "occurred_at": at, "cart": {"id": cart_id}}


def unsubscribed(at: str, email: str = "taro@example.jp") -> dict[str, Any]:
    return {"type": "customer.unsubscribed", "occurred_at": at, "customer": {"email": email}}
