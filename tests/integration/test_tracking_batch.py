"""The tracking function given SQS batches of several SES events, as SQS hands them over at volume: the batch
is counted in one DynamoDB transaction, and counted one record at a time whenever that transaction cannot be
made, with the same counts, retries and suppressions either way."""

from __future__ import annotations

from typing import Any

import pytest
from test_handlers import (  # the handler tests' stack and SES events
    SHOPPER,
    Stack,
    contact,
    counters,
    env,
    send_step_one,
    ses_record,
    sqs_ses_event,
)

from cartrecovery.identity import email_hash
from cartrecovery.ports import MessageRecord

__all__ = ["env"]  # a fixture, used by name

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

AT = "2026-12-01T05:00:05.000Z"


def record_messages(env: Stack, day: str, *message_ids: str) -> None:
    for message_id in message_ids:
        env.svc.ledger.record_sent(
            MessageRecord(
                message_id=message_id,
                store_id="tea-shop",
                cart_id="c-" + message_id,
                flow="cart_recovery",
                step=1,
                variant="a",
                day=day,
                email_hash=email_hash(env.store.salt, SHOPPER),
                sent_at=env.clock.now(),
            )
        )


def ses(event_type: str, message_id: str, day: str = "2026-12-01", **block: Any) -> dict[str, Any]:
    record = ses_record(event_type, message_id, AT, **block)
    record["mail"]["tags"]["day"] = [day]
    return record


def dynamodb_calls(env: Stack) -> list[str]:
    calls: list[str] = []
    env.svc.dynamodb.meta.events.register("after-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls


def stored(env: Stack, message_id: str) -> dict[str, Any]:
    item = env.svc.dynamodb.get_item(TableName=env.svc.settings.messages_table, Key={"message_id": {"S": message_id}})
    return {k: v for k, v in item["Item"].items() if k not in ("message_id", "cart_id", "day")}


def ten_events(day: str, m1: str, m2: str, m3: str) -> list[dict[str, Any]]:
    """Deliveries of three messages, their opens (one opened twice in the batch, one opened before it), clicks."""
    return [
        ses("Delivery", m1, day),
        ses("Delivery", m2, day),
        ses("Delivery", m3, day),
        ses("Open", m1, day),
        ses("Open", m2, day),
        ses("Open", m1, day),
        ses("Open", m3, day),
        ses("Click", m1, day, link="https://shop.example.jp/cart"),
        ses("Open", m2, day),
        ses("Click", m2, day, link="https://shop.example.jp/tea"),
    ]


def test_a_batch_is_counted_in_one_transaction_as_one_record_at_a_time_would_count_it(env: Stack) -> None:
    # The same events twice: one record per invocation on one day's messages, one batch on the next day's.
    record_messages(env, "2026-12-01", "a-1", "a-2", "a-3")
    record_messages(env, "2026-12-02", "b-1", "b-2", "b-3")
    for day, m3 in (("2026-12-01", "a-3"), ("2026-12-02", "b-3")):  # opened before the batch
        assert env.handlers.invoke("tracking", sqs_ses_event(ses("Open", m3, day))) == {"batchItemFailures": []}
    for detail in ten_events("2026-12-01", "a-1", "a-2", "a-3"):
        assert env.handlers.invoke("tracking", sqs_ses_event(detail)) == {"batchItemFailures": []}
    calls = dynamodb_calls(env)

    result = env.handlers.invoke("tracking", sqs_ses_event(*ten_events("2026-12-02", "b-1", "b-2", "b-3")))

    assert result == {"batchItemFailures": []}
    assert calls == ["BatchGetItem", "TransactWriteItems"]  # the opens' messages read once, one write
    one_at_a_time, batched = counters(env.svc)["2026-12-01#1"], counters(env.svc)["2026-12-02#1"]
    assert {k: v for k, v in batched.items() if k not in ("day", "counter_key")} == {
        k: v for k, v in one_at_a_time.items() if k not in ("day", "counter_key")
    }
    assert (batched["sent"], batched["delivered"], batched["opened"], batched["clicked"]) == (3, 3, 3, 2)
    for a, b in (("a-1", "b-1"), ("a-2", "b-2"), ("a-3", "b-3")):
        assert stored(env, b) == stored(env, a)
    assert stored(env, "b-1")["clicked_url"] == {"S": "https://shop.example.jp/cart"}


def test_a_batch_with_a_repeat_and_an_early_event_is_counted_one_record_at_a_time(env: Stack) -> None:
    record_messages(env, "2026-12-01", "m-1", "m-2")
    assert env.handlers.invoke("tracking", sqs_ses_event(ses("Delivery", "m-1"))) == {"batchItemFailures": []}
    calls = dynamodb_calls(env)
    batch = sqs_ses_event(
        ses("Delivery", "m-1"),  # SES repeats itself: only the transaction's condition sees it
        ses("Open", "m-2"),
        ses("Delivery", "m-late"),  # beat the send's record of its message
        ses("Click", "m-2", link="https://shop.example.jp/cart"),
    )

    result = env.handlers.invoke("tracking", batch)

    assert calls[:2] == ["BatchGetItem", "TransactWriteItems"]  # tried together, cancelled: nothing written
    assert result == {"batchItemFailures": [{"itemIdentifier": batch["Records"][2]["messageId"]}]}
    row = counters(env.svc)["2026-12-01#1"]
    assert (row["sent"], row["delivered"], row["opened"], row["clicked"]) == (2, 1, 1, 1)
    assert set(env.svc.ledger.get("m-2").marks) == {"opened", "clicked"}

    # SQS redelivers the failed record once the send has recorded its message: counted then, once.
    record_messages(env, "2026-12-01", "m-late")
    assert env.handlers.invoke("tracking", {"Records": batch["Records"][2:3]}) == {"batchItemFailures": []}
    assert env.handlers.invoke("tracking", batch) == {"batchItemFailures": []}
    row = counters(env.svc)["2026-12-01#1"]
    assert (row["delivered"], row["opened"], row["clicked"]) == (2, 1, 1)


def test_a_hard_bounce_counted_with_its_batch_suppresses_the_address(env: Stack) -> None:
    message_id, _ = send_step_one(env)
    calls = dynamodb_calls(env)
    delivered = ses("Delivery", message_id)
    hard = ses("Bounce", message_id, bounceType="Permanent", bouncedRecipients=[{"emailAddress": SHOPPER}])

    assert env.handlers.invoke("tracking", sqs_ses_event(delivered, hard)) == {"batchItemFailures": []}

    assert calls.count("TransactWriteItems") == 1  # both marks in one update of the message
    assert contact(env).suppressed_reason == "bounced"
    row = counters(env.svc)["2026-12-01#1"]
    assert (row["delivered"], row["bounced"]) == (1, 1)
    assert set(env.svc.ledger.get(message_id).marks) == {"delivered", "bounced"}


# A mail security gateway's fetches: posing as a browser seconds after the send, or naming its HTTP library.
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 "
    "Edg/125.0.2535.85"
)
JUST_BEFORE_AT = "2026-12-01T05:00:03.000Z"  # a send two seconds before the events' time


def clicks(day: str, m1: str, m2: str, m3: str) -> list[dict[str, Any]]:
    """A scanner following both of m1's links, then its shopper; a script on m2; m3's shopper alone."""
    return [
        ses("Click", m1, day, link="https://shop.example.jp/cart", userAgent=EDGE, sent_at=JUST_BEFORE_AT),
        ses("Click", m1, day, link="https://shop.example.jp/tea", userAgent=EDGE, sent_at=JUST_BEFORE_AT),
        ses("Click", m1, day, link="https://shop.example.jp/cart"),
        ses("Click", m2, day, link="https://shop.example.jp/cart", userAgent="python-requests/2.32.3"),
        ses("Click", m3, day, link="https://shop.example.jp/tea"),
    ]


def test_machine_clicks_are_counted_apart_once_per_message_in_a_batch_and_one_record_at_a_time(env: Stack) -> None:
    record_messages(env, "2026-12-01", "a-1", "a-2", "a-3")
    record_messages(env, "2026-12-02", "b-1", "b-2", "b-3")
    for detail in clicks("2026-12-01", "a-1", "a-2", "a-3"):
        assert env.handlers.invoke("tracking", sqs_ses_event(detail)) == {"batchItemFailures": []}
    calls = dynamodb_calls(env)

    batch = sqs_ses_event(*clicks("2026-12-02", "b-1", "b-2", "b-3"))
    assert env.handlers.invoke("tracking", batch) == {"batchItemFailures": []}

    assert calls == ["BatchGetItem", "TransactWriteItems"]
    one_at_a_time, batched = counters(env.svc)["2026-12-01#1"], counters(env.svc)["2026-12-02#1"]
    for row in (one_at_a_time, batched):
        assert (row["sent"], row["clicked"], row["bot_clicked"]) == (3, 2, 2)
    for a, b in (("a-1", "b-1"), ("a-2", "b-2"), ("a-3", "b-3")):
        assert stored(env, b) == stored(env, a)
    assert set(env.svc.ledger.get("b-1").marks) == {"bot_clicked", "clicked"}
    assert set(env.svc.ledger.get("b-2").marks) == {"bot_clicked"}
    assert set(env.svc.ledger.get("b-3").marks) == {"clicked"}
    scanned = stored(env, "b-1")
    assert (scanned["bot_clicked_reason"], scanned["bot_clicked_url"]) == (
        {"S": "too_soon"},
        {"S": "https://shop.example.jp/cart"},
    )
    assert stored(env, "b-2")["bot_clicked_reason"] == {"S": "automated_user_agent"}

    # SQS delivers the batch again (the invocation timed out after writing), and each record on its own.
    assert env.handlers.invoke("tracking", batch) == {"batchItemFailures": []}
    for record in batch["Records"]:
        assert env.handlers.invoke("tracking", {"Records": [record]}) == {"batchItemFailures": []}
    assert counters(env.svc)["2026-12-02#1"] == batched


def test_a_shoppers_click_after_a_scanners_counts_once_however_often_sqs_delivers_them(env: Stack) -> None:
    record_messages(env, "2026-12-01", "m-1")
    scan = sqs_ses_event(ses("Click", "m-1", userAgent=EDGE, sent_at=JUST_BEFORE_AT, link="https://shop.example.jp/"))
    shopper = sqs_ses_event(ses("Click", "m-1", link="https://shop.example.jp/cart"))

    for event in (scan, scan, shopper, shopper, scan):
        assert env.handlers.invoke("tracking", event) == {"batchItemFailures": []}

    row = counters(env.svc)["2026-12-01#1"]
    assert (row["clicked"], row["bot_clicked"]) == (1, 1)
    assert stored(env, "m-1")["clicked_url"] == {"S": "https://shop.example.jp/cart"}
