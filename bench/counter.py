"""Counts every AWS call a boto3 session makes (a botocore event hook), with DynamoDB capacity units.

Capacity is worked out from the items themselves: the item sizes before and after each write are read
through an administrative client that the hook does not see.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.capacity import item_size, read_units, write_units

PARAMS = "bench_params"
BEFORE = "bench_before"


@dataclass
class CallCounter:
    admin_dynamodb: Any
    calls: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0
    sent: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (SendEmail params, MessageId)
    enabled: bool = True
    units_by_table: Counter[str] = field(default_factory=Counter)  # "<table> write|read" -> units
    _keys: dict[str, list[str]] = field(default_factory=dict)

    def install(self, session: Any) -> None:
        session.events.register("before-parameter-build", self._before)
        session.events.register("after-call", self._after)

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context[PARAMS] = params
        if self.enabled and model.service_model.service_id == "DynamoDB":
            context[BEFORE] = [self._size(table, key) for table, key, _ in self._writes(model.name, params)]

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.enabled:
            return
        service = model.service_model.service_id.replace(" ", "")
        self.calls[f"{service}:{model.name}"] += 1
        params = context.get(PARAMS, {})
        if service == "DynamoDB":
            self._capacity(model.name, params, parsed, context.get(BEFORE, []))
        elif model.name == "SendEmail" and "MessageId" in parsed:
            self.sent.append((params, str(parsed["MessageId"])))

    # ---- DynamoDB capacity ----

    def _capacity(self, op: str, params: dict[str, Any], parsed: dict[str, Any], before: list[int]) -> None:
        writes = self._writes(op, params)
        factor = 2 if op.startswith("Transact") else 1
        for (table, key, put), size_before in zip(writes, before, strict=True):
            size_after = self._size(table, key)
            self._add(table, "write", factor * write_units(max(size_before, size_after, item_size(put))))
        consistent = bool(params.get("ConsistentRead"))
        if op == "GetItem":
            self._add(params["TableName"], "read", read_units(item_size(parsed.get("Item")), consistent))
        elif op == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                found = parsed.get("Responses", {}).get(table, [])
                sizes = [item_size(i) for i in found] + [0] * (len(request["Keys"]) - len(found))
                self._add(table, "read", sum(read_units(s, bool(request.get("ConsistentRead"))) for s in sizes))
        elif op in ("Query", "Scan"):
            size = sum(item_size(i) for i in parsed.get("Items", []))
            self._add(params["TableName"], "read", read_units(size, consistent))

    def _add(self, table: str, kind: str, units: float) -> None:
        if kind == "write":
            self.write_units += units
        else:
            self.read_units += units
        self.units_by_table[f"{table.removeprefix('bench-')} {kind}"] += units

    def _writes(self, op: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
        """(table, key, item put) of every item a write operation touches."""
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            put = params.get("Item")
            return [(params["TableName"], params.get("Key") or self._key(params["TableName"], put or {}), put)]
        if op == "TransactWriteItems":
            touched = []
            for action in params["TransactItems"]:
                ((_, spec),) = action.items()
                put = spec.get("Item")
                touched.append((spec["TableName"], spec.get("Key") or self._key(spec["TableName"], put or {}), put))
            return touched
        if op == "BatchWriteItem":
            touched = []
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    put = request.get("PutRequest", {}).get("Item")
                    key = request.get("DeleteRequest", {}).get("Key") or self._key(table, put or {})
                    touched.append((table, key, put))
            return touched
        return []

    def _key(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        if table not in self._keys:
            schema = self.admin_dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
            self._keys[table] = [k["AttributeName"] for k in schema]
        return {name: item[name] for name in self._keys[table] if name in item}

    def _size(self, table: str, key: dict[str, Any]) -> int:
        found = self.admin_dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item_size(found)
