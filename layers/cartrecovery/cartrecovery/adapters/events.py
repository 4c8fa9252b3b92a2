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

    def delete_for_carts(self, store_id: str, cart_ids: set[str]) -> int:
        """Delete a store's events that concern these carts (operator erasure; a query, not a scan)."""
        if not cart_ids:
            return 0
        deleted = 0
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "store_id = :s",
            "ExpressionAttributeValues": {":s": {"S": store_id}},
            "ProjectionExpression": "event_id, cart_id",
        }
        while True:
            page = self.client.query(**kwargs)
            for item in page.get("Items", []):
                if item.get("cart_id", {}).get("S") in cart_ids:
                    self.client.delete_item(
                        TableName=self.table, Key={"store_id": {"S": store_id}, "event_id": item["event_id"]}
                    )
                    deleted += 1
            if "LastEvaluatedKey" not in page:
                return deleted
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
