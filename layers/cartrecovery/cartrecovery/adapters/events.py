"""The event log: one item per (store, webhook-id), written once; the dedupe of deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cartrecovery.adapters.dynamo_codec import from_item, to_item


class DynamoEventLog:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def record(self, store_id: str, event_id: str, summary: dict[str, Any], expires_at: datetime) -> bool:
        item = {**summary, "store_id": store_id, "event_id": event_id, "expires_at": int(expires_at.timestamp())}
        try:
            self.client.put_item(
                TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(event_id)"
            )
            return True
        except self.client.exceptions.ConditionalCheckFailedException:
            return False

    def get(self, store_id: str, event_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, ConsistentRead=True, Key={"store_id": {"S": store_id}, "event_id": {"S": event_id}}
        )
        return from_item(item["Item"]) if "Item" in item else None
