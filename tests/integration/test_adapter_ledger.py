"""Messages and report counters in DynamoDB: every outcome is marked once per message and kind, and the
counter row of the message's send day moves exactly once with it, however often SES repeats itself."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from cartrecovery.adapters.ledger import DynamoMessageLedger
from cartrecovery.ports import MessageRecord
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

    [row] = rows(ledger)
    assert (row["sent"], row["converted"], row["revenue"]) == (2, 2, Decimal("3540.5"))
    record = ledger.get("m-1")
    assert record is not None and "converted" in record.marks
    with pytest.raises(ValueError, match="unknown outcome"):
        ledger.mark("m-1", "liked", at)


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


def test_an_erased_message_is_gone_but_its_counts_stay(ledger: DynamoMessageLedger, deployment: Deployment) -> None:
    ledger.record_sent(message(deployment))
    ledger.delete("m-1")

    assert ledger.get("m-1") is None
    assert rows(ledger)[0]["sent"] == 1
