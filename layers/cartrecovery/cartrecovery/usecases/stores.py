"""Create stores, change their settings and rotate their secrets. A new secret is returned once, to be shown
once."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cartrecovery.clock import Clock, isoformat, parse_rfc3339
from cartrecovery.domain.store import (
    STORE_ID,
    SecretEntry,
    Store,
    StoreSettings,
    settings_shape_problem,
    settings_value_problem,
)
from cartrecovery.domain.text import NOT_UNICODE, unpaired_surrogate_path
from cartrecovery.ports import SettingsUpdates, StoreRepository, UnknownStore
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
    check: Callable[[Store], str | None] | None = None,
) -> Store:
    """A new store from settings as an operator writes them (flags and a JSON file); ``InvalidStore`` names the
    first thing wrong, checked in the order it would be fixed: the text, the shape, then the values.
    ``check`` may refuse the store before it is saved (the CLI renders every step with it)."""
    settings = checked_settings(settings_data)
    for kind, value in (("webhook", webhook_secret), ("shopify", shopify_secret)):
        if value is not None:
            _check_secret_value(kind, value)
    store = new_store(settings, clock.now(), webhook_secret, shopify_secret)
    _refuse(check(store) if check else None)
    repo.create(store)
    return store


def checked_settings(data: dict[str, Any]) -> StoreSettings:
    """Settings from their JSON form, or ``InvalidStore`` naming the first thing wrong: the text, the shape,
    then the values (the order they would be fixed in)."""
    broken = unpaired_surrogate_path(data)
    if broken is not None:
        raise InvalidStore(f"invalid store settings: {broken} {NOT_UNICODE}")
    _refuse(settings_shape_problem(data))
    try:
        settings = StoreSettings.from_dict(data)
    except KeyError as exc:
        raise InvalidStore(f"invalid store settings: {exc} is required") from exc
    except (ValueError, TypeError) as exc:
        raise InvalidStore(f"invalid store settings: {exc}") from exc
    _refuse(settings_value_problem(settings))
    return settings


def _refuse(problem: str | None) -> None:
    if problem is not None:
        raise InvalidStore(f"invalid store settings: {problem}")


@dataclass(frozen=True)
class SettingsChange:
    before: StoreSettings
    after: StoreSettings

    @property
    def changed(self) -> list[str]:
        """The settings that differ, as dotted paths into the JSON form (``legal.address``, ``coupon``)."""
        return _changed_paths(self.before.to_dict(), self.after.to_dict(), "")


def update_store(
    repo: SettingsUpdates,
    store_id: str,
    patch: dict[str, Any],
    *,
    check: Callable[[Store], str | None] | None = None,
) -> SettingsChange:
    """Apply ``patch`` to the store's settings as a JSON merge patch (RFC 7396) of the form ``store show``
    prints: an object merges into the object it names, ``null`` removes a setting (back to its default),
    anything else replaces it, a list included. The result is checked as ``store create`` checks settings,
    then by ``check``; ``InvalidStore`` names the first problem and nothing is saved. The store's secrets,
    keys and salt are not touched (``rotate-secret`` changes secrets). ``UnknownStore`` when there is none."""
    broken = unpaired_surrogate_path(patch)
    if broken is not None:
        raise InvalidStore(f"invalid store settings: {broken} {NOT_UNICODE}")
    if patch.get("store_id", store_id) != store_id:
        raise InvalidStore(f"store_id cannot change (it is {store_id!r}): events and links carry it")

    def change(store: Store) -> StoreSettings:
        settings = checked_settings(merge_patch(store.settings.to_dict(), patch))
        if settings != store.settings:
            _refuse(check(dataclasses.replace(store, settings=settings)) if check else None)
        return settings

    result = repo.update_settings(store_id, change)
    if result is None:
        raise UnknownStore(store_id)
    return SettingsChange(*result)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: ``patch`` applied to ``target`` (neither is changed)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _changed_paths(before: Any, after: Any, prefix: str) -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            path
            for key in sorted(before.keys() | after.keys(), key=str)
            for path in _changed_paths(before.get(key), after.get(key), f"{prefix}{key}.")
        ]
    return [prefix.rstrip(".")] if before != after else []


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
    # Every secret in force stops after the overlap at the latest: one already ending sooner keeps its end,
    # and one ending later is cut short (a rotation with no overlap after a leak stops them all).
    ends = now + overlap
    kept = tuple(
        s
        if s.expires_at and parse_rfc3339(s.expires_at) <= ends
        else dataclasses.replace(s, expires_at=isoformat(ends))
        for s in current
        if s.in_force(now)
    )
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
