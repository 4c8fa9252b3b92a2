"""Carts in DynamoDB: folds are optimistic (versioned), timers are armed once, steps are claimed once, and
the writers of a cart's separate parts (fold, claims, timer, decision log) never undo one another."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from cartrecovery import wiring
from cartrecovery.adapters.carts import DynamoCartRepository
from cartrecovery.clock import isoformat
from cartrecovery.domain.cart import (
    CLAIMED,
    CLEARED,
    SENT,
    CartState,
    Decision,
    StepRecord,
    Timer,
    activity_snapshot,
    fold,
)
from cartrecovery.domain.events import Consent, Customer, Event, Item, parse_event
from cartrecovery.ports import ActivityWrite, ConcurrentUpdate
from cartrecovery.settings import ConfigError, Settings
from cartrecovery.wiring import Services

if TYPE_CHECKING:
    from conftest import Deployment


@pytest.fixture
def carts(svc: Services) -> DynamoCartRepository:
    return svc.carts


@pytest.fixture
def cart(deployment: Deployment) -> CartState:
    at = deployment.start
    return CartState(
        store_id="tea-shop",
        cart_id="c-1",
        currency="JPY",
        items=(
            Item("TEA-001", "抹茶ラテ", "https://shop.example.jp/tea-001", Decimal("1280"), 2, "https://img/1.jpg"),
            Item("TEA-002", "ほうじ茶", "https://shop.example.jp/tea-002", Decimal("980.5"), 1, in_stock=False),
        ),
        total=Decimal("3540.5"),
        recovery_url="https://shop.example.jp/cart/restore?t=x",
        customer=Customer(
            id="u-1",
            email="taro@example.jp",
            name="山田 太郎",
            locale="ja",
            timezone="Asia/Tokyo",
            consent=Consent(True, at - timedelta(days=1), "checkout-form"),
        ),
        first_seen_at=at,
        last_activity_at=at,
    )


def timer(deployment: Deployment, step: int = 1, hours: int = 2) -> Timer:
    return Timer("cart_recovery", step, deployment.start + timedelta(hours=hours), f"cr-test-{step}-{hours}")


def test_a_folded_cart_reads_back_whole_with_its_version(carts: DynamoCartRepository, cart: CartState) -> None:
    carts.save_fold(cart, expected_version=None)

    loaded = carts.get("tea-shop", "c-1")

    assert loaded == dataclasses.replace(cart, version=1)
    assert carts.get("tea-shop", "c-2") is None
    assert carts.get("other-shop", "c-1") is None


def test_a_fold_on_a_stale_version_is_refused(carts: DynamoCartRepository, cart: CartState) -> None:
    carts.save_fold(cart, expected_version=None)
    newer = dataclasses.replace(cart, version=1, total=Decimal("100"))
    carts.save_fold(newer, expected_version=1)

    with pytest.raises(ConcurrentUpdate):
        carts.save_fold(dataclasses.replace(cart, total=Decimal("1")), expected_version=1)  # read before the write
    with pytest.raises(ConcurrentUpdate):
        carts.save_fold(cart, expected_version=None)  # "new" cart that already exists
    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None and loaded.total == Decimal("100") and loaded.version == 2


def test_a_fold_keeps_the_claims_timer_and_decisions_others_wrote(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment
) -> None:
    carts.save_fold(cart, expected_version=None)
    now = deployment.start
    assert carts.arm_if_idle("tea-shop", "c-1", timer(deployment), Decision(now, "armed", "cart_recovery", 1))
    assert carts.claim_step("tea-shop", "c-1", "cart_recovery#1", StepRecord(CLAIMED, now, day="2026-12-01"))

    later = dataclasses.replace(cart, version=1, last_activity_at=now + timedelta(minutes=5), items=cart.items[:1])
    carts.save_fold(later, expected_version=1)

    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None
    assert loaded.items == cart.items[:1]
    assert loaded.timer == timer(deployment)
    assert loaded.steps == {"cart_recovery#1": StepRecord(CLAIMED, now, day="2026-12-01")}
    assert [d.action for d in loaded.decisions] == ["armed"]


def test_a_timer_is_armed_only_on_an_idle_open_cart(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment
) -> None:
    now = deployment.start
    armed = Decision(now, "armed", "cart_recovery", 1, until=now + timedelta(hours=2))
    assert not carts.arm_if_idle("tea-shop", "c-1", timer(deployment), armed)  # no such cart
    carts.save_fold(cart, expected_version=None)

    assert carts.arm_if_idle("tea-shop", "c-1", timer(deployment), armed)
    assert not carts.arm_if_idle("tea-shop", "c-1", timer(deployment, hours=3), armed)

    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None and loaded.timer == timer(deployment)
    assert loaded.decisions == (armed,)

    closed = dataclasses.replace(cart, cart_id="c-closed", status=CLEARED, closed_at=now)
    carts.save_fold(closed, expected_version=None)
    assert not carts.arm_if_idle("tea-shop", "c-closed", timer(deployment), armed)


def test_a_new_cart_can_be_saved_armed_in_its_creating_write(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment
) -> None:
    now = deployment.start
    armed = Decision(now, "armed", "cart_recovery", 1, until=now + timedelta(hours=2))
    carts.save_fold(cart, expected_version=None, arm=(timer(deployment), armed))

    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None and loaded.timer == timer(deployment) and loaded.decisions == (armed,)
    # Armed like arm_if_idle arms: a second arming is refused, and the sweep's index sees the timer.
    assert not carts.arm_if_idle("tea-shop", "c-1", timer(deployment, hours=3), armed)
    assert carts.overdue(now + timedelta(hours=3), limit=10) == [("tea-shop", "c-1")]
    with pytest.raises(AssertionError):
        carts.save_fold(dataclasses.replace(cart, version=1), expected_version=1, arm=(timer(deployment), armed))


def test_a_step_is_claimed_once_and_only_while_the_cart_is_open(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment
) -> None:
    now = deployment.start
    carts.save_fold(cart, expected_version=None)

    assert carts.claim_step("tea-shop", "c-1", "cart_recovery#1", StepRecord(CLAIMED, now, "a"))
    # A second delivery of the same firing loses, even with another variant or time.
    assert not carts.claim_step("tea-shop", "c-1", "cart_recovery#1", StepRecord(CLAIMED, now, "b"))
    assert carts.claim_step("tea-shop", "c-1", "cart_recovery#2", StepRecord(CLAIMED, now, "a"))

    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None
    assert loaded.steps["cart_recovery#1"].variant == "a"

    closed = dataclasses.replace(cart, cart_id="c-closed", status=CLEARED, closed_at=now)
    carts.save_fold(closed, expected_version=None)
    assert not carts.claim_step("tea-shop", "c-closed", "cart_recovery#1", StepRecord(CLAIMED, now))


def test_a_released_claim_can_be_claimed_again_but_a_sent_step_is_never_released(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment
) -> None:
    now = deployment.start
    carts.save_fold(cart, expected_version=None)
    carts.claim_step("tea-shop", "c-1", "cart_recovery#1", StepRecord(CLAIMED, now))

    throttled = Decision(now, "throttled", "cart_recovery", 1, "ses_throttled")
    carts.release_step("tea-shop", "c-1", "cart_recovery#1", throttled)
    carts.release_step("tea-shop", "c-1", "cart_recovery#1", throttled)  # already released: no effect

    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None and loaded.steps == {} and loaded.decisions == (throttled,)
    assert carts.claim_step("tea-shop", "c-1", "cart_recovery#1", StepRecord(CLAIMED, now))

    sent = StepRecord(SENT, now, message_id="m-1", day="2026-12-01")
    carts.update_progress(
        "tea-shop", "c-1", decision=Decision(now, "sent", "cart_recovery", 1), step=("cart_recovery#1", sent)
    )
    carts.release_step("tea-shop", "c-1", "cart_recovery#1", throttled)
    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None and loaded.steps["cart_recovery#1"] == sent
    assert [d.action for d in loaded.decisions] == ["throttled", "sent"]


def test_progress_logs_decisions_in_order_and_replaces_or_removes_the_timer(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment
) -> None:
    now = deployment.start
    carts.save_fold(cart, expected_version=None)
    carts.arm_if_idle("tea-shop", "c-1", timer(deployment), Decision(now, "armed", "cart_recovery", 1))

    deferred = Decision(now, "deferred", "cart_recovery", 1, "quiet_hours", now + timedelta(hours=10))
    carts.update_progress("tea-shop", "c-1", decision=deferred, timer=timer(deployment, hours=10))
    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None and loaded.timer == timer(deployment, hours=10)

    noted = Decision(now, "noted", "cart_recovery", 1)
    carts.update_progress("tea-shop", "c-1", decision=noted)  # timer=False: left alone
    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None and loaded.timer == timer(deployment, hours=10)

    stopped = Decision(now, "skipped", "cart_recovery", None, "no_consent")
    carts.update_progress("tea-shop", "c-1", decision=stopped, timer=None)
    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None and loaded.timer is None
    assert [d.action for d in loaded.decisions] == ["armed", "deferred", "noted", "skipped"]
    assert loaded.decisions[1] == deferred

    with pytest.raises(ClientError):  # progress on a cart that does not exist is a bug, never an upsert
        carts.update_progress("tea-shop", "c-missing", decision=noted)
    assert carts.get("tea-shop", "c-missing") is None


def test_progress_on_an_undecided_step_is_written_only_while_the_step_has_no_record(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment
) -> None:
    now = deployment.start
    carts.save_fold(cart, expected_version=None)
    deferred = Decision(now, "deferred", "cart_recovery", 1, "frequency_cap", now + timedelta(hours=10))
    assert carts.update_progress(
        "tea-shop", "c-1", decision=deferred, timer=timer(deployment, hours=10), undecided="cart_recovery#1"
    )

    carts.claim_step("tea-shop", "c-1", "cart_recovery#1", StepRecord(CLAIMED, now))  # another delivery's claim
    later = Decision(now, "deferred", "cart_recovery", 1, "frequency_cap", now + timedelta(hours=20))
    assert not carts.update_progress(
        "tea-shop", "c-1", decision=later, timer=timer(deployment, hours=20), undecided="cart_recovery#1"
    )

    loaded = carts.get("tea-shop", "c-1")
    assert loaded is not None and loaded.timer == timer(deployment, hours=10) and loaded.decisions == (deferred,)
    assert loaded.steps["cart_recovery#1"].status == CLAIMED


def test_a_cart_expires_90_days_after_its_last_activity(
    carts: DynamoCartRepository, cart: CartState, svc: Services, deployment: Deployment
) -> None:
    carts.save_fold(cart, expected_version=None)

    item = svc.dynamodb.get_item(
        TableName=svc.settings.carts_table, Key={"store_id": {"S": "tea-shop"}, "cart_id": {"S": "c-1"}}
    )["Item"]

    assert int(item["expires_at"]["N"]) == int((deployment.start + timedelta(days=90)).timestamp())


def test_a_stores_carts_are_listed_and_deleted(carts: DynamoCartRepository, cart: CartState) -> None:
    for cart_id in ("c-1", "c-2"):
        carts.save_fold(dataclasses.replace(cart, cart_id=cart_id), expected_version=None)
    carts.save_fold(dataclasses.replace(cart, store_id="other-shop"), expected_version=None)

    assert sorted(c.cart_id for c in carts.list_for_store("tea-shop")) == ["c-1", "c-2"]
    carts.delete("tea-shop", "c-1")
    assert [c.cart_id for c in carts.list_for_store("tea-shop")] == ["c-2"]
    assert carts.get("other-shop", "c-1") is not None


def test_the_retention_is_the_deployments_cart_retention_days(
    tables: dict[str, str], settings: Settings, cart: CartState, boto_session: Any, deployment: Deployment
) -> None:
    environ = {name: table for name, table in tables.items()} | {"CART_RETENTION_DAYS": "30"}
    configured = Settings.from_env(environ)
    assert configured.cart_retention_days == 30
    wiring.configure(settings=dataclasses.replace(settings, cart_retention_days=30), session=boto_session)
    try:
        services = wiring.services()
        services.carts.save_fold(cart, expected_version=None)
        item = services.dynamodb.get_item(
            TableName=settings.carts_table, Key={"store_id": {"S": "tea-shop"}, "cart_id": {"S": "c-1"}}
        )["Item"]
    finally:
        wiring.reset()
    assert int(item["expires_at"]["N"]) == int((deployment.start + timedelta(days=30)).timestamp())
    with pytest.raises(ConfigError, match="CART_RETENTION_DAYS"):
        Settings.from_env(environ | {"CART_RETENTION_DAYS": "0"})


def _activity(at: datetime, customer: dict[str, Any] | None, **cart: Any) -> Event:
    """A cart.updated event at ``at``: one line, and the cart fields and customer given (None: left out)."""
    line = {
        "sku": "TEA-009",
        "name": "玄米茶",
        "url": "https://shop.example.jp/tea-009",
        "unit_price": 640,
        "quantity": 3,
    }
    body: dict[str, Any] = {
        "type": "cart.updated",
        "occurred_at": at.isoformat(),  # with its fraction of a second, if any
        "cart": {
            k: v for k, v in {"id": "c-1", "currency": "JPY", "items": [line], "total": 1920, **cart}.items() if v
        },
    }
    if customer is not None:
        body["customer"] = customer
    return parse_event(body)


SNAPSHOTS = {
    "everything stated": (
        {
            "id": "u-2",
            "email": "hanako@example.jp",
            "name": "山田 花子",
            "locale": "en",
            "timezone": "Europe/Berlin",
            "orders_count": 2,
            "marketing_consent": {"granted": False, "source": "account-page"},  # dated by the event
        },
        {"currency": "EUR", "recovery_url": "https://shop.example.jp/cart/restore?t=y"},
    ),
    "only an address": ({"email": "hanako@example.jp"}, {"total": None}),  # no total, no recovery url
    "no customer": (None, {}),
}


@pytest.mark.parametrize("case", SNAPSHOTS)
def test_a_newer_snapshot_of_an_armed_cart_is_written_as_its_fold_without_a_read(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment, svc: Services, case: str
) -> None:
    # Two identical armed carts; one takes the event through apply_activity, the other through the
    # read-fold-write every other event goes through. The stored items must be the same, key aside.
    armed = Decision(deployment.start, "armed", "cart_recovery", 1)
    for cart_id in ("c-1", "c-2"):
        carts.save_fold(
            dataclasses.replace(cart, cart_id=cart_id), expected_version=None, arm=(timer(deployment), armed)
        )
    customer, fields = SNAPSHOTS[case]
    event = _activity(deployment.start + timedelta(minutes=5), customer, **fields)

    written = carts.apply_activity(activity_snapshot(event, "tea-shop", "c-1"))
    stored = carts.get("tea-shop", "c-2")
    assert stored is not None
    carts.save_fold(fold(stored, event, "tea-shop", "c-2"), expected_version=stored.version)

    assert written == ActivityWrite(True)
    raw = {
        cart_id: {k: v for k, v in _raw_item(svc, cart_id).items() if k not in ("cart_id", "timer_shard")}
        for cart_id in ("c-1", "c-2")
    }
    assert raw["c-1"] == raw["c-2"]
    assert carts.get("tea-shop", "c-1") == dataclasses.replace(carts.get("tea-shop", "c-2"), cart_id="c-1")


def test_a_snapshot_that_needs_the_stored_cart_is_refused_and_hands_it_back(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment
) -> None:
    now = deployment.start
    later = _activity(now + timedelta(minutes=5), {"email": "taro@example.jp"})
    simultaneous = _activity(now, {"email": "taro@example.jp"})

    # No cart yet: the caller creates it (and arms it) itself.
    assert carts.apply_activity(activity_snapshot(later, "tea-shop", "c-1")) == ActivityWrite(False, None)

    carts.save_fold(cart, expected_version=None)  # open, but no timer: the caller arms it
    unarmed = carts.get("tea-shop", "c-1")
    assert carts.apply_activity(activity_snapshot(later, "tea-shop", "c-1")) == ActivityWrite(False, unarmed)

    assert carts.arm_if_idle("tea-shop", "c-1", timer(deployment), Decision(now, "armed", "cart_recovery", 1))
    armed = carts.get("tea-shop", "c-1")
    # Not newer than the stored snapshot: the fold decides.
    assert carts.apply_activity(activity_snapshot(simultaneous, "tea-shop", "c-1")) == ActivityWrite(False, armed)

    assert armed is not None
    carts.save_fold(dataclasses.replace(armed, status=CLEARED, closed_at=now), expected_version=armed.version)
    cleared = carts.get("tea-shop", "c-1")
    assert carts.apply_activity(activity_snapshot(later, "tea-shop", "c-1")) == ActivityWrite(False, cleared)
    assert carts.get("tea-shop", "c-1") == cleared  # nothing written by any refusal


def test_snapshots_a_fraction_of_a_second_apart_keep_their_order_whichever_arrives_first(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment, svc: Services
) -> None:
    # 0.75 s after the stored activity (3 items), then 0.25 s after it (1 item), in that order of arrival.
    armed = Decision(deployment.start, "armed", "cart_recovery", 1)
    carts.save_fold(cart, expected_version=None, arm=(timer(deployment), armed))
    three = [
        {"sku": f"TEA-01{n}", "name": "煎茶", "url": "https://shop.example.jp/t", "unit_price": 1, "quantity": 1}
        for n in range(3)
    ]
    newer = _activity(deployment.start + timedelta(milliseconds=750), None, items=three, total=3)
    older = _activity(deployment.start + timedelta(milliseconds=250), None)

    assert carts.apply_activity(activity_snapshot(newer, "tea-shop", "c-1")) == ActivityWrite(True)
    stored = carts.get("tea-shop", "c-1")
    assert stored is not None and stored.last_activity_at == newer.occurred_at  # the fraction is kept
    stored_as = _raw_item(svc, "c-1")["last_activity_at"]  # microseconds since the epoch
    assert stored_as == {"N": str(int(deployment.start.timestamp()) * 1_000_000 + 750_000)}

    refused = carts.apply_activity(activity_snapshot(older, "tea-shop", "c-1"))
    assert refused == ActivityWrite(False, stored)
    assert fold(stored, older, "tea-shop", "c-1") == stored  # the fold, too, sees it is older: nothing changes
    assert len(stored.items) == 3


def test_a_cart_stored_with_text_times_still_reads_and_takes_newer_snapshots(
    carts: DynamoCartRepository, cart: CartState, deployment: Deployment, svc: Services
) -> None:
    # Carts written before the times became numbers hold RFC 3339 text in whole seconds.
    armed = Decision(deployment.start, "armed", "cart_recovery", 1)
    carts.save_fold(cart, expected_version=None, arm=(timer(deployment), armed))
    text = {"S": isoformat(deployment.start)}
    svc.dynamodb.update_item(
        TableName=svc.settings.carts_table,
        Key={"store_id": {"S": "tea-shop"}, "cart_id": {"S": "c-1"}},
        UpdateExpression="SET last_activity_at = :t, first_seen_at = :t",
        ExpressionAttributeValues={":t": text},
    )
    legacy = carts.get("tea-shop", "c-1")
    assert legacy is not None and legacy.last_activity_at == deployment.start

    # A number never compares with the text: the write is refused and the fold decides, exactly.
    newer = _activity(deployment.start + timedelta(seconds=1), None)
    assert carts.apply_activity(activity_snapshot(newer, "tea-shop", "c-1")) == ActivityWrite(False, legacy)
    carts.save_fold(fold(legacy, newer, "tea-shop", "c-1"), expected_version=legacy.version)
    folded = carts.get("tea-shop", "c-1")
    assert folded is not None and folded.last_activity_at == newer.occurred_at
    assert "N" in _raw_item(svc, "c-1")["last_activity_at"]  # rewritten as a number from then on


def _raw_item(svc: Services, cart_id: str) -> dict[str, Any]:
    key = {"store_id": {"S": "tea-shop"}, "cart_id": {"S": cart_id}}
    return dict(svc.dynamodb.get_item(TableName=svc.settings.carts_table, Key=key, ConsistentRead=True)["Item"])
