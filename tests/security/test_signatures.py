"""Who may post events: Standard Webhooks v1 signatures, their time window, secret rotation and revocation,
and replays (CONTRACT §1, REFERENCE "Signing").

The first tests run the real receive path (``receive_event``) over an in-memory store, with the wall clock
passed in; the last ones go over HTTP to the local stack and the operator CLI."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cartrecovery.clock import ManualClock
from cartrecovery.domain.store import Legal, Store, StoreSettings
from cartrecovery.signing import SignatureRejected, sign, sign_shopify, verify
from cartrecovery.usecases.ingest import IngestResult
from cartrecovery.usecases.receive import Rejected, receive_event
from cartrecovery.usecases.stores import new_store, revoke_secrets, rotate_secret

# The published Standard Webhooks test vector (REFERENCE.md).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
EVENT = json.dumps(
    {
        "type": "customer.unsubscribed",
        "occurred_at": "2026-12-01T10:00:00+09:00",
        "customer": {"email": "taro@example.jp"},
    }
).encode()


class MemoryStores:
    def __init__(self) -> None:
        self.items: dict[str, Store] = {}

    def get(self, store_id: str) -> Store | None:
        return self.items.get(store_id)

    def create(self, store: Store) -> None:
        self.items[store.store_id] = store

    def save(self, store: Store) -> None:
        self.items[store.store_id] = store

    def list_ids(self) -> list[str]:
        return sorted(self.items)


class RecordingIngest:
    """Stands in for ingestion: what got past authentication and validation."""

    def __init__(self, now: datetime) -> None:
        self.accepted: list[str] = []
        self.clock = ManualClock(now)  # business time, which an event may not be dated far ahead of

    def __call__(self, store: Store, event_id: str, event: Any, fingerprint: str = "") -> IngestResult:
        self.accepted.append(event_id)
        return IngestResult("accepted", event_id)


def make_store(secret: str = VECTOR_SECRET) -> tuple[MemoryStores, Store]:
    stores = MemoryStores()
    settings = StoreSettings(
        store_id="shop-1", name="Shop", sender_email="shop@example.jp", legal=Legal("Shop K.K.", "Tokyo", "x@y.jp")
    )
    store = new_store(settings, NOW, webhook_secret=secret)
    stores.create(store)
    return stores, store


def deliver(
    stores: MemoryStores, secret: str | list[str], *, sent_at: float, received_at: float, body: bytes = EVENT
) -> RecordingIngest:
    """Sign ``body`` at ``sent_at`` (with one or several secrets) and receive it at ``received_at``."""
    ingest = RecordingIngest(datetime.fromtimestamp(received_at, UTC))
    event_id = f"evt_{uuid.uuid4().hex}"
    secrets = [secret] if isinstance(secret, str) else secret
    headers = {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(sent_at)),
        "webhook-signature": " ".join(sign(s, event_id, int(sent_at), body) for s in secrets),
    }
    receive_event(stores, ingest, "shop-1", headers, body, received_at)  # type: ignore[arg-type]
    assert ingest.accepted == [event_id]
    return ingest


def rejected(stores: MemoryStores, secret: str | list[str], *, sent_at: float, received_at: float) -> Rejected:
    with pytest.raises(Rejected) as caught:
        deliver(stores, secret, sent_at=sent_at, received_at=received_at)
    return caught.value


def test_the_published_standard_webhooks_vector_verifies() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    verify([VECTOR_SECRET], VECTOR_ID, str(VECTOR_TIMESTAMP), VECTOR_SIGNATURE, VECTOR_BODY, VECTOR_TIMESTAMP)
    # One of several listed signatures (rotation) is enough; any changed byte is not.
    verify([VECTOR_SECRET], VECTOR_ID, str(VECTOR_TIMESTAMP), "v1,AAAA " + VECTOR_SIGNATURE, VECTOR_BODY, 1614265330)
    for body, msg_id in ((b'{"test": 2432232315}', VECTOR_ID), (VECTOR_BODY, VECTOR_ID + "x")):
        with pytest.raises(SignatureRejected):
            verify([VECTOR_SECRET], msg_id, str(VECTOR_TIMESTAMP), VECTOR_SIGNATURE, body, VECTOR_TIMESTAMP)


@pytest.mark.parametrize("skew", [-299, -300, 0, 299, 300])
def test_timestamps_within_five_minutes_either_way_pass(skew: int) -> None:
    stores, _ = make_store()
    now = NOW.timestamp()
    deliver(stores, VECTOR_SECRET, sent_at=now + skew, received_at=now)


@pytest.mark.parametrize("skew", [-301, 301, -86400, 10**9])
def test_timestamps_past_five_minutes_either_way_are_401(skew: int) -> None:
    stores, _ = make_store()
    now = NOW.timestamp()
    error = rejected(stores, VECTOR_SECRET, sent_at=now + skew, received_at=now)
    assert error.status == 401
    # One answer for every authentication failure: no oracle telling "stale" from "wrong key".
    wrong_key = rejected(stores, "whsec_" + "A" * 32, sent_at=now, received_at=now)
    assert (wrong_key.status, wrong_key.title, wrong_key.detail) == (error.status, error.title, error.detail)


def test_both_secrets_work_during_a_rotation_and_the_old_one_stops_at_expiry() -> None:
    stores, _ = make_store()
    clock = ManualClock(NOW)
    new_secret = rotate_secret(stores, "shop-1", clock, overlap=timedelta(hours=24))
    assert new_secret != VECTOR_SECRET

    during = (NOW + timedelta(hours=23, minutes=59)).timestamp()
    deliver(stores, VECTOR_SECRET, sent_at=during, received_at=during)
    deliver(stores, new_secret, sent_at=during, received_at=during)
    deliver(stores, [VECTOR_SECRET, new_secret], sent_at=during, received_at=during)

    after = (NOW + timedelta(hours=24, seconds=1)).timestamp()
    assert rejected(stores, VECTOR_SECRET, sent_at=after, received_at=after).status == 401
    deliver(stores, new_secret, sent_at=after, received_at=after)
    deliver(stores, [VECTOR_SECRET, new_secret], sent_at=after, received_at=after)


def test_revoking_ends_the_old_secret_before_its_overlap_is_over() -> None:
    # Rotated in the same second as the store was created: the secret just printed is the one kept.
    stores, _ = make_store()
    clock = ManualClock(NOW)
    new_secret = rotate_secret(stores, "shop-1", clock, overlap=timedelta(hours=24))
    assert revoke_secrets(stores, "shop-1", clock) == 1
    now = NOW.timestamp() + 1
    assert rejected(stores, VECTOR_SECRET, sent_at=now, received_at=now).status == 401
    deliver(stores, new_secret, sent_at=now, received_at=now)


# ---- over HTTP: the local stack and the operator CLI ----


def test_cli_revoke_secret_takes_effect_on_the_next_request(
    local_stack: Any, cli: Callable[..., subprocess.CompletedProcess[str]], new_store: Callable[[], Any]
) -> None:
    store = new_store()
    body = local_stack.cart_event(local_stack.new_id(), local_stack.unique_email(), local_stack.now(), consent=False)

    rotated = cli("store", "rotate-secret", "--id", store.store_id, "--overlap-hours", "24")
    fresh = next(w for w in rotated.stdout.split() if w.startswith("whsec_"))
    assert local_stack.post_event(body, secret=store.secret, store=store.store_id)[0] == 202
    assert local_stack.post_event(body, secret=fresh, store=store.store_id)[0] == 202

    cli("store", "revoke-secret", "--id", store.store_id)

    status, answer = local_stack.post_event(body, secret=store.secret, store=store.store_id)
    assert status == 401, answer
    assert local_stack.post_event(body, secret=fresh, store=store.store_id)[0] == 202


def test_a_replayed_delivery_is_a_duplicate_not_a_new_event(local_stack: Any) -> None:
    stack = local_stack
    # Standard Webhooks: a retry carries the same id (and a fresh timestamp and signature).
    event = stack.cart_event(stack.new_id(), stack.unique_email(), stack.now(), consent=False)
    event_id = stack.new_id("evt")
    assert stack.post_event(event, event_id=event_id) == (202, {"status": "accepted", "event_id": event_id})
    for _ in range(3):
        assert stack.post_event(event, event_id=event_id) == (200, {"status": "duplicate"})


def test_a_replayed_shopify_webhook_is_a_duplicate_not_a_new_event(
    local_stack: Any, dynamodb: Any, tables: Any
) -> None:
    stack = local_stack
    token = uuid.uuid4().hex
    now = stack.now().isoformat()
    checkout = {
        "id": 1000 + uuid.uuid4().int % 10**9,
        "token": token,
        "email": stack.unique_email(),
        "buyer_accepts_marketing": False,
        "created_at": now,
        "updated_at": now,
        "currency": "JPY",
        "line_items": [{"sku": "TEA-001", "title": "抹茶ラテ", "quantity": 1, "price": "1280"}],
        "total_price": "1280",
        "abandoned_checkout_url": f"https://shop.example.jp/checkouts/{token}/recover",
    }
    raw = json.dumps(checkout, ensure_ascii=False).encode()
    webhook_id = str(uuid.uuid4())

    assert stack.post_shopify(raw, "checkouts/create", webhook_id=webhook_id)[0] == 202
    for _ in range(2):
        assert stack.post_shopify(raw, "checkouts/create", webhook_id=webhook_id) == (200, {"status": "duplicate"})
    # A forged replay (same id, body signed with another key) is not even a duplicate: it is not authentic.
    forged = sign_shopify("not-the-shop-secret", raw)
    answer = stack.request(
        "POST",
        "/v1/stores/demo/shopify",
        raw,
        {
            "content-type": "application/json",
            "x-shopify-topic": "checkouts/create",
            "x-shopify-hmac-sha256": forged,
            "x-shopify-webhook-id": webhook_id,
        },
    )
    assert answer.status == 401

    recorded = dynamodb.query(
        TableName=tables["events"],
        KeyConditionExpression="store_id = :s AND event_id = :e",
        ExpressionAttributeValues={":s": {"S": "demo"}, ":e": {"S": f"shopify:{webhook_id}"}},
    )["Items"]
    assert len(recorded) == 1
    assert [c["cart_id"] for c in stack.carts() if c["cart_id"] == token] == [token]
