"""The event log in DynamoDB: a webhook id is recorded once per store (the dedupe of redeliveries), with a
TTL past the senders' retry window, and erasure removes a store's events for the given carts only."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from cartrecovery.adapters.events import DynamoEventLog
from cartrecovery.wiring import Services

if TYPE_CHECKING:
    from conftest import Deployment


@pytest.fixture
def events(svc: Services) -> DynamoEventLog:
    return svc.events


def test_a_webhook_id_is_recorded_once_per_store(events: DynamoEventLog, deployment: Deployment) -> None:
    expires = deployment.start + timedelta(days=8)
    first = {"type": "cart.updated", "cart_id": "c-1", "fingerprint": "f1"}

    assert events.record("tea-shop", "evt_1", first, expires) is True
    assert events.record("tea-shop", "evt_1", {"type": "order.placed", "fingerprint": "f2"}, expires) is False
    assert events.record("other-shop", "evt_1", first, expires) is True  # ids are the sender's, per store

    assert events.get("tea-shop", "evt_1") == {
        **first,
        "store_id": "tea-shop",
        "event_id": "evt_1",
        "expires_at": int(expires.timestamp()),
    }
    assert events.get("tea-shop", "evt_2") is None


def test_erasing_carts_deletes_only_their_events(events: DynamoEventLog, deployment: Deployment) -> None:
    expires = deployment.start + timedelta(days=8)
    events.record("tea-shop", "evt_1", {"type": "cart.updated", "cart_id": "c-1"}, expires)
    events.record("tea-shop", "evt_2", {"type": "cart.updated", "cart_id": "c-1"}, expires)
    events.record("tea-shop", "evt_3", {"type": "cart.updated", "cart_id": "c-2"}, expires)
    events.record("tea-shop", "evt_4", {"type": "customer.unsubscribed"}, expires)
    events.record("other-shop", "evt_5", {"type": "cart.updated", "cart_id": "c-1"}, expires)

    assert events.delete_for_carts("tea-shop", set()) == 0
    assert events.delete_for_carts("tea-shop", {"c-1"}) == 2

    assert events.get("tea-shop", "evt_1") is None and events.get("tea-shop", "evt_2") is None
    assert events.get("tea-shop", "evt_3") is not None
    assert events.get("tea-shop", "evt_4") is not None
    assert events.get("other-shop", "evt_5") is not None
