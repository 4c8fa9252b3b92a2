"""Standard Webhooks v1 signatures (and Shopify's HMAC), verified over the exact received bytes.

Every failure, whatever its cause (malformed header, bad base64, wrong key, stale timestamp), is reported
as the single ``SignatureRejected``: callers answer one 401 body for all, so nothing leaks which part failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)
# The key sizes Standard Webhooks allows a secret (the ones made here are 32 bytes).
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
TOLERANCE_SECONDS = 300
# A webhook id is the event log's sort key, which DynamoDB caps at 1,024 bytes: 256 characters of UTF-8 fit.
MAX_WEBHOOK_ID = 256


class SignatureRejected(Exception):
    """The request is not provably from the store (one reason for all failures, by design)."""


def new_secret(nbytes: int = 32) -> str:
    """A fresh ``whsec_`` secret: base64 of random bytes, as Standard Webhooks prescribes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the base64-decoded part after the prefix."""
    body = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("secret is not base64") from exc


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one attempt; what a store's backend puts in ``webhook-signature``."""
    signed = webhook_id.encode() + b"." + str(timestamp).encode() + b"." + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def signed_headers(secret: str, webhook_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers a store's backend posts ``body`` (JSON) with, signed now unless ``timestamp`` is given."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, webhook_id, stamp, body),
    }


def verify(
    secrets_in_force: Iterable[str],
    webhook_id: str | None,
    timestamp: str | None,
    signature_header: str | None,
    body: bytes,
    now_epoch: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise ``SignatureRejected`` unless one listed ``v1`` signature matches one secret in force."""
    try:
        if not webhook_id or not timestamp or not signature_header:
            raise SignatureRejected("missing header")
        if len(webhook_id) > MAX_WEBHOOK_ID or not timestamp.isdigit() or len(timestamp) > 12:
            raise SignatureRejected("malformed header")
        sent_at = int(timestamp)
        if abs(now_epoch - sent_at) > tolerance:
            raise SignatureRejected("timestamp outside tolerance")
        offered = []
        for part in signature_header.split(" "):
            version, _, value = part.partition(",")
            if version == "v1" and value:
                offered.append(value.encode("ascii"))
        if not offered:
            raise SignatureRejected("no v1 signature")
        for secret in secrets_in_force:
            expected = sign(secret, webhook_id, sent_at, body)[3:].encode("ascii")
            if any(hmac.compare_digest(expected, candidate) for candidate in offered):
                return
        raise SignatureRejected("no signature matches")
    except SignatureRejected:
        raise
    except (ValueError, UnicodeError, TypeError) as exc:
        raise SignatureRejected("malformed header") from exc


def verify_shopify(secrets_in_force: Iterable[str], hmac_header: str | None, body: bytes) -> None:
    """Shopify: base64 HMAC-SHA256 of the raw body with the app secret (the secret's own bytes)."""
    if not hmac_header:
        raise SignatureRejected("missing header")
    try:
        offered = hmac_header.strip().encode("ascii")
    except UnicodeError as exc:
        raise SignatureRejected("malformed header") from exc
    for secret in secrets_in_force:
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
        if hmac.compare_digest(expected, offered):
            return
    raise SignatureRejected("no signature matches")


def sign_shopify(secret: str, body: bytes) -> str:
    """The ``X-Shopify-Hmac-SHA256`` value for a body (used by tests and the local client)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode("ascii")
