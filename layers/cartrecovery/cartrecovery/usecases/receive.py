"""The checks every inbound delivery passes, in order: size, media type, store and signature (over the
raw bytes, before any parsing), then the body's schema. Each failure is a ``Rejected`` with its status."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cartrecovery.domain.events import Event, FieldError, InvalidEvent, decode_json, parse_event
from cartrecovery.domain.shopify import to_event_body, without_unfit
from cartrecovery.domain.store import STORE_ID, Store
from cartrecovery.ports import StoreCache, StoreRepository
from cartrecovery.signing import MAX_WEBHOOK_ID, SignatureRejected, verify, verify_shopify
from cartrecovery.usecases.ingest import IngestEvent, IngestResult

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
SHOPIFY_ID_PREFIX = "shopify:"  # the event log's id of a Shopify delivery: this, then X-Shopify-Webhook-Id
UNAUTHORIZED_DETAIL = "The request could not be authenticated for this store."
MAX_AHEAD = timedelta(hours=24)  # senders' clocks drift; days ahead is a bug, not drift
AHEAD = "is more than 24 hours ahead of the receiver's clock"


@dataclass
class Rejected(Exception):
    status: int
    title: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)


def _check_transport(headers: Mapping[str, str], body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise Rejected(413, "Payload Too Large", f"The body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}.")
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise Rejected(415, "Unsupported Media Type", "Send the event as Content-Type: application/json.")


def _authentic(stores: StoreRepository, store_id: str, verify_with: Callable[[Store], None]) -> Store:
    """The store, once ``verify_with`` accepts the request's signature with its secrets; else 401.

    A cached store may predate a rotation, whose new secret must work at once: before refusing, the store
    is read again past the cache. (A 401 then costs two reads; an accepted request with a warm cache, none.)"""
    store = stores.get(store_id) if STORE_ID.match(store_id) else None
    if store is not None and _accepts(verify_with, store):
        return store
    fresh = stores.refresh(store_id) if store is not None and isinstance(stores, StoreCache) else None
    if fresh is not None and fresh != store and _accepts(verify_with, fresh):
        return fresh
    raise Rejected(401, "Unauthorized", UNAUTHORIZED_DETAIL)


def _accepts(verify_with: Callable[[Store], None], store: Store) -> bool:
    try:
        verify_with(store)
    except SignatureRejected:
        return False
    return True


def _invalid(exc: InvalidEvent) -> Rejected:
    return Rejected(400, "Invalid event", "The event body has invalid fields; see errors.", exc.errors)


def receive_event(
    stores: StoreRepository,
    ingest: IngestEvent,
    store_id: str,
    headers: Mapping[str, str],
    body: bytes,
    wall_clock: float,
) -> IngestResult:
    """A Standard Webhooks delivery to ``POST /v1/stores/{store_id}/events``."""
    _check_transport(headers, body)
    event_id = headers.get("webhook-id")
    store = _authentic(
        stores,
        store_id,
        lambda store: verify(
            store.webhook_secrets_in_force(datetime.fromtimestamp(wall_clock, UTC)),
            event_id,
            headers.get("webhook-timestamp"),
            headers.get("webhook-signature"),
            body,
            wall_clock,
        ),
    )
    assert event_id is not None
    if event_id.startswith(SHOPIFY_ID_PREFIX):
        # The event log dedupes both routes in one key space, where the Shopify route's ids carry this prefix:
        # an event sent under such an id would make Shopify's own delivery of that id read as a duplicate.
        raise Rejected(
            400,
            "Invalid webhook",
            f"webhook-id must not start with {SHOPIFY_ID_PREFIX!r}, kept for the Shopify route's deliveries.",
            [FieldError("headers.webhook-id", f"must not start with {SHOPIFY_ID_PREFIX!r}")],
        )
    try:
        event = _as_received(parse_event(decode_json(body)), ingest.clock.now())
    except InvalidEvent as exc:
        raise _invalid(exc) from exc
    return ingest(store, event_id, event, _fingerprint(body))


def receive_shopify(
    stores: StoreRepository,
    ingest: IngestEvent,
    store_id: str,
    headers: Mapping[str, str],
    body: bytes,
    wall_clock: float,
) -> IngestResult | None:
    """A Shopify webhook delivered as-is; None when its topic is not one we act on."""
    _check_transport(headers, body)
    store = _authentic(
        stores,
        store_id,
        lambda store: verify_shopify(
            store.shopify_secrets_in_force(datetime.fromtimestamp(wall_clock, UTC)),
            headers.get("x-shopify-hmac-sha256"),
            body,
        ),
    )
    webhook_id = headers.get("x-shopify-webhook-id") or headers.get("x-shopify-event-id")
    topic = headers.get("x-shopify-topic", "")
    if not webhook_id:
        raise Rejected(
            400,
            "Invalid webhook",
            "X-Shopify-Webhook-Id is required.",
            [FieldError("headers.x-shopify-webhook-id", "is required")],
        )
    # Shopify's ids are UUIDs. A much longer one, prefixed, could pass the event log's 1,024-byte key limit,
    # which DynamoDB refuses with a validation error: a 503 that Shopify would retry in vain, not a 400.
    if len(webhook_id.encode("utf-8", "replace")) > MAX_WEBHOOK_ID:
        raise Rejected(
            400,
            "Invalid webhook",
            f"X-Shopify-Webhook-Id must be at most {MAX_WEBHOOK_ID} bytes.",
            [FieldError("headers.x-shopify-webhook-id", f"must be at most {MAX_WEBHOOK_ID} bytes")],
        )
    try:
        payload: Any = decode_json(body)  # as the event route: exact decimals, and no NaN or Infinity
        mapped = to_event_body(
            topic, payload, headers.get("x-shopify-shop-domain"), headers.get("x-shopify-triggered-at")
        )
        if mapped is None or not _matchable(mapped):
            return None  # not ours to act on: acknowledge, or Shopify retries and finally drops the webhook
        event = _as_received(_parse_mended(mapped), ingest.clock.now())
    except InvalidEvent as exc:
        raise _invalid(exc) from exc
    return ingest(store, SHOPIFY_ID_PREFIX + webhook_id, event, _fingerprint(body))


def _parse_mended(body: dict[str, Any]) -> Event:
    """A mapped Shopify delivery as an event, taken without the parts v1 cannot hold (``without_unfit``).
    Items past the limit hide the items' own errors until they are cut, so it may take a second pass."""
    for _ in range(3):
        try:
            return parse_event(body)
        except InvalidEvent as exc:
            body, dropped = without_unfit(body, exc.errors)
            if not dropped:
                raise
            # Paths only, never values: an unfit field may be an address.
            log.warning("shopify delivery taken without fields v1 cannot hold: %s", ", ".join(dropped))
    return parse_event(body)


def _as_received(event: Event, now: datetime) -> Event:
    """Refuse an event from the future, and date its consent statement no later than its arrival.

    Ordered by ``occurred_at``, one event from a sender with a wrong clock would make every genuine later
    event look stale and push the cart's timer out by years. Consent is different: the newest statement
    wins, and an unsubscribe is dated by this receiver's clock, so an opt-in dated ahead by the sender's
    clock (even within the day of drift allowed) would outrank the shopper's later unsubscribe and the
    emails would go on. A statement cannot have been made after it arrived: it is dated ``now`` at most.
    (A statement without ``at`` is dated by ``occurred_at``, so that is where the bound applies then.)"""
    errors = [FieldError("occurred_at", AHEAD)] if event.occurred_at > now + MAX_AHEAD else []
    customer = event.customer
    consent = customer.consent if customer is not None else None
    if consent is not None and consent.at is not None and consent.at > now + MAX_AHEAD:
        errors.append(FieldError("customer.marketing_consent.at", AHEAD))
    if errors:
        raise InvalidEvent(errors)
    if customer is None or consent is None or (consent.at or event.occurred_at) <= now:
        return event
    stated = dataclasses.replace(consent, at=now)
    return dataclasses.replace(event, customer=dataclasses.replace(customer, consent=stated))


def _matchable(body: dict[str, Any]) -> bool:
    """An order with neither a checkout nor a customer cannot stop or convert anything."""
    if body.get("type") != "order.placed":
        return True
    customer = body.get("customer") or {}
    return bool((body.get("order") or {}).get("cart_id") or customer.get("email") or customer.get("id"))


def _fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]
