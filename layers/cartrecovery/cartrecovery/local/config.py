"""What the local stack reads from its environment (CONTRACT §3), checked before anything starts.

| variable | default | meaning |
|---|---|---|
| ``PORT`` | 3000 | HTTP port on 127.0.0.1 (``0`` picks a free one; the URL is printed and written) |
| ``CARTRECOVERY_DEMO_SECRET`` | generated | the demo store's ``whsec_`` secret |
| ``CARTRECOVERY_DEMO_SHOPIFY_SECRET`` | generated | the demo store's Shopify secret |
| ``CARTRECOVERY_CLOCK_START`` | now | RFC 3339 start of the virtual clock |

Local extension: ``CARTRECOVERY_LOCAL_CONCURRENCY`` (default 1) is how many requests each API function
(ingest, unsubscribe) serves at once, like Lambda execution environments. One is the safe default: the
emulator does not lock its tables, so its conditional writes are not guaranteed atomic under concurrent
requests the way DynamoDB's are.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cartrecovery.clock import parse_rfc3339
from cartrecovery.signing import new_secret, secret_key

DEFAULT_PORT = 3000
HOST = "127.0.0.1"


class LocalConfigError(ValueError):
    """A setting is malformed: the message names the variable and what is expected."""


@dataclass(frozen=True)
class LocalConfig:
    port: int
    webhook_secret: str
    shopify_secret: str
    clock_start: datetime
    state_dir: Path  # where demo-store.json and runtime.json are written (``.local`` of the working dir)
    host: str = HOST
    api_concurrency: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> LocalConfig:
        env = os.environ if environ is None else environ
        return cls(
            port=_port(env.get("PORT", "")),
            webhook_secret=_webhook_secret(env.get("CARTRECOVERY_DEMO_SECRET", "")),
            shopify_secret=env.get("CARTRECOVERY_DEMO_SHOPIFY_SECRET", "").strip() or secrets.token_hex(32),
            clock_start=_clock_start(env.get("CARTRECOVERY_CLOCK_START", "")),
            state_dir=(cwd or Path.cwd()) / ".local",
            api_concurrency=_concurrency(env.get("CARTRECOVERY_LOCAL_CONCURRENCY", "")),
        )


def _port(text: str) -> int:
    text = text.strip()
    if not text:
        return DEFAULT_PORT
    if not text.isdigit() or int(text) > 65535:
        raise LocalConfigError(f"PORT must be a port number (0-65535), got {text!r}")
    return int(text)


def _webhook_secret(text: str) -> str:
    text = text.strip()
    if not text:
        return new_secret()
    try:
        key = secret_key(text)
    except ValueError:
        key = b""
    if not text.startswith("whsec_") or not key:
        raise LocalConfigError(
            "CARTRECOVERY_DEMO_SECRET must be a Standard Webhooks secret: 'whsec_' followed by the base64 of "
            "random bytes (24 to 64 recommended)"
        )
    return text


def _clock_start(text: str) -> datetime:
    text = text.strip()
    if not text:
        return datetime.now(UTC)
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise LocalConfigError(
            f"CARTRECOVERY_CLOCK_START must be RFC 3339 with an offset, e.g. 2026-12-01T10:00:00+09:00 (got {text!r})"
        ) from exc


def _concurrency(text: str) -> int:
    text = text.strip()
    if not text:
        return 1
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise LocalConfigError(f"CARTRECOVERY_LOCAL_CONCURRENCY must be a number from 1 to 64, got {text!r}")
    return int(text)
