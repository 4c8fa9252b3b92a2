"""No email goes out after the shopper bought, emptied the cart or unsubscribed, whatever the interleaving.

Hypothesis draws a history for one address with two carts: cart activity, orders (for a cart, or matched only
by the address), clears, unsubscribes, re-deliveries of earlier events, stray or repeated step firings and the
passing of time (the Scheduler firing each due schedule at its time). Events may arrive late (``occurred_at``
before their arrival) and some arrive *while* a send handler is deciding: after it read the cart and the
address, before it claims the step. The journal numbers every commit, and every claim that led to an email:

* no email whose claim came after a committed order or clear of its cart, or an unsubscribe of the address,
  or an order by the same address placed at or after the cart's last activity;
* at most one email per (cart, step).

Runs on the in-memory fakes (``tests/fakes.py``), which keep the adapters' conditional-write behaviour.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from cartrecovery.domain.cart import StepRecord
from cartrecovery.domain.store import CART_RECOVERY, Flow, FlowStep
from cartrecovery.ports import OutgoingEmail
from tests.fakes import (
    FakeCarts,
    FakeMailer,
    World,
    cart_cleared,
    cart_updated,
    order_placed,
    store_settings,
    unsubscribed,
)

EMAIL = "taro@example.jp"
CARTS = ("c-1", "c-2")
START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo, the store's zone
CONSENT_AT = START - timedelta(days=1)  # given once at checkout; every later signal is newer
FLOW = Flow(CART_RECOVERY, (FlowStep(1, 3600), FlowStep(2, 6 * 3600), FlowStep(3, 24 * 3600)))


# ---- what can happen -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    cart: str
    lag: int  # minutes between occurring and arriving
    checkout: bool = False


@dataclass(frozen=True)
class Order:
    cart: str | None  # None: matched by the address only
    lag: int


@dataclass(frozen=True)
class Clear:
    cart: str
    lag: int


@dataclass(frozen=True)
class Unsubscribe:
    lag: int


@dataclass(frozen=True)
class Redeliver:
    index: int  # an earlier delivery, again with the same event id


@dataclass(frozen=True)
class Fire:
    cart: str
    step: int  # a stray, early or repeated invocation of the send handler


@dataclass(frozen=True)
class FireWhile:
    """A firing while an event arrives: it commits after the handler read the cart, before the claim."""

    cart: str
    step: int
    event: Order | Clear | Unsubscribe


@dataclass(frozen=True)
class Advance:
    minutes: int


carts = st.sampled_from(CARTS)
lags = st.integers(0, 180)
steps = st.integers(1, 3)
stops = st.one_of(
    st.builds(Order, cart=st.one_of(st.none(), carts), lag=lags),
    st.builds(Clear, cart=carts, lag=lags),
    st.builds(Unsubscribe, lag=lags),
)
# Weighted so that most histories reach a send: activity and time dominate, a stop ends a cart's story.
KINDS = {
    "activity": (5, st.builds(Activity, cart=carts, lag=lags, checkout=st.booleans())),
    "advance": (5, st.builds(Advance, minutes=st.integers(5, 12 * 60))),
    "fire": (2, st.builds(Fire, cart=carts, step=steps)),
    "fire_while": (4, st.builds(FireWhile, cart=carts, step=steps, event=stops)),
    "redeliver": (1, st.builds(Redeliver, index=st.integers(0, 30))),
    "stop": (2, stops),
}
action = st.sampled_from([kind for kind, (weight, _) in KINDS.items() for _ in range(weight)]).flatmap(
    lambda kind: KINDS[kind][1]
)
actions = st.lists(action, min_size=8, max_size=30)


# ---- the journal -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    seq: int
    kind: str  # order, clear, unsubscribe
    cart: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class Email:
    cart: str
    step: int
    claim_seq: int
    last_activity_at: datetime  # the cart's, when the step was claimed


@dataclass
class Journal:
    seq: int = 0
    stops: list[Stop] = field(default_factory=list)
    emails: list[Email] = field(default_factory=list)
    racing: list[Callable[[], None]] = field(default_factory=list)
    last_claim: Email | None = None

    def tick(self) -> int:
        self.seq += 1
        return self.seq


class JournalCarts(FakeCarts):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    def claim_step(self, store_id: str, cart_id: str, key: str, record: StepRecord) -> bool:
        while self.journal.racing:  # the events that arrive while this handler decided
            self.journal.racing.pop(0)()
        claimed = super().claim_step(store_id, cart_id, key, record)
        if claimed:
            cart = self.items[(store_id, cart_id)]
            assert cart.last_activity_at is not None
            step = int(key.rpartition("#")[2])
            self.journal.last_claim = Email(cart_id, step, self.journal.tick(), cart.last_activity_at)
        return claimed


class JournalMailer(FakeMailer):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    def send(self, email: OutgoingEmail) -> str:
        claim, self.journal.last_claim = self.journal.last_claim, None
        assert claim is not None, "an email went out without a claim"
        assert email.tags["step"] == str(claim.step)
        self.journal.emails.append(claim)
        return super().send(email)


# ---- playing a history -----------------------------------------------------------------------------------


class History:
    def __init__(self) -> None:
        self.journal = Journal()
        settings_ = store_settings(frequency_cap_hours=0, flows={CART_RECOVERY: FLOW})
        self.world = World.create(
            START, settings_, carts=JournalCarts(self.journal), mailer=JournalMailer(self.journal)
        )
        self.deliveries: list[tuple[str, dict[str, Any], Stop | None]] = []

    def now(self) -> datetime:
        return self.world.clock.now()

    def body(self, event: Activity | Order | Clear | Unsubscribe) -> tuple[dict[str, Any], Stop | None]:
        at = self.now() - timedelta(minutes=event.lag)
        text = at.isoformat()
        if isinstance(event, Activity):
            body = cart_updated(text, event.cart, EMAIL, kind="checkout.started" if event.checkout else "cart.updated")
            body["customer"]["marketing_consent"]["at"] = CONSENT_AT.isoformat()
            return body, None
        if isinstance(event, Order):
            body = order_placed(text, event.cart, EMAIL, order_id=f"o-{len(self.deliveries)}")
            return body, Stop(0, "order", event.cart, at)
        if isinstance(event, Clear):
            return cart_cleared(text, event.cart), Stop(0, "clear", event.cart, at)
        return unsubscribed(text, EMAIL), Stop(0, "unsubscribe", None, at)

    def deliver(self, event_id: str, body: dict[str, Any], stop: Stop | None) -> None:
        self.world.send(body, event_id=event_id)
        if stop is not None:  # committed now
            self.journal.stops.append(Stop(self.journal.tick(), stop.kind, stop.cart, stop.occurred_at))

    def event(self, event: Activity | Order | Clear | Unsubscribe) -> Callable[[], None]:
        body, stop = self.body(event)
        event_id = f"evt-{len(self.deliveries)}"
        self.deliveries.append((event_id, body, stop))
        return lambda: self.deliver(event_id, body, stop)

    def fire(self, cart: str, step: int) -> None:
        self.world.run_step({"store_id": self.world.store_id, "cart_id": cart, "flow": CART_RECOVERY, "step": step})

    def advance(self, minutes: int) -> None:
        """The Scheduler: each due schedule fires (and is deleted) at its own time, in time order."""
        target = self.now() + timedelta(minutes=minutes)
        schedules = self.world.schedules
        while due := schedules.due(target):
            self.world.clock.set(max(self.now(), due[0].timer.due_at))
            self.world.run_step(schedules.take(due[0].timer.schedule_name).payload)
        self.world.clock.set(target)

    def play(self, action: Any) -> None:
        if isinstance(action, Activity | Order | Clear | Unsubscribe):
            self.event(action)()
        elif isinstance(action, Redeliver):
            if self.deliveries:
                self.deliver(*self.deliveries[action.index % len(self.deliveries)])
        elif isinstance(action, Fire):
            self.fire(action.cart, action.step)
        elif isinstance(action, FireWhile):
            arrive = self.event(action.event)
            self.journal.racing.append(arrive)
            self.fire(action.cart, action.step)
            if arrive in self.journal.racing:  # the handler stopped before claiming: the event comes after
                self.journal.racing.remove(arrive)
                arrive()
        else:
            self.advance(action.minutes)
        self.world.clock.advance(1)  # every delivery and invocation at its own instant


def wrong_emails(journal: Journal) -> list[tuple[Email, Stop]]:
    wrong = []
    for email in journal.emails:
        for stop in journal.stops:
            if stop.seq > email.claim_seq:
                continue
            if (
                (stop.kind in ("order", "clear") and stop.cart == email.cart)
                or stop.kind == "unsubscribe"
                or (stop.kind == "order" and stop.occurred_at >= email.last_activity_at)
            ):
                wrong.append((email, stop))
    return wrong


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
# The sharpest interleavings, always tried: a due step's handler has read everything when the stop lands.
@example([Activity("c-1", lag=60), FireWhile("c-1", 1, Order("c-1", lag=0))])
@example([Activity("c-1", lag=60), FireWhile("c-1", 1, Order(None, lag=0))])
@example([Activity("c-1", lag=60), FireWhile("c-1", 1, Clear("c-1", lag=0))])
@example([Activity("c-1", lag=60), FireWhile("c-1", 1, Unsubscribe(lag=0))])
def test_no_email_after_an_order_a_clear_or_an_unsubscribe(history_actions: list[Any]) -> None:
    history = History()
    for action in history_actions:
        note(repr(action))
        history.play(action)
    journal = history.journal

    assert wrong_emails(journal) == []
    per_step = Counter((email.cart, email.step) for email in journal.emails)
    assert all(count == 1 for count in per_step.values()), per_step
    assert len(history.world.mailer.sent) == len(journal.emails)
