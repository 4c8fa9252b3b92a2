"""What each store knows of an address or customer id, keyed by salted hash: consent, unsubscribe,
suppression, last order and last email. No address is stored here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cartrecovery.adapters.carts import decode_consent
from cartrecovery.adapters.dynamo_codec import from_item, opt_time, to_attr
from cartrecovery.domain.events import Consent
from cartrecovery.ports import ContactRecord


class DynamoContactBook:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def _key(self, store_id: str, key: str) -> dict[str, Any]:
        return {"store_id": {"S": store_id}, "contact_key": {"S": key}}

    def get_many(self, store_id: str, keys: list[str]) -> dict[str, ContactRecord]:
        if not keys:
            return {}
        response = self.client.batch_get_item(
            RequestItems={self.table: {"Keys": [self._key(store_id, k) for k in keys], "ConsistentRead": True}}
        )
        records = {}
        for raw in response.get("Responses", {}).get(self.table, []):
            data = from_item(raw)
            suppressed = data.get("suppressed") or {}
            records[data["contact_key"]] = ContactRecord(
                key=data["contact_key"],
                consent=decode_consent(data.get("consent")),
                unsubscribed_at=opt_time(data.get("unsubscribed_at")),
                suppressed_reason=suppressed.get("reason"),
                last_order_at=opt_time(data.get("last_order_at")),
                last_message=data.get("last_message"),
            )
        return records

    def _update_if(
        self,
        store_id: str,
        key: str,
        expression: str,
        condition: str | None,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> bool:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(store_id, key),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {k: to_attr(v) for k, v in values.items()},
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            self.client.update_item(**kwargs)
            return True
        except self.client.exceptions.ConditionalCheckFailedException:
            return False

    def record_order(self, store_id: str, key: str, at: datetime) -> None:
        self._update_if(
            store_id, key, "SET #o = :at", "attribute_not_exists(#o) OR #o < :at", {"#o": "last_order_at"}, {":at": at}
        )

    def record_consent(self, store_id: str, key: str, consent: Consent) -> None:
        """Keep the newest consent statement (and its time and source: the proof the law asks for)."""
        assert consent.at is not None
        self._update_if(
            store_id,
            key,
            "SET #c = :c",
            "attribute_not_exists(#c) OR #c.#at < :at",
            {"#c": "consent", "#at": "at"},
            {":c": {"granted": consent.granted, "at": consent.at, "source": consent.source}, ":at": consent.at},
        )

    def unsubscribe(self, store_id: str, key: str, at: datetime, source: str) -> bool:
        """Withdraw consent as of ``at``; True only the first time this address unsubscribes."""
        withdrawn = Consent(granted=False, at=at, source=source)
        newly = self._update_if(
            store_id,
            key,
            "SET #u = :at, #c = :c",
            "attribute_not_exists(#u)",
            {"#u": "unsubscribed_at", "#c": "consent"},
            {":at": at, ":c": {"granted": False, "at": at, "source": source}},
        )
        if not newly:
            self.record_consent(store_id, key, withdrawn)
        return newly

    def suppress(self, store_id: str, key: str, reason: str, at: datetime) -> None:
        self._update_if(
            store_id,
            key,
            "SET #s = if_not_exists(#s, :s)",
            None,
            {"#s": "suppressed"},
            {":s": {"reason": reason, "at": at}},
        )

    def note_sent(self, store_id: str, key: str, last_message: dict[str, Any]) -> None:
        self._update_if(store_id, key, "SET #m = :m", None, {"#m": "last_message"}, {":m": last_message})

    def erase(self, store_id: str, key: str) -> None:
        """Forget everything about this key but a suppression (kept as the salted hash it is keyed by)."""
        response = self.client.get_item(TableName=self.table, Key=self._key(store_id, key), ConsistentRead=True)
        suppressed = response.get("Item", {}).get("suppressed")
        if suppressed is None:
            self.client.delete_item(TableName=self.table, Key=self._key(store_id, key))
        else:
            self.client.put_item(TableName=self.table, Item={**self._key(store_id, key), "suppressed": suppressed})
