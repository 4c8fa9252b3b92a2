"""A store's report with 100,000 messages recorded, timed against the same report with 1,000.

The report reads per-day counters, so its time should not grow with the number of messages. The first
200 messages go through the ledger's own ``record_sent``; the rest are bulk-loaded into the messages
table (key, store and day only) with their counters moved by the same amounts, as ``record_sent`` would.
"""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench import REPO
from bench.moto_stack import REGION, lambda_environment
from bench.timing import median, per_call_seconds

SMALL, LARGE = 1_000, 100_000
THROUGH_LEDGER = 200  # moto copies its tables on every transaction: slow past a few hundred
DAYS, STEPS = 30, 3
RUNS = 25
TARGET_RATIO = 1.5
STORE = "demo"
FIRST_DAY = date(2026, 11, 1)


def _message(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    from cartrecovery.ports import MessageRecord

    day = FIRST_DAY + timedelta(days=index % DAYS)
    step = 1 + (index // DAYS) % STEPS
    sent_at = datetime(day.year, day.month, day.day, 3, tzinfo=UTC)
    record = MessageRecord(
        message_id=f"bench-{index:07d}",
        store_id=STORE,
        cart_id=f"c-{index:07d}",
        flow="cart_recovery",
        step=step,
        variant="a",
        day=day.isoformat(),
        email_hash=f"{index:043d}",
        sent_at=sent_at,
    )
    row = {"day": record.day, "flow": record.flow, "step": record.step, "variant": record.variant}
    return {"record": record}, row


def _bulk_load(ledger: Any, start: int, stop: int) -> None:
    """Messages straight into moto's table (the HTTP path would take minutes), then their counters."""
    from collections import Counter

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(ledger.messages)
    rows: Counter[tuple[str, str, int, str]] = Counter()
    for index in range(start, stop):
        data, row = _message(index)
        record = data["record"]
        # The key and what a report that scanned messages would filter on; moto builds items slowly.
        table.put_item({"message_id": {"S": record.message_id}, "store_id": {"S": STORE}, "day": {"S": record.day}})
        rows[(row["day"], row["flow"], row["step"], row["variant"])] += 1
    for (day, flow, step, variant), amount in rows.items():
        ledger.count(STORE, {"day": day, "flow": flow, "step": step, "variant": variant}, "sent", amount)


def _report_ms(ledger: Any) -> tuple[float, int]:
    from cartrecovery.usecases.report import build_report

    # The emulator keeps every loaded message as Python objects in this process; left to the cyclic garbage
    # collector they would slow the large run for a reason no real table has. Freeze them first.
    gc.collect()
    gc.freeze()
    last_day = FIRST_DAY + timedelta(days=DAYS - 1)
    report = build_report(ledger, STORE, FIRST_DAY, last_day)
    samples = per_call_seconds(lambda: build_report(ledger, STORE, FIRST_DAY, last_day), RUNS)
    return median(samples) * 1000, int(report["totals"]["sent"])


def run() -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from cartrecovery.adapters.ledger import DynamoMessageLedger
    from cartrecovery.local.resources import create_tables

    with lambda_environment(), mock_aws():
        client = boto3.session.Session().client("dynamodb")
        tables = create_tables(client, REPO / "template.yaml", "bench")
        ledger = DynamoMessageLedger(client, tables["MESSAGES_TABLE"], tables["COUNTERS_TABLE"])
        for index in range(THROUGH_LEDGER):
            ledger.record_sent(_message(index)[0]["record"])
        _bulk_load(ledger, THROUGH_LEDGER, SMALL)
        small_ms, small_sent = _report_ms(ledger)
        _bulk_load(ledger, SMALL, LARGE)
        messages = client.describe_table(TableName=ledger.messages)["Table"]["ItemCount"]
        large_ms, large_sent = _report_ms(ledger)
    gc.unfreeze()
    if (small_sent, large_sent, messages) != (SMALL, LARGE, LARGE):
        raise RuntimeError(f"{messages} messages, report totals {small_sent} and {large_sent}: expected {LARGE}")
    return {
        "ratio": round(large_ms / small_ms, 2),
        "ms_1k": round(small_ms, 2),
        "ms_100k": round(large_ms, 2),
        "target_ratio": TARGET_RATIO,
    }
