"""What the CLI's command modules share: how they get their services and find the store they act on."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from cartrecovery.domain.store import Store
from cartrecovery.wiring import Services

ServicesFor = Callable[[argparse.Namespace], Services]


def find_store(svc: Services, store_id: str) -> Store | None:
    """The store, or None after telling the user it does not exist (the command then exits 1)."""
    store = svc.stores.get(store_id)
    if store is None:
        no_store(store_id)
    return store


def no_store(store_id: str) -> None:
    print(f"error: no store {store_id!r}", file=sys.stderr)
