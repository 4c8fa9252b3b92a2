"""Stores in DynamoDB: settings as one JSON string, secrets beside them (the table is encrypted at rest).

The settings are kept as JSON text rather than a DynamoDB map because ingest reads the store on every
request: botocore turns a map of a few hundred typed values into Python one node at a time, which cost more
CPU than the rest of the request's own work, while a string is handed over whole and ``json.loads`` (C)
decodes it. Items written before this (``settings`` as a map) are still read.

A store's uploaded email templates live in an item of their own, ``store_id = "<store>#templates"``, so the
store item that ingest reads on every request stays small (a read costs by item size); only the send path,
through its cache, and the operator CLI read the templates. Store ids cannot contain ``#``.

The store's product catalog is kept the same way, in ``<store>#catalog``: its rows as compact JSON,
zlib-compressed into one binary attribute, at most ``MAX_CATALOG_BYTES``: a typical product (a Japanese
name, two URLs) takes about 50 bytes compressed, so the 5,000 products a catalog may have take about 250 KB.
"""

from __future__ import annotations

import functools
import json
import time
import zlib
from collections.abc import Callable
from typing import Any

from cartrecovery.adapters.dynamo_codec import from_item, to_item
from cartrecovery.domain.catalog import Catalog, decode_products, encode_products
from cartrecovery.domain.store import STORE_ID, SecretEntry, Store, StoreSettings
from cartrecovery.ports import (
    AlreadyExists,
    Catalogs,
    CatalogTooLarge,
    ConcurrentUpdate,
    SettingsUpdates,
    StoreRepository,
    TemplateOverrides,
)

TEMPLATES_SUFFIX = "#templates"
CATALOG_SUFFIX = "#catalog"
# DynamoDB items are at most 400 KB; the compressed catalog shares its item with the key and a timestamp.
MAX_CATALOG_BYTES = 350 * 1024
# A settings update re-reads and re-applies when another one landed between its read and its write.
SETTINGS_ATTEMPTS = 5


class DynamoStoreRepository:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def get(self, store_id: str) -> Store | None:
        # Not a store id (``<store>#templates`` and the like; "" which DynamoDB refuses as a key): no store.
        if not STORE_ID.match(store_id):
            return None
        # Strongly consistent: an eventually consistent read may return the store as it was up to about a
        # second earlier. A read past the ingest's cache (a rotated secret) and the first read after the CLI
        # has waited out that cache (a revoked one) must both see the change.
        item = self.client.get_item(TableName=self.table, Key={"store_id": {"S": store_id}}, ConsistentRead=True)
        return decode_store(from_item(item["Item"])) if "Item" in item else None

    def create(self, store: Store) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item=to_item(encode_store(store)),
                ConditionExpression="attribute_not_exists(store_id)",
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise AlreadyExists(store.store_id) from exc

    def save(self, store: Store) -> None:
        self.client.put_item(TableName=self.table, Item=to_item(encode_store(store)))

    def update_settings(
        self, store_id: str, change: Callable[[Store], StoreSettings]
    ) -> tuple[StoreSettings, StoreSettings] | None:
        """Only ``settings_json`` is written, on condition that it still holds the text read: a secret rotated
        meanwhile is kept, and settings changed meanwhile make ``change`` run again on them."""
        if not STORE_ID.match(store_id):  # as ``get``: no store has another id
            return None
        key = {"store_id": {"S": store_id}}
        for _ in range(SETTINGS_ATTEMPTS):
            item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
            if item is None:
                return None
            store = decode_store(from_item(item))
            settings = change(store)
            if settings == store.settings:
                return store.settings, settings
            seen = item.get("settings_json")
            values = {":new": {"S": settings_text(settings)}} | ({":seen": seen} if seen else {})
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    # Stores written before settings were JSON text hold a ``settings`` map: it is replaced.
                    UpdateExpression="SET settings_json = :new REMOVE settings",
                    ConditionExpression="settings_json = :seen" if seen else "attribute_not_exists(settings_json)",
                    ExpressionAttributeValues=values,
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                continue
            return store.settings, settings
        raise ConcurrentUpdate(f"store {store_id!r} kept changing under {SETTINGS_ATTEMPTS} attempts")

    def list_ids(self) -> list[str]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ProjectionExpression": "store_id"}
        while True:
            page = self.client.scan(**kwargs)
            ids += [i["store_id"]["S"] for i in page.get("Items", []) if "#" not in i["store_id"]["S"]]
            if "LastEvaluatedKey" not in page:
                return sorted(ids)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get_templates(self, store_id: str) -> dict[str, str]:
        key = {"store_id": {"S": store_id + TEMPLATES_SUFFIX}}
        item = self.client.get_item(TableName=self.table, Key=key).get("Item")
        if not item or "templates" not in item:
            return {}
        return {name: value["S"] for name, value in item["templates"]["M"].items()}

    def save_templates(self, store_id: str, templates: dict[str, str], updated_at: str) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "store_id": {"S": store_id + TEMPLATES_SUFFIX},
                "templates": {"M": {name: {"S": source} for name, source in templates.items()}},
                "updated_at": {"S": updated_at},
            },
        )

    def delete_templates(self, store_id: str) -> bool:
        answer = self.client.delete_item(
            TableName=self.table, Key={"store_id": {"S": store_id + TEMPLATES_SUFFIX}}, ReturnValues="ALL_OLD"
        )
        return bool(answer.get("Attributes"))

    def get_catalog(self, store_id: str) -> Catalog | None:
        key = {"store_id": {"S": store_id + CATALOG_SUFFIX}}
        item = self.client.get_item(TableName=self.table, Key=key).get("Item")
        if not item or "products" not in item:
            return None
        products = decode_products(zlib.decompress(item["products"]["B"]))
        return Catalog(products, item.get("updated_at", {}).get("S", ""))

    def save_catalog(self, store_id: str, catalog: Catalog) -> int:
        packed = zlib.compress(encode_products(catalog.products), 9)
        if len(packed) > MAX_CATALOG_BYTES:
            raise CatalogTooLarge(
                f"the catalog takes {len(packed):,} bytes compressed; a store's catalog may take at most "
                f"{MAX_CATALOG_BYTES:,} (it is kept in one DynamoDB item, at most 400 KB): leave out products "
                "you would not recommend, or shorten long names and URLs"
            )
        self.client.put_item(
            TableName=self.table,
            Item={
                "store_id": {"S": store_id + CATALOG_SUFFIX},
                "products": {"B": packed},
                "count": {"N": str(len(catalog.products))},
                "updated_at": {"S": catalog.updated_at},
            },
        )
        return len(packed)


class CachedStoreRepository:
    """Reads a store at most once per ``ttl_seconds`` in a warm process: settings and secrets change rarely,
    and the store would otherwise be read on every invocation. Misses are not cached. Send keeps a store a
    minute. Ingest keeps it ``INGEST_STORE_CACHE_SECONDS`` and calls ``refresh`` before it refuses a
    signature, so a secret added since the copy was read works at once; the CLI waits out the cache time
    after it ends a secret, so the secret has stopped everywhere when the command returns.

    The store's uploaded templates and catalog are cached the same way (including "none uploaded"), so a new
    upload reaches a warm send function within ``ttl_seconds``."""

    def __init__(
        self, inner: StoreRepository, ttl_seconds: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.ttl_seconds = ttl_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, Store]] = {}
        self._templates: dict[str, tuple[float, dict[str, str]]] = {}
        self._catalogs: dict[str, tuple[float, Catalog | None]] = {}

    def get(self, store_id: str) -> Store | None:
        cached = self._cache.get(store_id)
        if cached is not None and self._monotonic() - cached[0] < self.ttl_seconds:
            return cached[1]
        store = self.inner.get(store_id)
        if store is None:
            self._cache.pop(store_id, None)
        else:
            self._cache[store_id] = (self._monotonic(), store)
        return store

    def refresh(self, store_id: str) -> Store | None:
        self._cache.pop(store_id, None)
        return self.get(store_id)

    def create(self, store: Store) -> None:
        self._cache.pop(store.store_id, None)
        self.inner.create(store)

    def save(self, store: Store) -> None:
        self._cache.pop(store.store_id, None)
        self.inner.save(store)

    def list_ids(self) -> list[str]:
        return self.inner.list_ids()

    def update_settings(
        self, store_id: str, change: Callable[[Store], StoreSettings]
    ) -> tuple[StoreSettings, StoreSettings] | None:
        self._cache.pop(store_id, None)
        if not isinstance(self.inner, SettingsUpdates):
            raise TypeError(f"{type(self.inner).__name__} cannot update settings")
        return self.inner.update_settings(store_id, change)

    def _cached[V](self, cache: dict[str, tuple[float, V]], store_id: str, load: Callable[[], V]) -> V:
        """The store's entry in ``cache`` while younger than ``ttl_seconds``, else ``load()``, kept."""
        cached = cache.get(store_id)
        if cached is not None and self._monotonic() - cached[0] < self.ttl_seconds:
            return cached[1]
        value = load()
        cache[store_id] = (self._monotonic(), value)
        return value

    def get_templates(self, store_id: str) -> dict[str, str]:
        return self._cached(self._templates, store_id, lambda: self._overrides().get_templates(store_id))

    def save_templates(self, store_id: str, templates: dict[str, str], updated_at: str) -> None:
        self._templates.pop(store_id, None)
        self._overrides().save_templates(store_id, templates, updated_at)

    def delete_templates(self, store_id: str) -> bool:
        self._templates.pop(store_id, None)
        return self._overrides().delete_templates(store_id)

    def get_catalog(self, store_id: str) -> Catalog | None:
        return self._cached(self._catalogs, store_id, lambda: self._catalog_store().get_catalog(store_id))

    def save_catalog(self, store_id: str, catalog: Catalog) -> int:
        self._catalogs.pop(store_id, None)
        return self._catalog_store().save_catalog(store_id, catalog)

    def _catalog_store(self) -> Catalogs:
        if not isinstance(self.inner, Catalogs):
            raise TypeError(f"{type(self.inner).__name__} keeps no catalog")
        return self.inner

    def _overrides(self) -> TemplateOverrides:
        if not isinstance(self.inner, TemplateOverrides):
            raise TypeError(f"{type(self.inner).__name__} keeps no templates")
        return self.inner


def encode_store(store: Store) -> dict[str, Any]:
    def secrets(entries: tuple[SecretEntry, ...]) -> list[dict[str, Any]]:
        return [{"secret": s.secret, "created_at": s.created_at, "expires_at": s.expires_at} for s in entries]

    return {
        "store_id": store.store_id,
        "settings_json": settings_text(store.settings),
        "webhook_secrets": secrets(store.webhook_secrets),
        "shopify_secrets": secrets(store.shopify_secrets),
        "token_key": store.token_key,
        "salt": store.salt,
    }


def settings_text(settings: StoreSettings) -> str:
    return json.dumps(settings.to_dict(), ensure_ascii=False, separators=(",", ":"))


def decode_store(data: dict[str, Any]) -> Store:
    def secrets(raw: list[dict[str, Any]]) -> tuple[SecretEntry, ...]:
        return tuple(SecretEntry(s["secret"], s["created_at"], s.get("expires_at")) for s in raw)

    return Store(
        settings=_settings_from_json(data["settings_json"])
        if "settings_json" in data
        else StoreSettings.from_dict(data["settings"]),
        webhook_secrets=secrets(data.get("webhook_secrets", [])),
        shopify_secrets=secrets(data.get("shopify_secrets", [])),
        token_key=data["token_key"],
        salt=data["salt"],
    )


@functools.lru_cache(maxsize=64)
def _settings_from_json(text: str) -> StoreSettings:
    """Settings decoded once per distinct text: ingest reads the store on every request (so that a revoked
    secret stops working at once), but its settings rarely change, and validating them again each time was
    a tenth of a request's CPU. ``StoreSettings`` is immutable, so sharing one between requests is safe."""
    return StoreSettings.from_dict(json.loads(text))
