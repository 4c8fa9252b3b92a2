"""Stores in DynamoDB: a store reads back exactly as created, is created once, and the send path's cache
serves a warm container without hiding its own writes."""

from __future__ import annotations

import dataclasses

import pytest

from cartrecovery.adapters.stores import CachedStoreRepository, DynamoStoreRepository
from cartrecovery.domain.store import Coupon, Product, SecretEntry, Store, StoreSettings
from cartrecovery.ports import AlreadyExists
from cartrecovery.usecases.stores import rotate_secret
from cartrecovery.wiring import Services

SETTINGS = {
    "store_id": "tea-shop",
    "name": "抹茶堂",
    "sender_email": "shop@tea-shop.example.jp",
    "legal": {
        "sender_name": "株式会社抹茶堂",
        "address": "京都府京都市下京区 1-2-3",
        "contact": "support@shop.example.jp",
    },
}


@pytest.fixture
def repo(svc: Services) -> DynamoStoreRepository:
    return DynamoStoreRepository(svc.dynamodb, svc.settings.stores_table)


def full_store(store_id: str = "tea-shop") -> Store:
    settings = StoreSettings.from_dict(
        {
            **SETTINGS,
            "store_id": store_id,
            "quiet_hours": "22:30-07:15",
            "coupon": {"code": "MATCHA10", "description": "10%オフ", "terms": "お一人様1回", "valid_days": 5},
            "recommendations": [{"name": "茶筅", "url": "https://shop.example.jp/chasen", "price": "2,860円"}],
            "help": {"faq_url": "https://shop.example.jp/faq"},
            "skip_closed_days": True,
            "frequency_cap_hours": 0,
            "flows": {"cart_recovery": {"enabled": False, "steps": [{"step": 1, "delay_seconds": 3600}]}},
        }
    )
    return Store(
        settings=settings,
        webhook_secrets=(
            SecretEntry("whsec_b2xk", "2026-11-01T00:00:00Z", "2026-12-02T00:00:00Z"),
            SecretEntry("whsec_bmV3", "2026-12-01T00:00:00Z"),
        ),
        shopify_secrets=(SecretEntry("shpss_abc", "2026-11-01T00:00:00Z"),),
        token_key="token-key",
        salt="salt",
    )


def test_a_store_reads_back_exactly_as_created(repo: DynamoStoreRepository) -> None:
    store = full_store()
    repo.create(store)

    loaded = repo.get("tea-shop")

    assert loaded == store
    assert loaded is not None
    assert loaded.settings.coupon == Coupon("MATCHA10", "10%オフ", "お一人様1回", 5)
    assert loaded.settings.recommendations == (Product("茶筅", "https://shop.example.jp/chasen", None, "2,860円"),)
    assert loaded.settings.frequency_cap_hours == 0
    assert not loaded.settings.flows["cart_recovery"].enabled
    assert repo.get("other-shop") is None


def test_a_store_stored_with_its_settings_as_a_map_reads_the_same_and_a_save_rewrites_it(
    repo: DynamoStoreRepository, svc: Services
) -> None:
    """Stores written before the settings were kept as JSON text still read; the next save leaves JSON."""
    from cartrecovery.adapters.dynamo_codec import to_attr

    store = full_store()
    repo.create(store)
    key = {"store_id": {"S": "tea-shop"}}
    svc.dynamodb.update_item(
        TableName=svc.settings.stores_table,
        Key=key,
        UpdateExpression="SET #settings = :settings REMOVE settings_json",
        ExpressionAttributeNames={"#settings": "settings"},
        ExpressionAttributeValues={":settings": to_attr(store.settings.to_dict())},
    )
    assert repo.get("tea-shop") == store

    repo.save(store)
    item = svc.dynamodb.get_item(TableName=svc.settings.stores_table, Key=key)["Item"]
    assert "settings" not in item and "settings_json" in item
    assert repo.get("tea-shop") == store


def test_a_store_is_read_strongly_consistent_so_a_revoked_secret_stops_at_once(
    repo: DynamoStoreRepository, svc: Services
) -> None:
    # moto is always consistent, so the request itself is what can be checked: an eventually consistent
    # read on DynamoDB may return the store as it was up to about a second before a revocation.
    repo.create(full_store())
    sent: list[dict[str, object]] = []
    svc.dynamodb.meta.events.register("provide-client-params.dynamodb.GetItem", lambda params, **_: sent.append(params))

    assert repo.get("tea-shop") is not None

    assert [params.get("ConsistentRead") for params in sent] == [True]


def test_a_store_id_is_created_once_and_saved_over(repo: DynamoStoreRepository) -> None:
    store = full_store()
    repo.create(store)
    changed = dataclasses.replace(store, settings=dataclasses.replace(store.settings, name="新しい名前"))

    with pytest.raises(AlreadyExists):
        repo.create(changed)
    assert repo.get("tea-shop") == store

    repo.save(changed)
    loaded = repo.get("tea-shop")
    assert loaded is not None and loaded.settings.name == "新しい名前"


def test_list_ids_returns_every_store_sorted(repo: DynamoStoreRepository) -> None:
    for store_id in ("zen", "aoi", "matcha"):
        repo.create(full_store(store_id))

    assert repo.list_ids() == ["aoi", "matcha", "zen"]


def test_cache_serves_a_warm_container_until_it_expires_and_sees_its_own_writes(
    repo: DynamoStoreRepository, svc: Services
) -> None:
    now = [0.0]
    cached = CachedStoreRepository(repo, ttl_seconds=60, monotonic=lambda: now[0])
    assert cached.get("tea-shop") is None  # a miss is not cached: the store created next is seen at once
    repo.create(full_store())
    first = cached.get("tea-shop")
    assert first is not None

    # Another process rotates the secret: this warm container keeps its copy until the TTL passes.
    rotate_secret(repo, "tea-shop", svc.clock)
    assert cached.get("tea-shop") == first
    now[0] = 61.0
    refreshed = cached.get("tea-shop")
    assert refreshed is not None and len(refreshed.webhook_secrets) == 3

    # A write through the cache is visible to the next read at once.
    cached.save(dataclasses.replace(refreshed, salt="new-salt"))
    reread = cached.get("tea-shop")
    assert reread is not None and reread.salt == "new-salt"
