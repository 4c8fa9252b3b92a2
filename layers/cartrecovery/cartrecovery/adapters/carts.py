"""Carts in DynamoDB: one item per (store, cart) holding the folded state, the step claims, the armed
timer and the decision log. Writers touch disjoint attributes, so a fold never overwrites a claim.

While a timer is armed the item also carries ``timer_shard`` and ``timer_due`` (epoch seconds), the keys of
the sparse ``timers`` index: the reconciliation sweep finds overdue timers with a few small queries instead
of a scan, and a cart without a timer costs the index nothing."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cartrecovery.adapters.dynamo_codec import from_item, micros, opt_str, opt_time, to_attr
from cartrecovery.domain.cart import CLAIMED, OPEN, CartState, Decision, StepRecord, Timer
from cartrecovery.domain.events import Consent, Customer, Item
from cartrecovery.ports import ActivityWrite, ConcurrentUpdate

DEFAULT_RETENTION = timedelta(days=90)
TIMERS_INDEX = "timers"
# The index's partition key spreads armed timers over a few partitions (each takes about 1,000 writes a
# second); the sweep queries each one. Changing it strands timers armed under the old count until they fire.
TIMER_SHARDS = 4


def timer_shard(store_id: str, cart_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{store_id}|{cart_id}".encode()).digest()[:4], "big") % TIMER_SHARDS


def _timer_attributes(store_id: str, cart_id: str, timer: Timer) -> dict[str, Any]:
    """The timer and the index keys that go with it, as ExpressionAttributeValues."""
    return {
        ":timer": to_attr(encode_timer(timer)),
        ":timer_shard": {"N": str(timer_shard(store_id, cart_id))},
        ":timer_due": {"N": str(int(timer.due_at.timestamp()))},
    }


_TIMER_SET = "#timer = :timer, #timer_shard = :timer_shard, #timer_due = :timer_due"
_TIMER_REMOVE = "#timer, #timer_shard, #timer_due"
_TIMER_NAMES = {"#timer": "timer", "#timer_shard": "timer_shard", "#timer_due": "timer_due"}


class DynamoCartRepository:
    def __init__(self, client: Any, table: str, retention: timedelta = DEFAULT_RETENTION) -> None:
        self.client = client
        self.table = table
        self.retention = retention

    def _key(self, store_id: str, cart_id: str) -> dict[str, Any]:
        return {"store_id": {"S": store_id}, "cart_id": {"S": cart_id}}

    def get(self, store_id: str, cart_id: str) -> CartState | None:
        if not store_id or not cart_id:  # DynamoDB refuses an empty key; no cart has one
            return None
        item = self.client.get_item(TableName=self.table, Key=self._key(store_id, cart_id), ConsistentRead=True)
        return decode_cart(from_item(item["Item"])) if "Item" in item else None

    def save_fold(
        self, cart: CartState, expected_version: int | None, arm: tuple[Timer, Decision] | None = None
    ) -> None:
        fields = fold_fields(cart)
        sets = [f"#{k} = :{k}" for k, v in fields.items() if v is not None]
        removes = [f"#{k}" for k, v in fields.items() if v is None]
        names = {f"#{k}": k for k in fields}
        values = {f":{k}": to_attr(v) for k, v in fields.items() if v is not None}
        sets += [
            "#version = :new_version",
            "#steps = if_not_exists(#steps, :no_steps)",
            "#decisions = if_not_exists(#decisions, :no_decisions)",
            "#expires_at = :expires_at",
        ]
        if arm is not None:
            # A new cart's first timer rides on its creating write: one call instead of two.
            assert expected_version is None, "only a new cart is armed with its fold"
            sets.append(_TIMER_SET)
            names.update(_TIMER_NAMES)
            values.update(_timer_attributes(cart.store_id, cart.cart_id, arm[0]))
        names.update({"#version": "version", "#steps": "steps", "#decisions": "decisions", "#expires_at": "expires_at"})
        anchor = cart.last_activity_at or cart.closed_at or cart.first_seen_at
        assert anchor is not None
        values.update(
            {
                ":new_version": {"N": str(cart.version + 1)},
                ":no_steps": {"M": {}},
                ":no_decisions": to_attr([encode_decision(arm[1])] if arm else []),
                ":expires_at": self._expires_at(anchor),
            }
        )
        if expected_version is None:
            condition = "attribute_not_exists(cart_id)"
        else:
            condition = "#version = :expected"
            values[":expected"] = {"N": str(expected_version)}
        try:
            self._set_and_remove(cart, sets, removes, names, values, condition)
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise ConcurrentUpdate(cart.cart_id) from exc

    def apply_activity(self, snapshot: CartState) -> ActivityWrite:
        """The common cart event, a newer snapshot of an open cart whose timer is armed, in one write and
        no read: ``with_newer_activity`` needs nothing from the stored cart, so its update expression can
        say it (the snapshot's contents whole; of the customer and currency, only what the event states).
        The condition (the times are numbers, microseconds since the epoch) leaves every other case, a new
        cart, a closed one, an older or simultaneous event, a cart without a timer (and a cart whose time is
        still stored as text, from before: a number never compares with it), to the caller's read-fold-write,
        which gets the stored item from the refusal itself."""
        fields = fold_fields(snapshot)
        customer = fields["customer"]
        assert snapshot.last_activity_at is not None
        sets = [
            "#version = #version + :one",
            "#first_seen_at = if_not_exists(#first_seen_at, :last_activity_at)",
            "#expires_at = :expires_at",
        ]
        removes: list[str] = []
        names = {f"#{k}": k for k in ("version", "first_seen_at", "expires_at", "status", "timer", "customer")}
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":open": {"S": OPEN},
            ":expires_at": self._expires_at(snapshot.last_activity_at),
            ":number": {"S": "N"},
        }
        for name in ("items", "total", "recovery_url", "last_activity_at"):  # the snapshot's, whole
            names[f"#{name}"] = name
            if fields[name] is None:
                removes.append(f"#{name}")
            else:
                sets.append(f"#{name} = :{name}")
                values[f":{name}"] = to_attr(fields[name])
        if fields["currency"] is not None:
            sets.append("#currency = :currency")
            names["#currency"] = "currency"
            values[":currency"] = to_attr(fields["currency"])
        for key, value in customer.items():
            if value is not None:
                sets.append(f"#customer.#c_{key} = :c_{key}")
                names[f"#c_{key}"] = key
                values[f":c_{key}"] = to_attr(value)
        condition = (
            # Numbers only: a time stored as text (before they were numbers) goes to the fold.
            "#status = :open AND attribute_type(#last_activity_at, :number) AND #last_activity_at < :last_activity_at"
            " AND attribute_exists(#timer) AND attribute_exists(#customer)"
        )
        try:
            self._set_and_remove(
                snapshot, sets, removes, names, values, condition, ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            item = exc.response.get("Item")
            return ActivityWrite(False, decode_cart(from_item(item)) if item else None)
        return ActivityWrite(True)

    def _expires_at(self, anchor: datetime) -> dict[str, Any]:
        """The TTL attribute's value: the retention after the cart's last activity (or its close)."""
        return {"N": str(int((anchor + self.retention).timestamp()))}

    def _set_and_remove(
        self,
        cart: CartState,
        sets: list[str],
        removes: list[str],
        names: dict[str, str],
        values: dict[str, Any],
        condition: str,
        **extra: Any,
    ) -> None:
        """One conditional UpdateItem of the cart's fold fields; a failed condition raises the client's
        ``ConditionalCheckFailedException``."""
        self.client.update_item(
            TableName=self.table,
            Key=self._key(cart.store_id, cart.cart_id),
            UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            **extra,
        )

    def arm_if_idle(self, store_id: str, cart_id: str, timer: Timer, decision: Decision) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key(store_id, cart_id),
                UpdateExpression=f"SET {_TIMER_SET}, #decisions = list_append(#decisions, :decision)",
                ConditionExpression="attribute_not_exists(#timer) AND #status = :open",
                ExpressionAttributeNames={**_TIMER_NAMES, "#decisions": "decisions", "#status": "status"},
                ExpressionAttributeValues={
                    **_timer_attributes(store_id, cart_id, timer),
                    ":decision": to_attr([encode_decision(decision)]),
                    ":open": {"S": OPEN},
                },
            )
            return True
        except self.client.exceptions.ConditionalCheckFailedException:
            return False

    def update_progress(
        self,
        store_id: str,
        cart_id: str,
        *,
        decision: Decision,
        timer: Timer | bool | None = False,
        step: tuple[str, StepRecord] | None = None,
        undecided: str | None = None,
    ) -> bool:
        sets = ["#decisions = list_append(#decisions, :decision)"]
        removes = []
        names = {"#decisions": "decisions"}
        values: dict[str, Any] = {":decision": to_attr([encode_decision(decision)])}
        if timer is None:
            removes.append(_TIMER_REMOVE)
            names.update(_TIMER_NAMES)
        elif isinstance(timer, Timer):
            sets.append(_TIMER_SET)
            names.update(_TIMER_NAMES)
            values.update(_timer_attributes(store_id, cart_id, timer))
        if step is not None:
            sets.append("#steps.#step = :step")
            names.update({"#steps": "steps", "#step": step[0]})
            values[":step"] = to_attr(encode_step(step[1]))
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = "attribute_exists(cart_id)"
        if undecided is not None:
            condition += " AND attribute_not_exists(#steps.#undecided)"
            names.update({"#steps": "steps", "#undecided": undecided})
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key(store_id, cart_id),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            if undecided is None:
                raise
            return False
        return True

    def claim_step(self, store_id: str, cart_id: str, key: str, record: StepRecord) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key(store_id, cart_id),
                UpdateExpression="SET #steps.#step = :record",
                ConditionExpression="#status = :open AND attribute_not_exists(#steps.#step)",
                ExpressionAttributeNames={"#steps": "steps", "#step": key, "#status": "status"},
                ExpressionAttributeValues={":record": to_attr(encode_step(record)), ":open": {"S": OPEN}},
            )
            return True
        except self.client.exceptions.ConditionalCheckFailedException:
            return False

    def release_step(self, store_id: str, cart_id: str, key: str, decision: Decision) -> None:
        # Already released or finished by another delivery: nothing to undo.
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table,
                Key=self._key(store_id, cart_id),
                UpdateExpression="REMOVE #steps.#step SET #decisions = list_append(#decisions, :decision)",
                ConditionExpression="#steps.#step.#status = :claimed",
                ExpressionAttributeNames={
                    "#steps": "steps",
                    "#step": key,
                    "#status": "status",
                    "#decisions": "decisions",
                },
                ExpressionAttributeValues={
                    ":claimed": {"S": CLAIMED},
                    ":decision": to_attr([encode_decision(decision)]),
                },
            )

    def replace_timer(
        self, store_id: str, cart_id: str, expected: str, timer: Timer | None, decision: Decision
    ) -> bool:
        """Replace (or with None remove) the timer only if it is still the schedule ``expected``; False when
        someone re-armed or cleared it meanwhile."""
        names = {**_TIMER_NAMES, "#decisions": "decisions", "#name": "schedule_name"}
        values: dict[str, Any] = {":decision": to_attr([encode_decision(decision)]), ":expected": {"S": expected}}
        if timer is None:
            expression = f"SET #decisions = list_append(#decisions, :decision) REMOVE {_TIMER_REMOVE}"
        else:
            expression = f"SET {_TIMER_SET}, #decisions = list_append(#decisions, :decision)"
            values.update(_timer_attributes(store_id, cart_id, timer))
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key(store_id, cart_id),
                UpdateExpression=expression,
                ConditionExpression="#timer.#name = :expected",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except self.client.exceptions.ConditionalCheckFailedException:
            return False

    def overdue(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """(store_id, cart_id) of carts whose armed timer was due at or before ``before``, oldest first, at
        most ``limit``: a query per shard of the sparse timers index (keys only, eventually consistent)."""
        found: list[tuple[int, str, str]] = []
        for shard in range(TIMER_SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "IndexName": TIMERS_INDEX,
                "KeyConditionExpression": "timer_shard = :shard AND timer_due <= :before",
                "ExpressionAttributeValues": {
                    ":shard": {"N": str(shard)},
                    ":before": {"N": str(int(before.timestamp()))},
                },
                "Limit": limit,
            }
            taken = 0
            while taken < limit:
                page = self.client.query(**kwargs)
                for item in page.get("Items", []):
                    found.append((int(item["timer_due"]["N"]), item["store_id"]["S"], item["cart_id"]["S"]))
                    taken += 1
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found.sort()
        return [(store_id, cart_id) for _, store_id, cart_id in found[:limit]]

    def list_for_store(self, store_id: str) -> list[CartState]:
        """Every cart of a store (operator tools: erase, explain); paginated query, not a scan."""
        carts: list[CartState] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "store_id = :s",
            "ExpressionAttributeValues": {":s": {"S": store_id}},
        }
        while True:
            page = self.client.query(**kwargs)
            carts += [decode_cart(from_item(i)) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return carts
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, store_id: str, cart_id: str) -> None:
        self.client.delete_item(TableName=self.table, Key=self._key(store_id, cart_id))


def fold_fields(cart: CartState) -> dict[str, Any]:
    """The attributes an event fold owns (never steps, timer or decisions). The times events are ordered by
    keep their fraction of a second, as microseconds since the epoch (``micros``): stored as text in whole
    seconds, an event 0.8 s older than the stored one looked newer to the fold."""
    return {
        "status": cart.status,
        "currency": cart.currency,
        "items": [encode_item(i) for i in cart.items],
        "total": cart.total,
        "recovery_url": cart.recovery_url,
        "customer": encode_customer(cart.customer),
        "first_seen_at": _exact(cart.first_seen_at),
        "last_activity_at": _exact(cart.last_activity_at),
        "closed_at": _exact(cart.closed_at),
        "order_id": cart.order_id,
        "order_total": cart.order_total,
    }


def _exact(moment: datetime | None) -> int | None:
    return micros(moment) if moment is not None else None


def encode_item(item: Item) -> dict[str, Any]:
    return {
        "sku": item.sku,
        "name": item.name,
        "url": item.url,
        "unit_price": item.unit_price,
        "quantity": item.quantity,
        "image_url": item.image_url,
        "variant": item.variant,
        "in_stock": item.in_stock,
        **({"related_skus": list(item.related_skus)} if item.related_skus else {}),
    }


def encode_customer(customer: Customer) -> dict[str, Any]:
    consent = customer.consent
    return {
        "id": customer.id,
        "email": customer.email,
        "name": customer.name,
        "locale": customer.locale,
        "timezone": customer.timezone,
        "consent": {"granted": consent.granted, "at": consent.at, "source": consent.source} if consent else None,
        **({"orders_count": customer.orders_count} if customer.orders_count is not None else {}),
    }


def encode_timer(timer: Timer) -> dict[str, Any]:
    encoded = {"flow": timer.flow, "step": timer.step, "due_at": timer.due_at, "schedule_name": timer.schedule_name}
    if timer.planned_at is not None:  # only a timer set later than its plan carries it (most do not)
        encoded["planned_at"] = timer.planned_at
    return encoded


def encode_step(record: StepRecord) -> dict[str, Any]:
    encoded = {
        "status": record.status,
        "at": record.at,
        "variant": record.variant,
        "message_id": record.message_id,
        "day": record.day,
        "reason": record.reason,
    }
    if record.entry_id is not None:  # only stores that measure a holdout group record entries
        encoded["entry_id"] = record.entry_id
    return encoded


def encode_decision(decision: Decision) -> dict[str, Any]:
    return {
        "at": decision.at,
        "action": decision.action,
        "flow": decision.flow,
        "step": decision.step,
        "reason": decision.reason,
        "until": decision.until,
    }


def decode_consent(raw: dict[str, Any] | None) -> Consent | None:
    if not raw:
        return None
    return Consent(granted=bool(raw["granted"]), at=opt_time(raw.get("at")), source=opt_str(raw.get("source")))


def decode_cart(data: dict[str, Any]) -> CartState:
    customer = data.get("customer") or {}
    timer = data.get("timer")
    return CartState(
        store_id=data["store_id"],
        cart_id=data["cart_id"],
        status=data.get("status", OPEN),
        currency=data.get("currency"),
        items=tuple(
            Item(
                sku=i["sku"],
                name=i["name"],
                url=i["url"],
                unit_price=Decimal(i["unit_price"]),
                quantity=int(i["quantity"]),
                image_url=i.get("image_url"),
                variant=i.get("variant"),
                in_stock=bool(i.get("in_stock", True)),
                related_skus=tuple(str(sku) for sku in i.get("related_skus") or ()),
            )
            for i in data.get("items", [])
        ),
        total=data.get("total"),
        recovery_url=data.get("recovery_url"),
        customer=Customer(
            id=customer.get("id"),
            email=customer.get("email"),
            name=customer.get("name"),
            locale=customer.get("locale"),
            timezone=customer.get("timezone"),
            consent=decode_consent(customer.get("consent")),
            orders_count=int(customer["orders_count"]) if customer.get("orders_count") is not None else None,
        ),
        first_seen_at=opt_time(data.get("first_seen_at")),
        last_activity_at=opt_time(data.get("last_activity_at")),
        closed_at=opt_time(data.get("closed_at")),
        order_id=data.get("order_id"),
        order_total=data.get("order_total"),
        version=int(data.get("version", 0)),
        steps={
            k: StepRecord(
                status=v["status"],
                at=_time(v["at"]),
                variant=v.get("variant", "a"),
                message_id=v.get("message_id"),
                day=v.get("day"),
                reason=v.get("reason"),
                entry_id=v.get("entry_id"),
            )
            for k, v in (data.get("steps") or {}).items()
        },
        timer=Timer(
            flow=timer["flow"],
            step=int(timer["step"]),
            due_at=_time(timer["due_at"]),
            schedule_name=timer["schedule_name"],
            planned_at=opt_time(timer.get("planned_at")),
        )
        if timer
        else None,
        decisions=tuple(
            Decision(
                at=_time(d["at"]),
                action=d["action"],
                flow=d.get("flow", ""),
                step=int(d["step"]) if d.get("step") is not None else None,
                reason=d.get("reason"),
                until=opt_time(d.get("until")),
            )
            for d in data.get("decisions", [])
        ),
    )


def _time(value: str) -> datetime:
    moment = opt_time(value)
    assert moment is not None
    return moment
