"""What the use cases need from the outside world. AWS adapters implement these against DynamoDB,
EventBridge Scheduler and SES; unit tests use in-memory fakes with the same behaviour."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from cartrecovery.domain.cart import CartState, Decision, StepRecord, Timer
from cartrecovery.domain.catalog import Catalog
from cartrecovery.domain.events import Consent
from cartrecovery.domain.store import Store, StoreSettings


class ConcurrentUpdate(Exception):
    """Someone else wrote the item between our read and our write; read again and retry."""


class AlreadyExists(Exception):
    pass


@dataclass(frozen=True)
class ActivityWrite:
    """What ``CartRepository.apply_activity`` did: ``applied``, or not, and then the cart as it is stored
    (None when there is none), read by the refused write itself so the caller folds without reading again."""

    applied: bool
    current: CartState | None = None


class UnknownStore(LookupError):
    """No store has this id."""


class SendThrottled(Exception):
    """SES refused for rate: nothing was sent, so the step may be tried again later."""


class SendRejected(Exception):
    """SES refused this message for good (bad or suppressed address, unverified sender)."""


class SendFailed(Exception):
    """SES refused the request itself (permissions, configuration): nothing went out; an operator must act."""


class SendOutcomeUnknown(Exception):
    """The call may or may not have reached SES (timeout, 5xx): never retried automatically."""


@dataclass(frozen=True)
class ConsentStatement:
    """One consent statement kept as proof: what was said, when, where, and the event that carried it
    (the webhook id, or ``cart:<id>`` for the checkout consent an email was sent on)."""

    granted: bool
    at: datetime
    source: str | None = None
    event: str | None = None


EARLIER_MESSAGES_KEPT = 3


@dataclass(frozen=True)
class ContactRecord:
    """What the store knows of one address (or customer id), keyed by its salted hash.

    ``consent`` is the newest signal of all (the proof's statement or an opt-out); ``proof`` and ``history``
    (newest first) are the kept proof, which expires at ``proof_expires_at``; ``opted_out`` and
    ``suppressed_reason`` are stops, which never expire."""

    key: str
    consent: Consent | None = None
    unsubscribed_at: datetime | None = None
    suppressed_reason: str | None = None
    last_order_at: datetime | None = None
    last_message: dict[str, Any] | None = None  # {message_id, flow, step, variant, day, sent_at}
    # The emails before it, newest first ({message_id, sent_at}; at most EARLIER_MESSAGES_KEPT): an order
    # that arrives after a later email was sent still finds the one it followed.
    earlier_messages: tuple[dict[str, Any], ...] = ()
    proof: ConsentStatement | None = None
    history: tuple[ConsentStatement, ...] = ()
    proof_expires_at: datetime | None = None
    proof_version: int = 0
    opted_out: ConsentStatement | None = None
    # The address's latest entry into a flow of a store that measures a holdout group ({entry_id, flow, at}):
    # an order that names no cart still converts it, as it would credit an email.
    last_entry: dict[str, Any] | None = None


@dataclass(frozen=True)
class MessageRecord:
    message_id: str
    store_id: str
    cart_id: str
    flow: str
    step: int
    variant: str
    day: str
    email_hash: str
    sent_at: datetime
    marks: dict[str, str] = field(default_factory=dict)  # kind -> first time, e.g. {"opened": "..."}


@dataclass(frozen=True)
class Mark:
    """One outcome of one message, to mark and count (``row``: as for ``MessageLedger.mark``)."""

    message_id: str
    kind: str
    at: datetime
    detail: dict[str, str] = field(default_factory=dict)
    row: dict[str, Any] | None = None
    revenue: Decimal | None = None
    # The counter the revenue adds to: ``revenue`` in the store's currency, ``revenue_USD`` in another.
    revenue_column: str = "revenue"


@dataclass(frozen=True)
class OutgoingEmail:
    sender: str
    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    tags: dict[str, str]

    @cached_property
    def raw(self) -> bytes:
        """The MIME message as sent. Built once; the send builds it before claiming the step, so a header
        that cannot be written (a line break in a stored sender name) fails with the step unclaimed."""
        from cartrecovery.email.mime import build_message

        return build_message(self.sender, self.to, self.subject, self.text, self.html, self.headers)


class StoreRepository(Protocol):
    def get(self, store_id: str) -> Store | None: ...
    def create(self, store: Store) -> None: ...
    def save(self, store: Store) -> None: ...
    def list_ids(self) -> list[str]: ...


@runtime_checkable
class SettingsUpdates(Protocol):
    def update_settings(
        self, store_id: str, change: Callable[[Store], StoreSettings]
    ) -> tuple[StoreSettings, StoreSettings] | None:
        """Replace the store's settings with ``change(store)`` as stored now, and nothing else of the store;
        a change made by someone else meanwhile is never overwritten (``change`` runs again on it). Returns
        (before, after), or None for no such store. Whatever ``change`` raises leaves the store as it was."""
        ...


@runtime_checkable
class StoreCache(Protocol):
    """A store repository whose ``get`` may answer with a copy read a few seconds ago."""

    def refresh(self, store_id: str) -> Store | None:
        """The store as stored now (read past the cache, which then keeps it)."""
        ...


@runtime_checkable
class TemplateOverrides(Protocol):
    """A store's uploaded email templates (name like ``ja/cart_recovery/step1.html.j2`` to Jinja source)."""

    def get_templates(self, store_id: str) -> dict[str, str]:
        """The store's overrides; empty when it uses the shipped templates only."""
        ...

    def save_templates(self, store_id: str, templates: dict[str, str], updated_at: str) -> None:
        """Replace the store's overrides with ``templates`` (all of them, not a merge)."""
        ...

    def delete_templates(self, store_id: str) -> bool:
        """Remove every override; False when there were none."""
        ...


@runtime_checkable
class Catalogs(Protocol):
    """A store's uploaded product catalog, which step 3 recommends from."""

    def get_catalog(self, store_id: str) -> Catalog | None:
        """The store's catalog; None when it has not uploaded one."""
        ...

    def save_catalog(self, store_id: str, catalog: Catalog) -> int:
        """Replace the store's catalog (all of it, not a merge); returns the bytes stored. Raises
        ``CatalogTooLarge`` (nothing stored) when it does not fit."""
        ...


class CatalogTooLarge(Exception):
    """The catalog does not fit in what a store may keep; nothing was stored."""


class PoolBusy(Exception):
    """Another upload to the same coupon pool is in progress; try again when it has finished."""


@dataclass(frozen=True)
class PoolStats:
    total: int  # codes uploaded
    handed_out: int  # codes given to carts (each at most once, never again)

    @property
    def left(self) -> int:
        return max(0, self.total - self.handed_out)


class CouponPool(Protocol):
    """A store's single-use coupon codes. Each code goes to at most one holder (a cart's step), ever."""

    def hand_out(self, store_id: str, holder: str, at: datetime) -> str | None:
        """The code ``holder`` was given before, else the next unused one; None when the pool is empty."""
        ...

    def existing_codes(self, store_id: str) -> set[str]: ...

    def add_codes(self, store_id: str, codes: list[str], at: datetime) -> None:
        """Append ``codes`` (new, distinct) to the pool; raises PoolBusy during another upload."""
        ...

    def stats(self, store_id: str) -> PoolStats: ...


class EventLog(Protocol):
    def record(self, store_id: str, event_id: str, summary: dict[str, Any], expires_at: datetime) -> bool:
        """Record an event id once; False when it was already recorded (a duplicate delivery)."""
        ...

    def get(self, store_id: str, event_id: str) -> dict[str, Any] | None: ...


class CartRepository(Protocol):
    def get(self, store_id: str, cart_id: str) -> CartState | None: ...

    def save_fold(
        self, cart: CartState, expected_version: int | None, arm: tuple[Timer, Decision] | None = None
    ) -> None:
        """Write the event-derived fields if the stored version still equals ``expected_version``. ``arm``
        (only with a new cart) sets its first timer in the same write."""
        ...

    def apply_activity(self, snapshot: CartState) -> ActivityWrite:
        """Write ``with_newer_activity(stored, snapshot)`` (an ``activity_snapshot``) in one conditional
        write, only if the stored cart is open, has an armed timer and holds an older snapshot: the fold
        would do the same, and nothing else of the event is left to do. In every other case nothing is
        written, and the stored cart comes back for a read-fold-write."""
        ...

    def arm_if_idle(self, store_id: str, cart_id: str, timer: Timer, decision: Decision) -> bool:
        """Set the timer only if the cart has none and is open; True if this call set it."""
        ...

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
        """Log a decision; optionally replace the timer (None removes it, False leaves it) and a step. With
        ``undecided`` (a step key), only while that step has no record: False, and nothing written, if
        another delivery has claimed or decided it since this one read the cart."""
        ...

    def claim_step(self, store_id: str, cart_id: str, key: str, record: StepRecord) -> bool:
        """Claim a step while the cart is open and the step unclaimed; False if someone else got it."""
        ...

    def release_step(self, store_id: str, cart_id: str, key: str, decision: Decision) -> None: ...


class ArmedTimers(Protocol):
    """The carts' armed timers, as the reconciliation sweep reads and repairs them."""

    def get(self, store_id: str, cart_id: str) -> CartState | None: ...

    def overdue(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """(store_id, cart_id) of carts whose timer was due at or before ``before``, oldest first."""
        ...

    def replace_timer(
        self, store_id: str, cart_id: str, expected: str, timer: Timer | None, decision: Decision
    ) -> bool:
        """Replace or (None) remove the timer if it is still the schedule named ``expected``."""
        ...


class ContactBook(Protocol):
    def get_many(self, store_id: str, keys: list[str]) -> dict[str, ContactRecord]: ...
    def record_order(self, store_id: str, key: str, at: datetime) -> None: ...
    def record_consent(self, store_id: str, key: str, consent: Consent, event: str | None = None) -> None: ...
    def unsubscribe(self, store_id: str, key: str, at: datetime, source: str, event: str | None = None) -> bool: ...
    def suppress(self, store_id: str, key: str, reason: str, at: datetime) -> None: ...

    def note_sent(
        self,
        store_id: str,
        key: str,
        last_message: dict[str, Any],
        consent: ConsentStatement | None = None,
        seen: ContactRecord | None = None,
    ) -> None:
        """Remember the email and move the proof's expiry to three years after it, in one write; ``consent``
        (the statement the email was sent on) joins the proof unless ``seen`` (the record read) has it."""
        ...

    def note_entry(self, store_id: str, key: str, entry: dict[str, Any], until: datetime) -> None:
        """Remember the address's latest flow entry ({entry_id, flow, at}) until ``until`` at least."""
        ...


class Schedules(Protocol):
    def arm(self, timer: Timer, payload: dict[str, Any]) -> None:
        """Create the one-time schedule; creating one that already exists is a no-op."""
        ...

    def exists(self, name: str) -> bool:
        """Whether the named schedule is still pending (a fired one-time schedule is deleted)."""
        ...


class Mailer(Protocol):
    def send(self, email: OutgoingEmail) -> str:
        """Send and return the provider's message id, or raise SendThrottled/SendRejected/SendOutcomeUnknown."""
        ...


class MessageLedger(Protocol):
    def record_sent(self, message: MessageRecord) -> None: ...

    def record_entry(self, entry: MessageRecord) -> None:
        """Record a cart's entry into a flow (``step`` ENTRY_STEP, ``variant`` its group) and count it in its
        row's ``entered``, once; it is marked ``converted`` as a message is."""
        ...

    def get(self, message_id: str) -> MessageRecord | None: ...

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
        """Mark a message once per kind and count it; returns 'new', 'again' or 'missing'. ``row`` (store_id,
        day, flow, step, variant: the message's counter row, when the caller knows it) saves reading the message.
        ``once`` names what may be marked only once in the store, whichever message it lands on (an order: one
        order converts one email); marked already, it is 'again' and nothing is counted."""
        ...

    def mark_batch(self, marks: list[Mark]) -> list[str] | None:
        """Mark and count several outcomes in one write, each counter row moved once by the batch's totals;
        returns each mark's 'new' or 'again', in order. None, with nothing written, when the batch cannot be
        counted as one (a message not recorded yet, a repeat the read could not see, a cancelled write):
        the caller then marks them one at a time."""
        ...

    def count(self, store_id: str, row: dict[str, Any], kind: str, amount: int = 1) -> None: ...
    def report_rows(self, store_id: str, day_from: str, day_to: str) -> list[dict[str, Any]]: ...
