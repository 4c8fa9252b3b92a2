"""Messages and report counters in DynamoDB.

Each message item carries the first time of each outcome (``opened_at``, ``clicked_at``, ...). Marking an
outcome and counting it happen in one transaction conditioned on that attribute being absent, so a
counter moves exactly once per message and kind however often SES repeats itself. Counters are kept per
(store, send day, flow, step, variant): the report reads a few rows, never the messages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cartrecovery.adapters.dynamo_codec import from_item, to_attr, to_item
from cartrecovery.adapters.errors import error_code
from cartrecovery.clock import parse_rfc3339
from cartrecovery.ports import MessageRecord

MESSAGE_RETENTION = timedelta(days=400)
MARK_KINDS = (
    "delivered",
    "opened",
    "clicked",
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
    def __init__(self, client: Any, messages_table: str, counters_table: str) -> None:
        self.client = client
        self.messages = messages_table
        self.counters = counters_table

    def _counter_update(
        self, store_id: str, row: dict[str, Any], kind: str, amount: int, revenue: Decimal | None = None
    ) -> dict[str, Any]:
        expression = "SET #day = :day, #flow = :flow, #step = :step, #variant = :variant ADD #kind :n" + (
            ", #revenue :revenue" if revenue is not None else ""
        )
        names = {"#day": "day", "#flow": "flow", "#step": "step", "#variant": "variant", "#kind": kind}
        values = {
            ":day": to_attr(row["day"]),
            ":flow": to_attr(row["flow"]),
            ":step": to_attr(int(row["step"])),
            ":variant": to_attr(row["variant"]),
            ":n": to_attr(amount),
        }
        if revenue is not None:
            names["#revenue"] = "revenue"
            values[":revenue"] = to_attr(revenue)
        return {
            "TableName": self.counters,
            "Key": {"store_id": {"S": store_id}, "counter_key": {"S": counter_key(row)}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def record_sent(self, message: MessageRecord) -> None:
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
        row = {"day": message.day, "flow": message.flow, "step": message.step, "variant": message.variant}
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.messages,
                            "Item": to_item(item),
                            "ConditionExpression": "attribute_not_exists(message_id)",
                        }
                    },
                    {"Update": self._counter_update(message.store_id, row, "sent", 1)},
                ]
            )
        except self.client.exceptions.TransactionCanceledException as exc:
            if not _cancelled_by_condition(exc):
                raise

    def get(self, message_id: str) -> MessageRecord | None:
        item = self.client.get_item(TableName=self.messages, Key={"message_id": {"S": message_id}}, ConsistentRead=True)
        if "Item" not in item:
            return None
        data = from_item(item["Item"])
        return MessageRecord(
            message_id=data["message_id"],
            store_id=data["store_id"],
            cart_id=data["cart_id"],
            flow=data["flow"],
            step=int(data["step"]),
            variant=data["variant"],
            day=data["day"],
            email_hash=data["email_hash"],
            sent_at=parse_rfc3339(data["sent_at"]),
            marks={k: str(data[f"{k}_at"]) for k in MARK_KINDS if f"{k}_at" in data},
        )

    def mark(
        self,
        message_id: str,
        kind: str,
        at: datetime,
        revenue: Decimal | None = None,
        detail: dict[str, str] | None = None,
        row: dict[str, Any] | None = None,
    ) -> str:
        if kind not in MARK_KINDS:
            raise ValueError(f"unknown outcome {kind}")
        if row is None:
            message = self.get(message_id)
            if message is None:
                return "missing"
            if kind in message.marks:
                return "again"
            store_id = message.store_id
            row = {"day": message.day, "flow": message.flow, "step": message.step, "variant": message.variant}
        else:
            store_id = str(row["store_id"])
        sets = ["#at = :at"]
        names = {"#at": f"{kind}_at"}
        values: dict[str, Any] = {":at": to_attr(at)}
        for name, value in (detail or {}).items():
            sets.append(f"#{name} = :{name}")
            names[f"#{name}"] = f"{kind}_{name}"
            values[f":{name}"] = to_attr(value)
        if revenue is not None:
            sets.append("#revenue = :revenue")
            names["#revenue"] = "revenue"
            values[":revenue"] = to_attr(revenue)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.messages,
                            "Key": {"message_id": {"S": message_id}},
                            "UpdateExpression": "SET " + ", ".join(sets),
                            "ConditionExpression": "attribute_exists(message_id) AND attribute_not_exists(#at)",
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": values,
                        }
                    },
                    {"Update": self._counter_update(store_id, row, kind, 1, revenue)},
                ]
            )
        except self.client.exceptions.TransactionCanceledException as exc:
            if not _cancelled_by_condition(exc):
                raise
            # Marked already, or (only when the row was given) not recorded yet: only a read tells which.
            return "again" if self.get(message_id) is not None else "missing"
        return "new"

    def delete(self, message_id: str) -> None:
        """Erase a message record; the report's counters hold no personal data and stay."""
        self.client.delete_item(TableName=self.messages, Key={"message_id": {"S": message_id}})

    def count(self, store_id: str, row: dict[str, Any], kind: str, amount: int = 1) -> None:
        self.client.update_item(**self._counter_update(store_id, row, kind, amount))

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


def _cancelled_by_condition(exc: Exception) -> bool:
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    codes = {r.get("Code") for r in reasons}
    return ("ConditionalCheckFailed" in codes and codes <= {"ConditionalCheckFailed", "None", None}) or (
        not reasons and error_code(exc) == "TransactionCanceledException" and "ConditionalCheckFailed" in str(exc)
    )
