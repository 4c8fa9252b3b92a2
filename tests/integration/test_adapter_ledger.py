"""Messages and report counters in DynamoDB: every outcome is marked once per message and kind, and the
counter row of the message's send day moves exactly once with it, however often SES repeats itself."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from cartrecovery.adapters.ledger import WRITE_ATTEMPTS, DynamoMessageLedger
from cartrecovery.domain.measurement import ENTRY_STEP, entry_id, order_once
from cartrecovery.ports import Mark, MessageRecord
from cartrecovery.wiring import Services

if TYPE_CHECKING:
    from conftest import Deployment


@pytest.fixture
def ledger(svc: Services) -> DynamoMessageLedger:
    return svc.ledger


def message(deployment: Deployment, message_id: str = "m-1", day: str = "2026-12-01", step: int = 1) -> MessageRecord:
    return MessageRecord(
        message_id=message_id,
        store_id="tea-shop",
        cart_id="c-1",
        flow="cart_recovery",
        step=step,
        variant="a",
        day=day,
        email_hash="h" * 40,
        sent_at=deployment.start,
    )


def rows(ledger: DynamoMessageLedger, day_from: str = "2026-01-01", day_to: str = "2026-12-31") -> list[dict[str, Any]]:
    return ledger.report_rows("tea-shop", day_from, day_to)


def test_a_sent_message_is_recorded_and_counted_once(ledger: DynamoMessageLedger, deployment: Deployment) -> None:
    ledger.record_sent(message(deployment))
    ledger.record_sent(message(deployment))  # a retried invocation records the same message again

    assert ledger.get("m-1") == message(deployment)
    assert ledger.get("m-2") is None
    [row] = rows(ledger)
    assert row == {
        "store_id": "tea-shop",
        "counter_key": "2026-12-01#cart_recovery#1#a",
        "day": "2026-12-01",
        "flow": "cart_recovery",
        "step": 1,
        "variant": "a",
        "sent": 1,
    }


def test_each_outcome_is_marked_and_counted_once_per_message(
    ledger: DynamoMessageLedger, deployment: Deployment
) -> None:
    ledger.record_sent(message(deployment))
    opened_at = deployment.start + timedelta(minutes=30)

    assert ledger.mark("m-1", "opened", opened_at) == "new"
    assert ledger.mark("m-1", "opened", opened_at + timedelta(minutes=5)) == "again"
    assert ledger.mark("m-1", "clicked", opened_at, detail={"url": "https://shop.example.jp/x"}) == "new"

    record = ledger.get("m-1")
    assert record is not None
    assert record.marks == {"opened": "2026-12-01T01:30:00Z", "clicked": "2026-12-01T01:30:00Z"}
    [row] = rows(ledger)
    assert (row["sent"], row["opened"], row["clicked"]) == (1, 1, 1)


def test_a_mark_with_the_row_from_the_tags_skips_the_read_and_still_counts_once(
    ledger: DynamoMessageLedger, deployment: Deployment
) -> None:
    ledger.record_sent(message(deployment))
    row = {"store_id": "tea-shop", "day": "2026-12-01", "flow": "cart_recovery", "step": 1, "variant": "a"}

    assert ledger.mark("m-1", "delivered", deployment.start, row=row) == "new"
    assert ledger.mark("m-1", "delivered", deployment.start, row=row) == "again"
    # An event for a message not recorded yet (SES can be faster than our own write): nothing moves.
    assert ledger.mark("m-unknown", "delivered", deployment.start, row=row) == "missing"
    assert ledger.mark("m-unknown", "opened", deployment.start) == "missing"

    [counted] = rows(ledger)
    assert counted["delivered"] == 1
    assert "opened" not in counted
    assert ledger.get("m-unknown") is None


def test_a_conversion_adds_its_revenue_and_keeps_the_order(ledger: DynamoMessageLedger, deployment: Deployment) -> None:
    ledger.record_sent(message(deployment))
    ledger.record_sent(message(deployment, "m-2"))
    at = deployment.start + timedelta(hours=3)

    assert ledger.mark("m-1", "converted", at, revenue=Decimal("2560"), detail={"order_id": "o-1"}) == "new"
    assert ledger.mark("m-1", "converted", at, revenue=Decimal("2560"), detail={"order_id": "o-1"}) == "again"
    assert ledger.mark("m-2", "converted", at, revenue=Decimal("980.5"), detail={"order_id": "o-2"}) == "new"

    ledger.record_sent(message(deployment, "m-3"))
    # An order in another currency: its revenue goes to that currency's column.
    dollars = Decimal("49.99")
    assert ledger.mark("m-3", "converted", at, dollars, {"order_id": "o-3"}, revenue_column="revenue_USD") == "new"

    [row] = rows(ledger)
    assert (row["sent"], row["converted"], row["revenue"]) == (3, 3, Decimal("3540.5"))
    assert row["revenue_USD"] == Decimal("49.99")
    record = ledger.get("m-1")
    assert record is not None and "converted" in record.marks
    with pytest.raises(ValueError, match="unknown outcome"):
        ledger.mark("m-1", "liked", at)


def test_one_order_converts_one_message_whichever_it_lands_on(
    ledger: DynamoMessageLedger, deployment: Deployment
) -> None:
    ledger.record_sent(message(deployment))
    ledger.record_sent(message(deployment, "m-2"))
    at = deployment.start + timedelta(hours=3)
    order = {"revenue": Decimal("2560"), "detail": {"order_id": "o-1"}, "once": "o-1"}

    assert ledger.mark("m-1", "converted", at, **order) == "new"
    assert ledger.mark("m-2", "converted", at + timedelta(days=1), **order) == "again"  # the order sent again
    [row] = rows(ledger)
    assert (row["converted"], row["revenue"]) == (1, Decimal("2560"))
    record = ledger.get("m-2")
    assert record is not None and "converted" not in record.marks

    # Erasure drops the order's marker with the message's details: the marker names the order.
    assert ledger.strip("m-1")
    assert ledger.mark("m-2", "converted", at + timedelta(days=1), **order) == "new"


def test_an_entry_is_counted_once_and_one_order_converts_it_beside_its_email(
    ledger: DynamoMessageLedger, deployment: Deployment
) -> None:
    entry = entry_id("tea-shop", "cart_recovery", "c-1")
    record = MessageRecord(
        entry, "tea-shop", "c-1", "cart_recovery", ENTRY_STEP, "treated", "2026-12-01", "h" * 40, deployment.start
    )
    ledger.record_entry(record)
    ledger.record_entry(record)  # the send retried
    ledger.record_sent(message(deployment))
    at = deployment.start + timedelta(hours=3)
    order = {"revenue": Decimal("2560"), "detail": {"order_id": "o-1"}}

    assert ledger.mark("m-1", "converted", at, **order, once=order_once("m-1", "o-1")) == "new"
    assert ledger.mark(entry, "converted", at, **order, once=order_once(entry, "o-1")) == "new"
    assert ledger.mark(entry, "converted", at, **order, once=order_once(entry, "o-1")) == "again"

    by_step = {r["step"]: r for r in rows(ledger)}
    assert (by_step[0]["variant"], by_step[0]["entered"], by_step[0]["converted"]) == ("treated", 1, 1)
    assert "sent" not in by_step[0]
    assert (by_step[1]["sent"], by_step[1]["converted"]) == (1, 1)

    # Erasure strips the entry as it strips a message, and drops the entry's own order marker: a second entry
    # of the shopper's may then be credited with that order (nothing names the first any more).
    assert ledger.strip(entry)
    stripped = ledger.get(entry)
    assert stripped is not None and stripped.cart_id == "" and "converted" in stripped.marks
    later = dataclasses.replace(record, message_id=entry_id("tea-shop", "cart_recovery", "c-2"), cart_id="c-2")
    ledger.record_entry(later)
    assert ledger.mark(later.message_id, "converted", at, **order, once=order_once(entry, "o-1")) == "new"
    assert (
        ledger.mark("m-1", "converted", at, **order, once=order_once("m-1", "o-1")) == "again"
    )  # email's marker stays


def test_report_rows_are_per_send_day_step_and_variant_within_the_range(
    ledger: DynamoMessageLedger, deployment: Deployment
) -> None:
    ledger.record_sent(message(deployment, "m-1", day="2026-11-30"))
    ledger.record_sent(message(deployment, "m-2", day="2026-12-01"))
    ledger.record_sent(message(deployment, "m-3", day="2026-12-01", step=2))
    ledger.record_sent(message(deployment, "m-4", day="2026-12-02"))
    ledger.count("tea-shop", {"day": "2026-12-01", "flow": "cart_recovery", "step": 1, "variant": "a"}, "unsubscribed")

    selected = rows(ledger, "2026-12-01", "2026-12-01")

    assert [(r["day"], r["step"], r["sent"], r.get("unsubscribed", 0)) for r in selected] == [
        ("2026-12-01", 1, 1, 1),
        ("2026-12-01", 2, 1, 0),
    ]
    assert len(rows(ledger, "2026-11-30", "2026-12-02")) == 4
    assert ledger.report_rows("other-shop", "2026-01-01", "2026-12-31") == []


def test_an_erased_message_keeps_its_row_hash_and_marks_and_nothing_else(
    ledger: DynamoMessageLedger, deployment: Deployment
) -> None:
    at = deployment.start + timedelta(hours=1)
    ledger.record_sent(message(deployment))
    ledger.mark("m-1", "clicked", at, detail={"url": "https://shop.example.jp/tea?u=taro"})
    ledger.mark("m-1", "converted", at, revenue=Decimal("2560"), detail={"order_id": "o-1"})
    assert ledger.strip("m-1") is True
    assert ledger.strip("m-2") is False  # no such message: nothing written

    stripped = ledger.get("m-1")
    assert stripped is not None
    assert (stripped.cart_id, stripped.email_hash, stripped.day, stripped.step) == ("", "h" * 40, "2026-12-01", 1)
    assert ledger.mark("m-1", "clicked", at) == "again"  # marks still count once
    assert ledger.mark("m-1", "complained", at) == "new"  # a late complaint is counted
    assert (rows(ledger)[0]["sent"], rows(ledger)[0]["clicked"], rows(ledger)[0]["revenue"]) == (1, 1, 2560)


class Contended:
    """The moto client, except that the first ``refusals`` writes of ``operation`` are refused as DynamoDB
    refuses a write that meets another writer on the same item (moto runs one request at a time, so it
    never does): a transaction is cancelled with a ``TransactionConflict`` reason on its counter row (the
    last item), a single-item write fails with ``TransactionConflictException``. Nothing is written then."""

    def __init__(self, client: Any, operation: str, refusals: int, condition_too: bool = False) -> None:
        self._client = client
        self.exceptions = client.exceptions
        self.operation = operation
        self.refusals = refusals
        self.condition_too = condition_too  # the message's condition fails in the same cancellation
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        return self._maybe_refuse("transact_write_items", kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        return self._maybe_refuse("update_item", kwargs)

    def _maybe_refuse(self, operation: str, kwargs: dict[str, Any]) -> Any:
        if operation == self.operation:
            self.attempts += 1
            if self.attempts <= self.refusals:
                raise self._refusal(kwargs)
        return getattr(self._client, operation)(**kwargs)

    def _refusal(self, kwargs: dict[str, Any]) -> Exception:
        if self.operation == "update_item":
            error = {"Code": "TransactionConflictException", "Message": "Transaction is ongoing for the item"}
            return self.exceptions.TransactionConflictException({"Error": error}, "UpdateItem")
        items = kwargs["TransactItems"]
        first = {"Code": "ConditionalCheckFailed"} if self.condition_too else {"Code": "None"}
        reasons = [first] + [{"Code": "None"}] * (len(items) - 2) + [{"Code": "TransactionConflict"}]
        error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
        return self.exceptions.TransactionCanceledException(
            {"Error": error, "CancellationReasons": reasons}, "TransactWriteItems"
        )


def contended_ledger(
    svc: Services, operation: str, refusals: int, **kw: Any
) -> tuple[DynamoMessageLedger, list[float]]:
    waits: list[float] = []
    client = Contended(svc.dynamodb, operation, refusals, **kw)
    settings = svc.settings
    return DynamoMessageLedger(client, settings.messages_table, settings.counters_table, sleep=waits.append), waits


def test_a_send_recorded_while_others_write_its_counter_row_is_recorded_and_counted_once(
    svc: Services, deployment: Deployment
) -> None:
    ledger, waits = contended_ledger(svc, "transact_write_items", refusals=3)

    ledger.record_sent(message(deployment))

    assert ledger.get("m-1") == message(deployment)
    assert rows(ledger)[0]["sent"] == 1
    assert len(waits) == 3 and all(0 <= wait <= 0.4 for wait in waits)


def test_an_outcome_marked_while_others_write_its_counter_row_is_marked_and_counted_once(
    ledger: DynamoMessageLedger, svc: Services, deployment: Deployment
) -> None:
    ledger.record_sent(message(deployment))
    contended, waits = contended_ledger(svc, "transact_write_items", refusals=2)

    assert contended.mark("m-1", "opened", deployment.start) == "new"
    assert contended.mark("m-1", "opened", deployment.start) == "again"

    assert (rows(ledger)[0]["sent"], rows(ledger)[0]["opened"]) == (1, 1)
    assert len(waits) == 2


def test_a_repeat_cancelled_together_with_a_conflict_is_still_a_repeat(
    ledger: DynamoMessageLedger, svc: Services, deployment: Deployment
) -> None:
    ledger.record_sent(message(deployment))
    assert ledger.mark("m-1", "delivered", deployment.start) == "new"
    contended, waits = contended_ledger(svc, "transact_write_items", refusals=2, condition_too=True)
    row = {"store_id": "tea-shop", "day": "2026-12-01", "flow": "cart_recovery", "step": 1, "variant": "a"}

    # With the row from the SES tags there is no read first: each write is refused, then tried again.
    assert contended.mark("m-1", "delivered", deployment.start, row=row) == "again"
    contended.record_sent(message(deployment))

    assert contended.client.attempts == 4 and len(waits) == 2
    assert (rows(ledger)[0]["sent"], rows(ledger)[0]["delivered"]) == (1, 1)


def test_a_batch_counted_while_others_write_its_counter_row_is_counted_together_once(
    ledger: DynamoMessageLedger, svc: Services, deployment: Deployment
) -> None:
    ledger.record_sent(message(deployment, "m-1"))
    ledger.record_sent(message(deployment, "m-2"))
    contended, waits = contended_ledger(svc, "transact_write_items", refusals=1)
    marks = [Mark("m-1", "opened", deployment.start), Mark("m-2", "opened", deployment.start)]

    assert contended.mark_batch(marks) == ["new", "new"]

    assert contended.client.attempts == 2 and len(waits) == 1  # the batch's one write, tried again whole
    assert (rows(ledger)[0]["sent"], rows(ledger)[0]["opened"]) == (2, 2)


def test_an_unsubscribe_counted_while_a_transaction_holds_the_row_is_counted_once(
    ledger: DynamoMessageLedger, svc: Services, deployment: Deployment
) -> None:
    ledger.record_sent(message(deployment))
    contended, waits = contended_ledger(svc, "update_item", refusals=1)

    row = {"day": "2026-12-01", "flow": "cart_recovery", "step": 1, "variant": "a"}
    contended.count("tea-shop", row, "unsubscribed")

    assert rows(ledger)[0]["unsubscribed"] == 1
    assert len(waits) == 1


def test_a_write_contended_for_on_every_try_fails_and_writes_nothing(svc: Services, deployment: Deployment) -> None:
    ledger, waits = contended_ledger(svc, "transact_write_items", refusals=100)

    with pytest.raises(ledger.client.exceptions.TransactionCanceledException):
        ledger.record_sent(message(deployment))

    assert ledger.client.attempts == WRITE_ATTEMPTS
    assert len(waits) == WRITE_ATTEMPTS - 1
    assert ledger.get("m-1") is None
    assert rows(ledger) == []
