"""What a store knows of an address, in DynamoDB: the newest consent wins, an unsubscribe is counted once
and never undone by a stale consent, the first suppression reason stays, and erasure keeps only the stops
and the consent proof."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from cartrecovery.adapters.contacts import DynamoContactBook
from cartrecovery.domain.events import Consent
from cartrecovery.ports import ConsentStatement, ContactRecord
from cartrecovery.wiring import Services

if TYPE_CHECKING:
    from conftest import Deployment

KEY = "e#" + "a" * 40


@pytest.fixture
def contacts(svc: Services) -> DynamoContactBook:
    return svc.contacts


def record(contacts: DynamoContactBook, key: str = KEY, store_id: str = "tea-shop") -> ContactRecord | None:
    return contacts.get_many(store_id, [key]).get(key)


def test_nothing_is_known_of_a_new_address(contacts: DynamoContactBook) -> None:
    assert contacts.get_many("tea-shop", []) == {}
    assert contacts.get_many("tea-shop", [KEY, "c#" + "b" * 40]) == {}


def test_the_newest_consent_statement_wins_whatever_the_arrival_order(
    contacts: DynamoContactBook, deployment: Deployment
) -> None:
    t0 = deployment.start
    contacts.record_consent("tea-shop", KEY, Consent(True, t0, "checkout-form"))
    contacts.record_consent("tea-shop", KEY, Consent(False, t0 + timedelta(days=2), "account-settings"))
    contacts.record_consent("tea-shop", KEY, Consent(True, t0 + timedelta(days=1), "late-delivery"))  # older

    found = record(contacts)
    assert found is not None
    assert found.consent == Consent(False, t0 + timedelta(days=2), "account-settings")
    assert record(contacts, store_id="other-shop") is None  # per store


def test_an_unsubscribe_counts_once_and_a_stale_consent_does_not_undo_it(
    contacts: DynamoContactBook, deployment: Deployment
) -> None:
    t0 = deployment.start
    contacts.record_consent("tea-shop", KEY, Consent(True, t0, "checkout-form"))

    assert contacts.unsubscribe("tea-shop", KEY, t0 + timedelta(hours=1), "one-click") is True
    assert contacts.unsubscribe("tea-shop", KEY, t0 + timedelta(hours=2), "store") is False
    contacts.record_consent("tea-shop", KEY, Consent(True, t0 + timedelta(minutes=30), "checkout-form"))

    found = record(contacts)
    assert found is not None
    assert found.unsubscribed_at == t0 + timedelta(hours=1)
    assert found.consent == Consent(False, t0 + timedelta(hours=2), "store")

    # A later, explicit opt-in is newer than the withdrawal and is kept (the send rule weighs the two).
    contacts.record_consent("tea-shop", KEY, Consent(True, t0 + timedelta(days=3), "newsletter-form"))
    found = record(contacts)
    assert found is not None and found.consent is not None and found.consent.granted


def test_an_unsubscribe_after_a_withdrawal_in_the_shop_is_not_counted(
    contacts: DynamoContactBook, deployment: Deployment
) -> None:
    t0 = deployment.start
    contacts.record_consent("tea-shop", KEY, Consent(True, t0, "checkout-form"))
    contacts.record_consent("tea-shop", KEY, Consent(False, t0 + timedelta(hours=1), "account-settings"))

    # The link in an earlier email, used after the shopper had already opted out in the shop.
    assert contacts.unsubscribe("tea-shop", KEY, t0 + timedelta(hours=2), "one-click") is False
    assert contacts.unsubscribe("tea-shop", KEY, t0 + timedelta(hours=3), "one-click") is False

    found = record(contacts)
    assert found is not None
    assert found.unsubscribed_at == t0 + timedelta(hours=2)  # the skip reason still names the unsubscribe


def test_the_first_suppression_reason_stays(contacts: DynamoContactBook, deployment: Deployment) -> None:
    contacts.suppress("tea-shop", KEY, "bounced", deployment.start)
    contacts.suppress("tea-shop", KEY, "complained", deployment.start + timedelta(days=1))

    found = record(contacts)
    assert found is not None and found.suppressed_reason == "bounced"


def test_orders_keep_the_latest_and_the_last_message_is_remembered(
    contacts: DynamoContactBook, deployment: Deployment
) -> None:
    t0 = deployment.start
    contacts.record_order("tea-shop", KEY, t0 + timedelta(days=2))
    contacts.record_order("tea-shop", KEY, t0)  # an older order delivered late
    last = {"message_id": "m-1", "flow": "cart_recovery", "step": 1, "variant": "a", "day": "2026-12-01"}
    contacts.note_sent("tea-shop", KEY, {**last, "sent_at": "2026-12-01T01:00:00Z"})

    found = record(contacts)
    assert found is not None
    assert found.last_order_at == t0 + timedelta(days=2)
    assert found.last_message == {**last, "sent_at": "2026-12-01T01:00:00Z"}


def test_the_emails_before_the_last_are_kept_newest_first_up_to_three(
    contacts: DynamoContactBook, deployment: Deployment
) -> None:
    consent = ConsentStatement(True, deployment.start, "checkout-form", "evt_1")
    for n in range(1, 6):
        seen = record(contacts)
        sent = {"message_id": f"m-{n}", "flow": "cart_recovery", "step": 1, "variant": "a", "day": "2026-12-01"}
        # The first email also writes the consent proof (the statement it was sent on), the others do not.
        contacts.note_sent("tea-shop", KEY, {**sent, "sent_at": f"2026-12-0{n}T01:00:00Z"}, consent, seen)
        found = record(contacts)
        assert found is not None and found.last_message is not None
        assert found.last_message["message_id"] == f"m-{n}"
        assert [m["message_id"] for m in found.earlier_messages] == [f"m-{k}" for k in range(n - 1, 0, -1)][:3]
    assert found.earlier_messages[0] == {"message_id": "m-4", "sent_at": "2026-12-04T01:00:00Z"}
    # A retried send notes its email again: nothing moves into the earlier ones.
    contacts.note_sent("tea-shop", KEY, found.last_message, None, found)
    assert record(contacts).earlier_messages == found.earlier_messages  # type: ignore[union-attr]
    assert found.history == (consent,)

    contacts.erase("tea-shop", KEY)
    assert record(contacts).earlier_messages == ()  # type: ignore[union-attr]


def test_erasure_keeps_the_stops_and_the_consent_proof_and_forgets_the_rest(
    contacts: DynamoContactBook, deployment: Deployment
) -> None:
    other = "e#" + "c" * 40
    sent = {"message_id": "m-1", "flow": "cart_recovery", "step": 1, "variant": "a", "day": "2026-12-01"}
    for key in (KEY, other):
        contacts.record_consent("tea-shop", key, Consent(True, deployment.start, "checkout-form"), event="evt_1")
        contacts.record_order("tea-shop", key, deployment.start)
        contacts.note_sent("tea-shop", key, {**sent, "sent_at": "2026-12-01T01:00:00Z"})
    contacts.suppress("tea-shop", KEY, "complained", deployment.start)
    contacts.unsubscribe("tea-shop", other, deployment.start + timedelta(days=1), "one-click")

    contacts.erase("tea-shop", KEY)
    contacts.erase("tea-shop", other)

    found = contacts.get_many("tea-shop", [KEY, other])
    statement = ConsentStatement(True, deployment.start, "checkout-form", "evt_1")
    assert found[KEY].suppressed_reason == "complained"
    assert found[other].opted_out == ConsentStatement(False, deployment.start + timedelta(days=1), "one-click")
    for record in found.values():
        assert (record.last_order_at, record.last_message) == (None, None)  # forgotten
        assert record.history[-1] == statement  # the proof stays, with its expiry
        assert record.proof_expires_at == datetime(2029, 12, 1, 1, tzinfo=UTC)


def test_a_flow_entry_is_kept_until_its_window_ends_unless_the_proof_keeps_it_longer(
    contacts: DynamoContactBook, deployment: Deployment
) -> None:
    t0 = deployment.start
    entry = {"entry_id": "entry#tea-shop#1", "flow": "cart_recovery", "at": "2026-12-01T01:00:00Z"}
    contacts.note_entry("tea-shop", KEY, entry, until=t0 + timedelta(days=14))

    found = record(contacts)
    assert found is not None and found.last_entry == entry
    assert found.proof_expires_at == (t0 + timedelta(days=14)).astimezone(UTC)  # a held-out shopper's only item
    assert found.last_message is None and found.consent is None

    other = "e#" + "b" * 40
    contacts.note_sent("tea-shop", other, {"message_id": "m-1", "sent_at": "2026-12-01T01:00:00Z"})
    contacts.note_entry("tea-shop", other, entry, until=t0 + timedelta(days=14))
    kept = record(contacts, other)
    assert kept is not None and kept.last_entry == entry and kept.last_message is not None
    assert kept.proof_expires_at is not None and kept.proof_expires_at.year == 2029  # the proof's three years

    contacts.erase("tea-shop", KEY)
    assert record(contacts) is None  # nothing but the entry was known: nothing is left
