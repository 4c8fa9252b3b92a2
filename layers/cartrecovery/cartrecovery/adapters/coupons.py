"""A store's single-use coupon codes in DynamoDB (the coupons table, keyed ``store_id`` + ``coupon_key``).

Items of one store:

- ``pool``: ``total`` (codes uploaded) and ``handed_out`` (codes taken), plus an upload's ``lock``;
- ``code#<n>``: the n-th uploaded code (1-based, zero-padded so the keys sort);
- ``holder#<cart>#<flow>#<step>``: the code that cart's step was given (expires with ``expires_at``).

Handing out takes the next number with one conditional ``ADD`` on ``pool.handed_out`` (only while it is below
``total``), so two sends can never take the same number, and a number once taken is never taken again. The
holder item makes it idempotent: a repeated firing of the same (cart, step) finds it and gets the same code;
two deliveries racing for one holder both take a number, one wins the conditional put of the holder item,
and the loser's number is simply never used. Nothing is ever given back to the pool.

An upload takes ``pool.lock`` (expiring after ``UPLOAD_LOCK``), writes the new codes after ``total`` and then
moves ``total`` on while still holding the lock, so sends only ever see fully written codes.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from cartrecovery.clock import isoformat
from cartrecovery.ports import PoolBusy, PoolStats

POOL_KEY = "pool"
CODE_PREFIX = "code#"
HOLDER_PREFIX = "holder#"
UPLOAD_LOCK = timedelta(minutes=15)
HOLDER_RETENTION = timedelta(days=400)
_BATCH = 25


def code_key(number: int) -> str:
    return f"{CODE_PREFIX}{number:010d}"


class DynamoCouponPool:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def _key(self, store_id: str, coupon_key: str) -> dict[str, Any]:
        return {"store_id": {"S": store_id}, "coupon_key": {"S": coupon_key}}

    def _holder_code(self, store_id: str, holder: str) -> str | None:
        item = self.client.get_item(
            TableName=self.table, Key=self._key(store_id, HOLDER_PREFIX + holder), ConsistentRead=True
        ).get("Item")
        return item["code"]["S"] if item else None

    def hand_out(self, store_id: str, holder: str, at: datetime) -> str | None:
        given = self._holder_code(store_id, holder)
        if given is not None:
            return given
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key=self._key(store_id, POOL_KEY),
                UpdateExpression="ADD handed_out :one",
                ConditionExpression="handed_out < #total",
                ExpressionAttributeNames={"#total": "total"},
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            # Empty (or never uploaded); a concurrent delivery of the same step may have taken the last code.
            return self._holder_code(store_id, holder)
        number = int(answer["Attributes"]["handed_out"]["N"])
        item = self.client.get_item(
            TableName=self.table, Key=self._key(store_id, code_key(number)), ConsistentRead=True
        )["Item"]
        code = str(item["code"]["S"])
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **self._key(store_id, HOLDER_PREFIX + holder),
                    "code": {"S": code},
                    "number": {"N": str(number)},
                    "handed_out_at": {"S": isoformat(at)},
                    "expires_at": {"N": str(int((at + HOLDER_RETENTION).timestamp()))},
                },
                ConditionExpression="attribute_not_exists(coupon_key)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            # Another delivery of the same step got its code first: use that one; ours stays unused for good.
            return self._holder_code(store_id, holder)
        return code

    def existing_codes(self, store_id: str) -> set[str]:
        codes: set[str] = set()
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "store_id = :s AND begins_with(coupon_key, :p)",
            "ExpressionAttributeValues": {":s": {"S": store_id}, ":p": {"S": CODE_PREFIX}},
            "ProjectionExpression": "code, coupon_key",
            "ConsistentRead": True,
        }
        total = self.stats(store_id).total
        while True:
            page = self.client.query(**kwargs)
            for item in page.get("Items", []):
                # Codes past ``total`` are left by an interrupted upload: never handed out, overwritten next.
                if int(item["coupon_key"]["S"][len(CODE_PREFIX) :]) <= total:
                    codes.add(item["code"]["S"])
            if "LastEvaluatedKey" not in page:
                return codes
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def add_codes(self, store_id: str, codes: list[str], at: datetime) -> None:
        token = uuid.uuid4().hex
        try:
            locked = self.client.update_item(
                TableName=self.table,
                Key=self._key(store_id, POOL_KEY),
                UpdateExpression="SET #lock = :token, lock_until = :until, "
                "#total = if_not_exists(#total, :zero), handed_out = if_not_exists(handed_out, :zero)",
                ConditionExpression="attribute_not_exists(#lock) OR lock_until < :now",
                ExpressionAttributeNames={"#lock": "lock", "#total": "total"},
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":until": {"S": isoformat(at + UPLOAD_LOCK)},
                    ":now": {"S": isoformat(at)},
                    ":zero": {"N": "0"},
                },
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise PoolBusy(store_id) from exc
        start = int(locked["Attributes"]["total"]["N"])
        items = [
            {"PutRequest": {"Item": {**self._key(store_id, code_key(start + i)), "code": {"S": code}}}}
            for i, code in enumerate(codes, start=1)
        ]
        try:
            for offset in range(0, len(items), _BATCH):
                self._write_batch(items[offset : offset + _BATCH])
        except Exception:
            self._unlock(store_id, token)  # what was written lies past ``total``: unused, overwritten next time
            raise
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key(store_id, POOL_KEY),
                UpdateExpression="SET #total = :total, updated_at = :at REMOVE #lock, lock_until",
                ConditionExpression="#lock = :token",
                ExpressionAttributeNames={"#lock": "lock", "#total": "total"},
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":total": {"N": str(start + len(codes))},
                    ":at": {"S": isoformat(at)},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise PoolBusy(store_id) from exc  # the lock expired and another upload took over

    def _unlock(self, store_id: str, token: str) -> None:
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table,
                Key=self._key(store_id, POOL_KEY),
                UpdateExpression="REMOVE #lock, lock_until",
                ConditionExpression="#lock = :token",
                ExpressionAttributeNames={"#lock": "lock"},
                ExpressionAttributeValues={":token": {"S": token}},
            )

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        pending = {self.table: requests}
        for attempt in range(8):
            unprocessed = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not unprocessed:
                return
            pending = unprocessed
            time.sleep(min(2.0, 0.05 * 2**attempt))
        raise RuntimeError("DynamoDB kept throttling the coupon upload; nothing was added, run it again")

    def stats(self, store_id: str) -> PoolStats:
        item = self.client.get_item(TableName=self.table, Key=self._key(store_id, POOL_KEY), ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return PoolStats(0, 0)
        total = int(item.get("total", {"N": "0"})["N"])
        return PoolStats(total, min(total, int(item.get("handed_out", {"N": "0"})["N"])))
