"""Keyed hashes that stand for a shopper's address wherever the address itself must not be kept or shown."""

from __future__ import annotations

import hashlib
import hmac


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_hash(salt: str, email: str) -> str:
    """A per-store salted hash of an address: the key of contacts and suppressions, safe in logs."""
    return hmac.new(salt.encode(), normalize_email(email).encode(), hashlib.sha256).hexdigest()[:40]


def customer_hash(salt: str, customer_id: str) -> str:
    return hmac.new(salt.encode(), b"id:" + customer_id.encode(), hashlib.sha256).hexdigest()[:40]
