"""Erase one shopper of one store (a data subject's request): carts, their events, pending schedules, the
address's contact records, and the messages' cart ids and details. What survives is keyed by the salted
hash and holds no address: the stops (a suppression, an opt-out), so the address is never emailed again by
mistake; the consent proof, until its own expiry; and each message's report row and hash, so that a
complaint or bounce arriving after the erasure still suppresses (docs/decisions.md, Erasure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cartrecovery.domain.store import Store
from cartrecovery.identity import normalize_email
from cartrecovery.usecases.ingest import contact_keys


@dataclass(frozen=True)
class Erased:
    carts: int
    events: int
    messages: int
    schedules: int


def erase_shopper(
    store: Store, email: str, *, carts: Any, events: Any, ledger: Any, contacts: Any, schedules: Any
) -> Erased:
    """Operator-only (the CLI runs with the operator's credentials, not a function's)."""
    wanted = normalize_email(email)
    mine = [
        c
        for c in carts.list_for_store(store.store_id)
        if c.customer.email and normalize_email(c.customer.email) == wanted
    ]
    cart_ids = {c.cart_id for c in mine}
    customer_ids = {c.customer.id for c in mine if c.customer.id}
    # Flow entries (stores measuring a holdout group) are kept as messages are: their row, no cart id.
    message_ids = {m for c in mine for r in c.steps.values() for m in (r.message_id, r.entry_id) if m}
    erased_events = events.delete_for_carts(store.store_id, cart_ids)
    for message_id in message_ids:
        ledger.strip(message_id)  # kept without its cart or details: a late complaint must still suppress
    timers = [c.timer for c in mine if c.timer is not None]
    for timer in timers:
        schedules.delete(timer.schedule_name)
    for cart in mine:
        carts.delete(store.store_id, cart.cart_id)
    keys = contact_keys(store, email, None) + [k for cid in customer_ids for k in contact_keys(store, None, cid)]
    for key in keys:
        contacts.erase(store.store_id, key)
    return Erased(carts=len(mine), events=erased_events, messages=len(message_ids), schedules=len(timers))
