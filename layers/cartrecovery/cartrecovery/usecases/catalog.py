"""A store's product catalog: upload (checked first, all or nothing) and show.

An upload replaces the whole catalog. Nothing is stored unless every row is valid and the catalog fits in
what a store may keep (``adapters/stores.py``); step 3 then recommends from it (``domain/content.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cartrecovery.clock import Clock, isoformat
from cartrecovery.domain.catalog import Catalog, parse_catalog
from cartrecovery.ports import Catalogs, StoreRepository, UnknownStore


@dataclass(frozen=True)
class CatalogUploaded:
    products: int
    size: int  # bytes stored
    out_of_stock: int
    without_price: int


def upload_catalog(
    stores: StoreRepository, catalogs: Catalogs, store_id: str, data: bytes, filename: str, clock: Clock
) -> CatalogUploaded:
    """Check the file and, when every row is valid, make it the store's catalog.

    Raises ``UnknownStore``, ``InvalidCatalog`` (each problem with its row) or ``CatalogTooLarge``, with
    nothing stored."""
    if stores.get(store_id) is None:
        raise UnknownStore(store_id)
    products = parse_catalog(data, filename)
    size = catalogs.save_catalog(store_id, Catalog(products, isoformat(clock.now())))
    return CatalogUploaded(
        products=len(products),
        size=size,
        out_of_stock=sum(1 for p in products if not p.in_stock),
        without_price=sum(1 for p in products if p.price is None),
    )
