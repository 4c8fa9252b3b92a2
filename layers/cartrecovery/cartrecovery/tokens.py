"""Unsubscribe tokens: signed, scoped to one store and one address, with no readable address inside.

Format: ``<base64url(json payload)>.<base64url(hmac-sha256 truncated to 16 bytes)>``. The payload names the
store, the salted address hash and what the email was (flow, step, variant, send day, and its language for
the pages the link opens), so an unsubscribe can be attributed in the report without any lookup by address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from cartrecovery.domain.store import STORE_ID

MAX_TOKEN_LENGTH = 600


class InvalidToken(Exception):
    """Tampered, truncated or unknown: answered with a 404 page."""


@dataclass(frozen=True)
class UnsubscribeToken:
    store_id: str
    email_hash: str
    flow: str
    step: int
    variant: str
    day: str  # YYYY-MM-DD of the send, so the report counts the unsubscribe against that day's row
    locale: str | None = None  # the email's language, for the pages its link opens (absent in older tokens)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, payload: str) -> str:
    return _b64(hmac.new(key.encode(), payload.encode("ascii"), hashlib.sha256).digest()[:16])


def issue(token: UnsubscribeToken, key: str) -> str:
    body = {
        "s": token.store_id,
        "h": token.email_hash,
        "f": token.flow,
        "n": token.step,
        "v": token.variant,
        "d": token.day,
    }
    if token.locale:
        body["l"] = token.locale
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_mac(key, payload)}"


def peek_store(text: str) -> str:
    """The store a token claims, read before verifying so that store's key can be looked up."""
    store_id = _decode(text).store_id
    if not STORE_ID.match(store_id):
        raise InvalidToken("malformed store")
    return store_id


def verify(text: str, key: str) -> UnsubscribeToken:
    token = _decode(text)
    payload, _, mac = text.partition(".")
    # compare_digest raises TypeError for a str that is not ASCII (a mangled link), where a MAC is just wrong.
    if not mac.isascii() or not hmac.compare_digest(_mac(key, payload), mac):
        raise InvalidToken("bad signature")
    return token


def _decode(text: str) -> UnsubscribeToken:
    if not text or len(text) > MAX_TOKEN_LENGTH or text.count(".") != 1:
        raise InvalidToken("malformed")
    payload, _, _ = text.partition(".")
    try:
        body = json.loads(_unb64(payload))
        return UnsubscribeToken(
            store_id=str(body["s"]),
            email_hash=str(body["h"]),
            flow=str(body["f"]),
            step=int(body["n"]),
            variant=str(body["v"]),
            day=str(body["d"]),
            locale=str(body["l"]) if body.get("l") else None,
        )
    except (ValueError, KeyError, TypeError, UnicodeError, OverflowError) as exc:  # Overflow: a step of 1e999
        raise InvalidToken("malformed") from exc
