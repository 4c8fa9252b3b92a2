"""Create stores and rotate their secrets. A new secret is returned once, to be shown once."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import datetime, timedelta
from typing import Any

from cartrecovery.clock import Clock, isoformat
from cartrecovery.domain.store import (
    STORE_ID,
    SecretEntry,
    Store,
    StoreSettings,
    settings_shape_problem,
    settings_value_problem,
)
from cartrecovery.domain.text import NOT_UNICODE, unpaired_surrogate_path
from cartrecovery.ports import StoreRepository
from cartrecovery.signing import MAX_KEY_BYTES, MIN_KEY_BYTES, SECRET_PREFIX, new_secret, secret_key

# During a rotation the old secret keeps working this long, so senders can switch without losing events.
DEFAULT_OVERLAP = timedelta(hours=24)


class InvalidStore(ValueError):
    pass


def new_store(
    settings: StoreSettings, now: datetime, webhook_secret: str | None = None, shopify_secret: str | None = None
) -> Store:
    if not STORE_ID.match(settings.store_id):
        raise InvalidStore("store id must be 1-40 characters of a-z, 0-9 and '-', starting with a letter or digit")
    created = isoformat(now)
    return Store(
        settings=settings,
        webhook_secrets=(SecretEntry(webhook_secret or new_secret(), created),),
        shopify_secrets=(SecretEntry(shopify_secret or secrets.token_hex(32), created),),
        token_key=secrets.token_urlsafe(32),
        salt=secrets.token_urlsafe(24),
    )


def create_store(
    repo: StoreRepository,
    settings_data: dict[str, Any],
    clock: Clock,
    *,
    webhook_secret: str | None = None,
    shopify_secret: str | None = None,
) -> Store:
    """A new store from settings as an operator writes them (flags and a JSON file); ``InvalidStore`` names the
    first thing wrong, checked in the order it would be fixed: the text, the shape, then the values."""
    broken = unpaired_surrogate_path(settings_data)
    if broken is not None:
        raise InvalidStore(f"invalid store settings: {broken} {NOT_UNICODE}")
    problem = settings_shape_problem(settings_data)
    if problem is not None:
        raise InvalidStore(f"invalid store settings: {problem}")
    try:
        settings = StoreSettings.from_dict(settings_data)
    except KeyError as exc:
        raise InvalidStore(f"invalid store settings: {exc} is required") from exc
    except (ValueError, TypeError) as exc:
        raise InvalidStore(f"invalid store settings: {exc}") from exc
    problem = settings_value_problem(settings)
    if problem is not None:
        raise InvalidStore(f"invalid store settings: {problem}")
    for kind, value in (("webhook", webhook_secret), ("shopify", shopify_secret)):
        if value is not None:
            _check_secret_value(kind, value)
    store = new_store(settings, clock.now(), webhook_secret, shopify_secret)
    repo.create(store)
    return store


def rotate_secret(
    repo: StoreRepository,
    store_id: str,
    clock: Clock,
    *,
    kind: str = "webhook",
    overlap: timedelta = DEFAULT_OVERLAP,
    value: str | None = None,
) -> str:
    """Add a new secret and let the current ones expire after ``overlap``; returns the new secret.
    ``value`` sets a secret chosen elsewhere (Shopify signs with the app's or the shop's own key)."""
    if overlap < timedelta(0):
        raise InvalidStore("the overlap must be 0 hours or more")
    if value is not None:
        _check_secret_value(kind, value)
    store = _get(repo, store_id)
    now = clock.now()
    fresh = value or (new_secret() if kind == "webhook" else secrets.token_hex(32))
    current = store.webhook_secrets if kind == "webhook" else store.shopify_secrets
    expiry = isoformat(now + overlap)
    kept = tuple(s if s.expires_at else dataclasses.replace(s, expires_at=expiry) for s in current if s.in_force(now))
    updated = (*kept, SecretEntry(fresh, isoformat(now)))
    repo.save(dataclasses.replace(store, **{f"{kind}_secrets": updated}))
    return fresh


def _check_secret_value(kind: str, value: str) -> None:
    """A secret chosen elsewhere must be one that can sign: stored as it is, a malformed one would be in
    force yet match no request."""
    if kind == "webhook":
        try:
            key = secret_key(value) if value.startswith(SECRET_PREFIX) else b""
        except ValueError:
            key = b""
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            raise InvalidStore(
                f"a webhook secret is {SECRET_PREFIX} followed by the base64 of {MIN_KEY_BYTES}-{MAX_KEY_BYTES} "
                "random bytes (Standard Webhooks); leave --value out to have one made"
            )
    elif not value or len(value) > 200 or not value.isascii() or not value.isprintable() or " " in value:
        raise InvalidStore(
            "a Shopify secret is the app's key as Shopify shows it: up to 200 ASCII characters, no spaces"
        )


def revoke_secrets(repo: StoreRepository, store_id: str, clock: Clock, *, kind: str = "webhook") -> int:
    """Expire every secret but the newest at once; returns how many were revoked."""
    store = _get(repo, store_id)
    now = clock.now()
    current = store.webhook_secrets if kind == "webhook" else store.shopify_secrets
    # Rotation appends, so on a tie of created_at (same second) the later entry is the newer one.
    newest = max(reversed(current), key=lambda s: s.created_at)
    kept = (dataclasses.replace(newest, expires_at=None),)
    repo.save(dataclasses.replace(store, **{f"{kind}_secrets": kept}))
    return sum(1 for s in current if s is not newest and s.in_force(now))


def _get(repo: StoreRepository, store_id: str) -> Store:
    store = repo.get(store_id)
    if store is None:
        raise InvalidStore(f"no store {store_id!r}")
    return store
