"""Messages and report counters in DynamoDB.

Each message item carries the first time of each outcome (``opened_at``, ``clicked_at``, ...). Marking an
outcome and counting it happen in one transaction conditioned on that attribute being absent, so a
counter moves exactly once per message and kind however often SES repeats itself. Counters are kept per
(store, send day, flow, step, variant): the report reads a few rows, never the messages. A batch of
outcomes can share one transaction, where each counter row moves once by the batch's total.

A counter row is shared by every message of its day, step and variant, so at volume many writers touch it
at once, and DynamoDB cancels a transaction that meets another on the same item (``TransactionConflict``).
A cancelled transaction wrote nothing, so such a write is tried again after a short random wait; its
conditions still make a repeat a no-op.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cartrecovery.adapters.dynamo_codec import from_item, to_attr, to_item
from cartrecovery.adapters.errors import error_code
from cartrecovery.clock import parse_rfc3339
from cartrecovery.domain.measurement import ENTERED, order_once
from cartrecovery.ports import Mark, MessageRecord

MESSAGE_RETENTION = timedelta(days=400)
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit for one TransactWriteItems
# A write contended for is tried this many times in all, waiting a random time up to base * 2**attempt
# (capped) between tries: 1.15 s of waiting at most, well inside the send function's 30 s.
WRITE_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 0.025
BACKOFF_CAP_SECONDS = 0.4
# Cancellation reasons that say "another writer or the table's throughput was in the way", not "your
# condition failed": the transaction wrote nothing and may simply be tried again.
CONTENTION_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
MARK_KINDS = (
    "delivered",
    "opened",
    "clicked",
    "bot_clicked",  # a click a machine made (usecases/track.py): counted apart, never as ``clicked``
    "bounced",
    "complained",
    "rejected",
    "rendering_failed",
    "converted",
    "unsubscribed",
)


def counter_key(row: dict[str, Any]) -> str:
    return f"{row['day']}#{row['flow']}#{row['step']}#{row['variant']}"


class DynamoMessageLedger:
    def __init__(
        self, client: Any, messages_table: str, counters_table: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.client = client
        self.messages = messages_table
        self.counters = counters_table
        self._sleep = sleep

    def _write(self, call: Callable[[], Any]) -> None:
        """Make a write, again after a short random wait (full jitter) while it is refused only because
        another writer held the same item or throughput ran short; any other failure is the caller's."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                call()
                return
            except Exception as exc:
                if attempt == WRITE_ATTEMPTS or not _contended(exc):
                    raise
            # Jitter spreads writers that collided apart; it needs no unpredictability, so `random` serves.
            self._sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))  # noqa: S311

    def _transact(self, items: list[dict[str, Any]]) -> None:
        self._write(lambda: self.client.transact_write_items(TransactItems=items))

    def _counter_update(self, store_id: str, row: dict[str, Any], amounts: dict[str, int | Decimal]) -> dict[str, Any]:
        """Add each amount (counts by kind, ``revenue``) to a counter row, creating it if need be."""
        names = {"#day": "day", "#flow": "flow", "#step": "step", "#variant": "variant"}
        values = {
            ":day": to_attr(row["day"]),
            ":flow": to_attr(row["flow"]),
            ":step": to_attr(int(row["step"])),
            ":variant": to_attr(row["variant"]),
        }
        adds = []
        for i, (name, amount) in enumerate(amounts.items()):
            adds.append(f"#k{i} :n{i}")
            names[f"#k{i}"] = name
            values[f":n{i}"] = to_attr(amount)
        return {
            "TableName": self.counters,
            "Key": {"store_id": {"S": store_id}, "counter_key": {"S": counter_key(row)}},
            "UpdateExpression": "SET #day = :day, #flow = :flow, #step = :step, #variant = :variant ADD "
            + ", ".join(adds),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def _message_update(self, message_id: str, marks: list[Mark]) -> dict[str, Any]:
        """Set each mark's time (and details) on the message, if the message exists and none is set yet."""
        sets: list[str] = []
        conditions = ["attribute_exists(message_id)"]
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        for i, mark in enumerate(marks):
            for name, value in {"at": mark.at, **mark.detail}.items():
                sets.append(f"#{name}{i} = :{name}{i}")
                names[f"#{name}{i}"] = f"{mark.kind}_{name}"
                values[f":{name}{i}"] = to_attr(value)
            conditions.append(f"attribute_not_exists(#at{i})")
            if mark.revenue is not None:
                sets.append("#revenue = :revenue")
                names["#revenue"] = "revenue"
                values[":revenue"] = to_attr(mark.revenue)
        return {
            "TableName": self.messages,
            "Key": {"message_id": {"S": message_id}},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def record_sent(self, message: MessageRecord) -> None:
        self._record(message, "sent")

    def record_entry(self, entry: MessageRecord) -> None:
        self._record(entry, ENTERED)

    def _record(self, message: MessageRecord, column: str) -> None:
        """Put the message's item and count it in ``column`` of its row, once: a repeat changes nothing."""
        item = {
            "message_id": message.message_id,
            "store_id": message.store_id,
            "cart_id": message.cart_id,
            "flow": message.flow,
            "step": message.step,
            "variant": message.variant,
            "day": message.day,
            "email_hash": message.email_hash,
            "sent_at": message.sent_at,
            "expires_at": int((message.sent_at + MESSAGE_RETENTION).timestamp()),
        }
        try:
            self._transact(
                [
                    {
                        "Put": {
                            "TableName": self.messages,
                            "Item": to_item(item),
                            "ConditionExpression": "attribute_not_exists(message_id)",
                        }
                    },
                    {"Update": self._counter_update(message.store_id, _row(message), {column: 1})},
                ]
            )
        except self.client.exceptions.TransactionCanceledException as exc:
            if not _cancelled_by_condition(exc):
                raise

    def get(self, message_id: str) -> MessageRecord | None:
        item = self.client.get_item(TableName=self.messages, Key={"message_id": {"S": message_id}}, ConsistentRead=True)
        return _record(item["Item"]) if "Item" in item else None

    def _get_many(self, message_ids: list[str]) -> dict[str, MessageRecord] | None:
        """Up to 100 messages in one read (None if DynamoDB left some keys unread)."""
        if not message_ids:
            return {}
        keys = [{"message_id": {"S": message_id}} for message_id in message_ids]
        answer = self.client.batch_get_item(RequestItems={self.messages: {"Keys": keys, "ConsistentRead": True}})
        if answer.get("UnprocessedKeys"):
            return None
        records = [_record(item) for item in answer["Responses"].get(self.messages, [])]
        return {record.message_id: record for record in records}

    def mark(
        self,
        message_id: str,
        kind: str,
        at: datetime,
        revenue: Decimal | None = None,
        detail: dict[str, str] | None = None,
        row: dict[str, Any] | None = None,
        revenue_column: str = "revenue",
        once: str | None = None,
    ) -> str:
        if kind not in MARK_KINDS:
            raise ValueError(f"unknown outcome {kind}")
        if row is None:
            message = self.get(message_id)
            if message is None:
                return "missing"
            if kind in message.marks:
                return "again"
            store_id, row = message.store_id, _row(message)
        else:
            store_id = str(row["store_id"])
        mark = Mark(message_id, kind, at, detail or {}, revenue=revenue, revenue_column=revenue_column)
        items: list[dict[str, Any]] = [
            {"Update": self._message_update(message_id, [mark])},
            {"Update": self._counter_update(store_id, row, _amounts(mark))},
        ]
        if once is not None:
            items.append({"Put": self._once_put(store_id, once, kind, message_id, at)})
        try:
            self._transact(items)
        except self.client.exceptions.TransactionCanceledException as exc:
            if not _cancelled_by_condition(exc):
                raise
            # Marked already (this message, or ``once`` another one), or (only when the row was given) not
            # recorded yet: only a read tells which.
            return "again" if self.get(message_id) is not None else "missing"
        return "new"

    def _once_put(self, store_id: str, once: str, kind: str, message_id: str, at: datetime) -> dict[str, Any]:
        """The item that lets ``once`` be marked a single time in the store: an order re-sent later (an
        update, a new webhook-id) could otherwise credit a newer email of the same address as well."""
        return {
            "TableName": self.messages,
            "Item": {
                "message_id": {"S": _once_key(kind, store_id, once)},
                "store_id": {"S": store_id},
                "marked": {"S": message_id},
                "expires_at": {"N": str(int((at + MESSAGE_RETENTION).timestamp()))},
            },
            "ConditionExpression": "attribute_not_exists(message_id)",
        }

    def mark_batch(self, marks: list[Mark]) -> list[str] | None:
        # Opens and clicks are checked for repeats by one read of their messages; the rest rely on the write's
        # conditions, whose failure cancels the whole batch (the caller then marks one at a time).
        if len(marks) > MAX_TRANSACTION_ITEMS:
            return None
        unread = sorted({mark.message_id for mark in marks if mark.row is None})
        read = self._get_many(unread)
        if read is None or len(read) < len(unread):
            return None
        results: list[str] = []
        updates: dict[str, dict[str, Mark]] = {}  # message -> kind -> its first mark in the batch
        counters: dict[tuple[str, str], tuple[dict[str, Any], dict[str, int | Decimal]]] = {}  # row, amounts
        for mark in marks:
            if mark.kind not in MARK_KINDS:
                raise ValueError(f"unknown outcome {mark.kind}")
            message = read.get(mark.message_id)
            kinds = updates.setdefault(mark.message_id, {})
            if mark.kind in kinds or (message is not None and mark.kind in message.marks):
                results.append("again")
                continue
            kinds[mark.kind] = mark
            results.append("new")
            if mark.row is not None:
                store_id, row = str(mark.row["store_id"]), mark.row
            else:
                assert message is not None
                store_id, row = message.store_id, _row(message)
            amounts = counters.setdefault((store_id, counter_key(row)), (row, {}))[1]
            for name, amount in _amounts(mark).items():
                amounts[name] = amounts.get(name, 0) + amount
        items = [
            {"Update": self._message_update(message_id, list(kinds.values()))}
            for message_id, kinds in updates.items()
            if kinds
        ] + [
            {"Update": self._counter_update(store_id, row, amounts)}
            for (store_id, _), (row, amounts) in counters.items()
        ]
        if len(items) > MAX_TRANSACTION_ITEMS:
            return None
        if items:
            try:
                self._transact(items)
            except self.client.exceptions.TransactionCanceledException:
                return None
        return results

    def strip(self, message_id: str) -> bool:
        """Reduce an erased shopper's message to what its late SES events still need: its report row, the
        salted address hash a complaint or hard bounce suppresses, and its marks' times (each counted once).
        The cart id and the marks' details (a clicked URL, an order id and its revenue) go. False if absent.

        Deleting it instead lost a complaint that came after the erasure: with no record, the event could
        neither be counted nor suppress the address, which was then emailed again."""
        key = {"message_id": {"S": message_id}}
        item = self.client.get_item(TableName=self.messages, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            return False
        kept = {name: value for name, value in item.items() if name in STRIPPED_KEEPS or name.endswith("_at")}
        self.client.put_item(TableName=self.messages, Item=kept)
        order_id = item.get("converted_order_id", {}).get("S")
        if order_id:  # the order's credit marker names the order too
            once = _once_key("converted", item["store_id"]["S"], order_once(message_id, order_id))
            self.client.delete_item(TableName=self.messages, Key={"message_id": {"S": once}})
        return True

    def count(self, store_id: str, row: dict[str, Any], kind: str, amount: int = 1) -> None:
        update = self._counter_update(store_id, row, {kind: amount})
        self._write(lambda: self.client.update_item(**update))

    def report_rows(self, store_id: str, day_from: str, day_to: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.counters,
            "KeyConditionExpression": "store_id = :s AND counter_key BETWEEN :a AND :b",
            "ExpressionAttributeValues": {
                ":s": {"S": store_id},
                ":a": {"S": day_from},
                ":b": {"S": day_to + "#\uffff"},
            },
        }
        while True:
            page = self.client.query(**kwargs)
            rows += [from_item(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return rows
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# What an erased shopper's message keeps (with every ``<kind>_at`` mark): no cart id, no details.
STRIPPED_KEEPS = frozenset(
    {"message_id", "store_id", "flow", "step", "variant", "day", "email_hash", "sent_at", "expires_at"}
)


def _row(message: MessageRecord) -> dict[str, Any]:
    return {"day": message.day, "flow": message.flow, "step": message.step, "variant": message.variant}


def _amounts(mark: Mark) -> dict[str, int | Decimal]:
    return {mark.kind: 1} if mark.revenue is None else {mark.kind: 1, mark.revenue_column: mark.revenue}


def _record(item: dict[str, Any]) -> MessageRecord:
    data = from_item(item)
    return MessageRecord(
        message_id=data["message_id"],
        store_id=data["store_id"],
        cart_id=data.get("cart_id", ""),  # "" once its shopper is erased (strip)
        flow=data["flow"],
        step=int(data["step"]),
        variant=data["variant"],
        day=data["day"],
        email_hash=data["email_hash"],
        sent_at=parse_rfc3339(data["sent_at"]),
        marks={k: str(data[f"{k}_at"]) for k in MARK_KINDS if f"{k}_at" in data},
    )


def _contended(exc: Exception) -> bool:
    """Refused because of another writer or throughput (nothing written), not because of a condition alone.
    A transaction cancelled for a conflict on one item and a failed condition on another is tried again
    too: the condition still holds on the next try, and then the cancellation is the condition's alone."""
    code = error_code(exc)
    if code == "TransactionConflictException":  # a single-item write that met an ongoing transaction
        return True
    return code == "TransactionCanceledException" and bool(_cancellation_codes(exc) & CONTENTION_REASONS)


def _cancelled_by_condition(exc: Exception) -> bool:
    codes = _cancellation_codes(exc)
    return ("ConditionalCheckFailed" in codes and codes <= {"ConditionalCheckFailed", "None", None}) or (
        not codes and error_code(exc) == "TransactionCanceledException" and "ConditionalCheckFailed" in str(exc)
    )


def _cancellation_codes(exc: Exception) -> set[str | None]:
    """The reason codes of a cancelled transaction, one per item ("None" for an item that was fine)."""
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    return {reason.get("Code") for reason in reasons}


def _once_key(kind: str, store_id: str, once: str) -> str:
    """The messages-table key that marks ``once`` (an order id) as marked ``kind`` in the store. SES message
    ids never contain "#", so it cannot meet a message's key."""
    return f"{kind}#{store_id}#{once}"
