"""Run a cart's due step when its schedule fires: decide, claim, send, record, arm the next step.

The schedule's input only names the cart; everything is decided from what is stored now. A step is
claimed with a conditional write before SES is called, so a second delivery of the same firing (Scheduler
and Lambda both retry) finds the claim and sends nothing. Every outcome is logged on the cart.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cartrecovery.clock import Clock, isoformat, parse_rfc3339
from cartrecovery.domain.cart import (
    CLAIMED,
    HELD_OUT,
    SENT,
    SKIPPED,
    UNKNOWN,
    CartState,
    Decision,
    StepRecord,
    step_key,
)
from cartrecovery.domain.content import RECOMMENDATION_STEP, is_first_purchase
from cartrecovery.domain.measurement import (
    ENTRY_STEP,
    HOLDOUT,
    TREATED,
    entry_id,
    group_for,
    measurement_window,
    variant_for,
)
from cartrecovery.domain.send_window import earliest_send
from cartrecovery.domain.store import COUPON_STEP, Flow, FlowStep, Store
from cartrecovery.domain.timing import due_at, next_step, timer_for
from cartrecovery.email.context import build_context, choose_locale
from cartrecovery.email.mime import sender_address
from cartrecovery.email.render import EmailRenderer
from cartrecovery.identity import email_hash
from cartrecovery.ports import (
    CartRepository,
    Catalogs,
    ConsentStatement,
    ContactBook,
    ContactRecord,
    CouponPool,
    Mailer,
    MessageLedger,
    MessageRecord,
    OutgoingEmail,
    Schedules,
    SendFailed,
    SendOutcomeUnknown,
    SendRejected,
    SendThrottled,
    StoreRepository,
    TemplateOverrides,
)
from cartrecovery.tokens import UnsubscribeToken, issue
from cartrecovery.usecases.coupons import choose_code
from cartrecovery.usecases.ingest import contact_keys, schedule_payload

log = logging.getLogger(__name__)

THROTTLE_BACKOFF = timedelta(minutes=5)
# A claim this old has no send behind it any more (the send function times out after 30 s): the invocation
# died between claiming and recording, so SES may or may not have the message.
ABANDONED_CLAIM = timedelta(minutes=5)


@dataclass(frozen=True)
class StepOutcome:
    action: str  # sent, skipped, deferred, rearmed, stopped, throttled, unknown, already_claimed, already_done, ignored
    reason: str | None = None
    flow: str | None = None
    step: int | None = None
    message_id: str | None = None
    coupon_pool_empty: bool = False  # a pool store's coupon step found no code left in the pool


class RunDueStep:
    def __init__(
        self,
        stores: StoreRepository,
        carts: CartRepository,
        contacts: ContactBook,
        schedules: Schedules,
        mailer: Mailer,
        ledger: MessageLedger,
        renderer: EmailRenderer,
        clock: Clock,
        public_base_url: str,
        templates: TemplateOverrides | None = None,
        coupons: CouponPool | None = None,
        catalogs: Catalogs | None = None,
    ) -> None:
        self.stores = stores
        self.catalogs = catalogs  # a store's uploaded catalog, read (through the cache) for its recommendations
        self.coupons = coupons  # single-use codes, read only for stores whose coupon is a pool
        self.templates = templates  # a store's uploaded templates, laid over the renderer's
        self.carts = carts
        self.contacts = contacts
        self.schedules = schedules
        self.mailer = mailer
        self.ledger = ledger
        self.renderer = renderer
        self.clock = clock
        self.public_base_url = public_base_url.rstrip("/")

    def __call__(self, payload: dict[str, Any]) -> StepOutcome:
        store = self.stores.get(str(payload["store_id"]))
        if store is None:
            return StepOutcome("ignored", "unknown_store")
        cart = self.carts.get(store.store_id, str(payload["cart_id"]))
        if cart is None:
            return StepOutcome("ignored", "unknown_cart")
        flow_name = str(payload.get("flow") or "cart_recovery")
        flow = store.settings.flows.get(flow_name)
        if flow is None or not flow.enabled:
            return self._stop(cart, flow_name, None, "flow_disabled")
        fired = payload.get("step")
        if isinstance(fired, int) and step_key(flow_name, fired) in cart.steps:
            record = cart.steps[step_key(flow_name, fired)]
            if record.status == CLAIMED and self.clock.now() - record.at >= ABANDONED_CLAIM:
                return self._abandoned(store, cart, flow, fired, record)
            parked = cart.timer is not None and (cart.timer.flow, cart.timer.step) == (flow_name, fired)
            if record.status == HELD_OUT and parked:
                # Held out, and the invocation died before it finished: finish it (each write is a no-op again).
                return self._hold_out(store, cart, flow, fired, record.at)
            if record.status == CLAIMED or not parked:
                # Another delivery of a firing whose step already has its outcome, or is being sent right now
                # (Scheduler and Lambda both retry): nothing to decide, and nothing to log on the cart, whose
                # log would otherwise say why not.
                return StepOutcome("already_done", None, flow_name, fired)
            # The step has its outcome but the timer still waits on it: the invocation that recorded the
            # outcome died before moving the timer on. Carry on from here, or the flow would stay parked.
        if not cart.is_open:
            return self._stop(cart, flow_name, None, f"cart_{cart.status}")
        return self._run(store, cart, flow)

    def _run(self, store: Store, cart: CartState, flow: Flow) -> StepOutcome:
        now = self.clock.now()
        step = next_step(cart, flow)
        late_limit = timedelta(seconds=store.settings.late_limit_seconds)
        fired_step = step
        while step is not None and now > planned_at(cart, flow.name, step) + late_limit:
            # Overdue beyond the limit (a late event, a long outage): a stale reminder helps nobody.
            key = step_key(flow.name, step.step)
            if not self.carts.update_progress(
                store.store_id,
                cart.cart_id,
                decision=Decision(now, "skipped", flow.name, step.step, "too_late"),
                step=(key, StepRecord(SKIPPED, now, reason="too_late")),
                undecided=key,  # a delivery that judged it a moment earlier may have sent it: keep its record
            ):
                return StepOutcome("already_claimed", None, flow.name, step.step)
            cart = _with_step(cart, flow.name, step.step, StepRecord(SKIPPED, now, reason="too_late"))
            step = next_step(cart, flow)
        if step is None:
            return self._stop(cart, flow.name, None, "flow_complete")
        due = due_at(cart, step)
        if now < due:
            # Not due yet: activity moved it later, or the steps before it were too late (the next waits).
            reason = "cart_activity" if step is fired_step else "next_step"
            return self._rearm(cart, flow, step, now, "rearmed", reason, due)

        blocked, email_record = self._blocked(store, cart)
        if blocked:
            return self._stop(cart, flow.name, step.step, blocked)
        if self._clicked_earlier(store, cart, flow, step):
            return self._skip_clicked(store, cart, flow, step, now)
        deferral = earliest_send(now, store.settings, _zone(cart, store), _last_sent_at(email_record))
        if deferral is not None:
            until, reason = deferral
            return self._rearm(cart, flow, step, now, "deferred", reason, until)
        first_purchase = is_first_purchase(cart.customer.orders_count, email_record and email_record.last_order_at)
        entering = bool(store.settings.holdout_percent) and _entering(cart, flow.name)
        if entering and _group(store, cart, flow) == HOLDOUT:
            return self._hold_out(store, cart, flow, step.step, now, claim=True)
        return self._send(store, cart, flow, step, now, first_purchase=first_purchase, entering=entering)

    def _blocked(self, store: Store, cart: CartState) -> tuple[str | None, ContactRecord | None]:
        """Why this step must not go to this shopper now (None when it may), and the address's record."""
        customer = cart.customer
        if not customer.email:
            return "no_email", None
        if not cart.items:
            return "empty_cart", None
        keys = contact_keys(store, customer.email, customer.id)
        contacts = self.contacts.get_many(store.store_id, keys)
        email_record = contacts.get(keys[0])
        if email_record and email_record.suppressed_reason:
            return "suppressed", email_record
        if not _consent_granted(cart, email_record):
            return ("unsubscribed" if email_record and email_record.unsubscribed_at else "no_consent"), email_record
        assert cart.last_activity_at is not None
        for record in contacts.values():
            if record.last_order_at and record.last_order_at >= cart.last_activity_at:
                return "ordered_since", email_record
        return None, email_record

    def _clicked_earlier(self, store: Store, cart: CartState, flow: Flow, step: FlowStep) -> bool:
        """Whether the coupon step is held back because the shopper clicked an earlier email of the flow
        (only for stores that turn ``coupon.only_if_not_clicked`` on: only they pay the ledger reads)."""
        coupon = store.settings.coupon
        if coupon is None or not coupon.only_if_not_clicked or step.step != COUPON_STEP:
            return False
        for earlier in flow.steps:
            record = cart.step_record(flow.name, earlier.step) if earlier.step < step.step else None
            message = self.ledger.get(record.message_id) if record and record.message_id else None
            if message is not None and "clicked" in message.marks:
                return True
        return False

    def _skip_clicked(self, store: Store, cart: CartState, flow: Flow, step: FlowStep, now: datetime) -> StepOutcome:
        """Pass over the coupon step (no email at all) and go on to the next step, as for any skipped step.
        Claimed like a send, so a concurrent delivery of the same firing cannot send it meanwhile."""
        key = step_key(flow.name, step.step)
        record = StepRecord(SKIPPED, now, reason="clicked_earlier")
        if not self.carts.claim_step(store.store_id, cart.cart_id, key, record):
            return StepOutcome("already_claimed", None, flow.name, step.step)
        decision = Decision(now, "skipped", flow.name, step.step, "clicked_earlier")
        self._advance(store, cart, flow, step.step, now, (key, record), decision)
        return StepOutcome("skipped", "clicked_earlier", flow.name, step.step)

    def _hold_out(
        self, store: Store, cart: CartState, flow: Flow, step: int, at: datetime, claim: bool = False
    ) -> StepOutcome:
        """The shopper is in the flow's holdout group: the step is claimed as held out (so only while the cart
        is still open, and once), the entry recorded, and the flow ends for this cart with no email."""
        key = step_key(flow.name, step)
        held = StepRecord(HELD_OUT, at, HOLDOUT, day=_day(store, at), reason="holdout")
        if claim and not self.carts.claim_step(store.store_id, cart.cart_id, key, held):
            return StepOutcome("already_claimed", None, flow.name, step)
        entry = self._enter(store, cart, flow, HOLDOUT, at)
        decision = Decision(self.clock.now(), "skipped", flow.name, step, "holdout")
        held = dataclasses.replace(held, entry_id=entry)
        self.carts.update_progress(store.store_id, cart.cart_id, timer=None, step=(key, held), decision=decision)
        return StepOutcome("skipped", "holdout", flow.name, step)

    def _enter(self, store: Store, cart: CartState, flow: Flow, group: str, at: datetime) -> str:
        """Record the cart's entry into the flow in ``group`` (once; again changes nothing), and note it on the
        address, so that an order naming no cart finds it as it finds an email."""
        assert cart.customer.email is not None
        hashed = email_hash(store.salt, cart.customer.email)
        entry = entry_id(store.store_id, flow.name, cart.cart_id)
        day = _day(store, at)
        self.ledger.record_entry(
            MessageRecord(entry, store.store_id, cart.cart_id, flow.name, ENTRY_STEP, group, day, hashed, at)
        )
        noted = {"entry_id": entry, "flow": flow.name, "at": isoformat(at)}
        self.contacts.note_entry(store.store_id, "e#" + hashed, noted, until=at + measurement_window(flow))
        return entry

    def _send(
        self,
        store: Store,
        cart: CartState,
        flow: Flow,
        step: FlowStep,
        now: datetime,
        first_purchase: bool = False,
        entering: bool = False,
    ) -> StepOutcome:
        settings = store.settings
        assert cart.customer.email is not None
        day = _day(store, now)
        hashed = email_hash(store.salt, cart.customer.email)
        variant = variant_for(hashed, flow.name, step.step, step.variants)
        overrides = self.templates.get_templates(store.store_id) if self.templates else None
        renderer = self.renderer.with_overrides(overrides)
        locale = choose_locale(cart.customer.locale, renderer.available_locales(), settings.locale)
        token = issue(
            UnsubscribeToken(store.store_id, hashed, flow.name, step.step, variant, day, locale), store.token_key
        )
        unsubscribe_url = f"{self.public_base_url}/u/{token}"
        key = step_key(flow.name, step.step)
        coupon = (
            choose_code(settings.coupon, self.coupons, store.store_id, f"{cart.cart_id}#{key}", now)
            if step.step == COUPON_STEP
            else None
        )
        # Render before claiming: a template error must leave the step unclaimed and the failure visible.
        rendered = renderer.render(
            flow.name,
            step.step,
            locale,
            build_context(
                settings,
                cart,
                flow.name,
                step.step,
                locale,
                unsubscribe_url,
                now,
                coupon_code=coupon.code if coupon else None,
                catalog=self.catalogs.get_catalog(store.store_id)
                if self.catalogs is not None and step.step == RECOMMENDATION_STEP
                else None,
                first_purchase=first_purchase,
                email_variant=variant,
            ),
        )
        email = OutgoingEmail(
            sender=sender_address(settings.sender_name, settings.sender_email),
            to=cart.customer.email,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            headers={"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            # SES repeats the tags on every event of the message: tracking counts it from them without a read.
            tags={"store": store.store_id, "flow": flow.name, "step": str(step.step), "variant": variant, "day": day},
        )
        email.raw  # noqa: B018 -- built now, so a message that cannot be written fails before the claim
        # A claimed entering step names its entry already: should the send die unrecorded, the step's
        # ``claim_abandoned`` record still leads an order for the cart to the entry.
        entry = entry_id(store.store_id, flow.name, cart.cart_id) if entering else None
        claim = StepRecord(CLAIMED, now, variant, day=day, entry_id=entry)
        if not self.carts.claim_step(store.store_id, cart.cart_id, key, claim):
            return StepOutcome("already_claimed", None, flow.name, step.step)
        # The claim found the cart still open; an unsubscribe or an order by the address may have landed while
        # this step was being decided, so look at the address again now that the step is held.
        blocked, seen = self._blocked(store, cart)
        if blocked:
            decision = Decision(now, "released", flow.name, step.step, blocked)
            self.carts.release_step(store.store_id, cart.cart_id, key, decision)
            return self._stop(cart, flow.name, step.step, blocked)
        # The treated group's entry, as the email is about to go: its measure is the intent to send, so an
        # email SES then refuses or loses still counts for the group, as a held-out one does for its own.
        if entering:
            self._enter(store, cart, flow, TREATED, now)
        try:
            message_id = self.mailer.send(email)
        except SendThrottled:
            decision = Decision(now, "throttled", flow.name, step.step, "ses_throttled", until=now + THROTTLE_BACKOFF)
            self.carts.release_step(store.store_id, cart.cart_id, key, decision)
            self._rearm(cart, flow, step, now, "rearmed", "ses_throttled", now + THROTTLE_BACKOFF)
            return StepOutcome("throttled", "ses_throttled", flow.name, step.step)
        except SendFailed:
            # Not sent, and not the shopper's fault: free the step and fail loudly (errors alarm, the
            # Lambda retries the invocation, then sends it to the scheduler DLQ) instead of skipping silently.
            self.carts.release_step(
                store.store_id, cart.cart_id, key, Decision(now, "failed", flow.name, step.step, "ses_refused_request")
            )
            raise
        except SendRejected:
            self.contacts.suppress(store.store_id, "e#" + hashed, "rejected", now)
            record = StepRecord(SKIPPED, now, variant, day=day, reason="rejected", entry_id=entry)
            self.carts.update_progress(
                store.store_id,
                cart.cart_id,
                timer=None,
                step=(key, record),
                decision=Decision(now, "stopped", flow.name, step.step, "rejected"),
            )
            return StepOutcome("stopped", "rejected", flow.name, step.step)
        except SendOutcomeUnknown:
            # SES has no idempotency key: a retry could send twice. Keep the claim, say so, alarm on it.
            record = StepRecord(UNKNOWN, now, variant, day=day, reason="send_outcome_unknown", entry_id=entry)
            self._advance(
                store,
                cart,
                flow,
                step.step,
                now,
                (key, record),
                Decision(now, "unknown", flow.name, step.step, "send_outcome_unknown"),
            )
            return StepOutcome("unknown", "send_outcome_unknown", flow.name, step.step)

        # The address first: its last email is what the frequency cap reads, so it must hold even if the
        # message's record (a transaction on a shared counter row) fails after SES has taken the email.
        self.contacts.note_sent(
            store.store_id,
            "e#" + hashed,
            {
                "message_id": message_id,
                "flow": flow.name,
                "step": step.step,
                "variant": variant,
                "day": day,
                "sent_at": isoformat(now),
            },
            consent=_cart_statement(cart),
            seen=seen,
        )
        self.ledger.record_sent(
            MessageRecord(
                message_id=message_id,
                store_id=store.store_id,
                cart_id=cart.cart_id,
                flow=flow.name,
                step=step.step,
                variant=variant,
                day=day,
                email_hash=hashed,
                sent_at=now,
            )
        )
        record = StepRecord(SENT, now, variant, message_id=message_id, day=day, entry_id=entry)
        pool_empty = bool(coupon and coupon.pool_empty)
        reason = "coupon_pool_empty" if pool_empty else None
        self._advance(
            store, cart, flow, step.step, now, (key, record), Decision(now, "sent", flow.name, step.step, reason)
        )
        return StepOutcome("sent", None, flow.name, step.step, message_id, coupon_pool_empty=pool_empty)

    def _abandoned(self, store: Store, cart: CartState, flow: Flow, fired: int, claim: StepRecord) -> StepOutcome:
        """The claim's send died before recording its outcome. Like any unknown outcome: mark it, alarm on it
        (the handler counts ``unknown``), never send it again, and go on with the flow. Without this the
        cart's timer would stay on the claimed step and every later firing of it would change nothing."""
        now = self.clock.now()
        record = dataclasses.replace(claim, status=UNKNOWN, at=now, reason="claim_abandoned")
        decision = Decision(now, "unknown", flow.name, fired, "claim_abandoned")
        outcome = (step_key(flow.name, fired), record)
        if cart.is_open:
            self._advance(store, cart, flow, fired, now, outcome, decision)
        else:
            self.carts.update_progress(store.store_id, cart.cart_id, decision=decision, timer=None, step=outcome)
        return StepOutcome("unknown", "claim_abandoned", flow.name, fired)

    def _advance(
        self,
        store: Store,
        cart: CartState,
        flow: Flow,
        step: int,
        now: datetime,
        outcome: tuple[str, StepRecord],
        decision: Decision,
    ) -> None:
        """Record step ``step``'s outcome and arm the following step, if any, in one write."""
        following = flow.after(step)
        timer = timer_for(cart, flow, following, now) if following else None
        self.carts.update_progress(store.store_id, cart.cart_id, decision=decision, timer=timer, step=outcome)
        if timer is not None and following is not None:
            self.schedules.arm(timer, schedule_payload(cart, flow.name, following.step))

    def _rearm(
        self, cart: CartState, flow: Flow, step: FlowStep, now: datetime, action: str, reason: str, when: datetime
    ) -> StepOutcome:
        timer = timer_for(cart, flow, step, now, not_before=when)
        if not self.carts.update_progress(
            cart.store_id,
            cart.cart_id,
            timer=timer,
            decision=Decision(now, action, flow.name, step.step, reason, timer.due_at),
            # Several deliveries of one firing run at once. One that read the cart just before another claimed
            # the step, and then its address record just after that one sent (the frequency cap: "deferred"),
            # would set the timer back to the sent step over the next step's, and log a deferral of an email
            # that went out. The step must still be undecided, or this delivery lost the race.
            undecided=step_key(flow.name, step.step),
        ):
            return StepOutcome("already_claimed", None, flow.name, step.step)
        self.schedules.arm(timer, schedule_payload(cart, flow.name, step.step))
        return StepOutcome(action, reason, flow.name, step.step)

    def _stop(self, cart: CartState, flow: str, step: int | None, reason: str) -> StepOutcome:
        """Nothing more for this cart until new activity re-arms it (or ever, once it is closed)."""
        self.carts.update_progress(
            cart.store_id, cart.cart_id, timer=None, decision=Decision(self.clock.now(), "skipped", flow, step, reason)
        )
        return StepOutcome("skipped", reason, flow, step)


def _cart_statement(cart: CartState) -> ConsentStatement | None:
    """The checkout's consent an email goes out with: kept as proof by the write that records the email."""
    consent = cart.customer.consent
    if consent is None or consent.at is None:
        return None
    return ConsentStatement(consent.granted, consent.at, consent.source, f"cart:{cart.cart_id}")


def _consent_granted(cart: CartState, record: ContactRecord | None) -> bool:
    """The newest consent signal wins: the cart's own (from checkout) or the address's latest record
    (withdrawal, unsubscribe, or a later change). No signal at all means no marketing email."""
    signals = [c for c in (cart.customer.consent, record.consent if record else None) if c is not None]
    if not signals:
        return False
    newest = max(signals, key=lambda c: c.at or datetime.min.replace(tzinfo=UTC))
    return newest.granted


def planned_at(cart: CartState, flow: str, step: FlowStep) -> datetime:
    """When the step was meant to go: its due time, or later if its timer stands for a later time. The timer
    carries every later plan the system made: the end of a deferral it chose (quiet hours, closed days, the
    frequency cap: ``_rearm`` arms the timer for it), and a delay the store shortened after the timer was
    armed (the new delay counts, not as lateness). The late limit counts from here, so a deferral or a
    settings change never turns into a skip; an outage or a late event still does (their timers keep the
    old plan, ``Timer.planned_at``)."""
    planned = due_at(cart, step)
    timer = cart.timer
    if timer is not None and (timer.flow, timer.step) == (flow, step.step):
        planned = max(planned, timer.meant_for)
    return planned


def _entering(cart: CartState, flow: str) -> bool:
    """Whether this step would be the cart's first email of the flow: no step of it sent, claimed or unsure
    (steps skipped as too late do not count), and no entry recorded. Only then is a group drawn: a cart that
    had an email before its store set a holdout stays treated."""
    return not any(r.status != SKIPPED or r.entry_id for r in cart.flow_records(flow))


def _group(store: Store, cart: CartState, flow: Flow) -> str:
    assert cart.customer.email is not None
    return group_for(email_hash(store.salt, cart.customer.email), flow.name, store.settings.holdout_percent)


def _day(store: Store, at: datetime) -> str:
    """The report day (the store's calendar) an email or entry counts in."""
    return at.astimezone(store.settings.zone).date().isoformat()


def _last_sent_at(record: ContactRecord | None) -> datetime | None:
    sent_at = (record.last_message or {}).get("sent_at") if record else None
    return parse_rfc3339(str(sent_at)) if sent_at else None


def _zone(cart: CartState, store: Store) -> ZoneInfo:
    return ZoneInfo(cart.customer.timezone) if cart.customer.timezone else store.settings.zone


def _with_step(cart: CartState, flow: str, step: int, record: StepRecord) -> CartState:
    return dataclasses.replace(cart, steps={**cart.steps, step_key(flow, step): record})
