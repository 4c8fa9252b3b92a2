"""``cartrecovery catalog upload|show``: the product catalog step 3 recommends from.

cartrecovery [--local | --stack NAME] catalog upload --store shop1 FILE     (JSON list or CSV)
cartrecovery [--local | --stack NAME] catalog show --store shop1 [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cartrecovery.cli.common import ServicesFor, find_store, no_store
from cartrecovery.domain.catalog import COLUMNS, MAX_PRODUCTS, InvalidCatalog
from cartrecovery.ports import CatalogTooLarge
from cartrecovery.usecases.catalog import UnknownStore, upload_catalog


def cmd_upload(args: argparse.Namespace, services: ServicesFor) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    svc = services(args)
    try:
        uploaded = upload_catalog(svc.stores, svc.stores, args.store, data, path.name, svc.clock)
    except UnknownStore:
        no_store(args.store)
        return 1
    except InvalidCatalog as exc:
        print(f"error: {path} cannot be used as a catalog; nothing was stored:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except CatalogTooLarge as exc:
        print(f"error: {exc}; nothing was stored", file=sys.stderr)
        return 1
    print(f"stored {uploaded.products:,} product(s), {uploaded.size:,} bytes, for store {args.store}")
    if uploaded.out_of_stock:
        print(f"{uploaded.out_of_stock:,} of them out of stock: never recommended until a new upload says otherwise")
    if uploaded.without_price:
        print(f"{uploaded.without_price:,} of them without a price: shown without one, and never as an up-sell")
    print("It replaces any earlier catalog.")
    if not args.local:
        print("Sends use it within the send function's store cache time (STORE_CACHE_SECONDS, 60 s).")
    return 0


def cmd_show(args: argparse.Namespace, services: ServicesFor) -> int:
    svc = services(args)
    if find_store(svc, args.store) is None:
        return 1
    catalog = svc.stores.get_catalog(args.store)
    if args.json:  # the same shape an upload takes
        products = catalog.products if catalog else ()
        rows: list[dict[str, Any]] = [
            {
                "sku": p.sku,
                "name": p.name,
                "url": p.url,
                "image_url": p.image_url,
                "price": None if p.price is None else str(p.price),
                "in_stock": p.in_stock,
            }
            for p in products
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if catalog is None:
        print(f"store {args.store} has no catalog (recommendations come from its settings only)")
        return 0
    print(f"store {args.store}: {len(catalog.products):,} product(s), uploaded {catalog.updated_at}")
    for p in catalog.products:
        price = "-" if p.price is None else str(p.price)
        stock = "" if p.in_stock else "  (out of stock)"
        print(f"  {p.sku}  {price}  {p.name}  {p.url}{stock}")
    return 0


def add_catalog_parsers(commands: Any, services: ServicesFor) -> None:
    """Register ``catalog`` on the CLI's subcommands."""
    catalog = commands.add_parser("catalog", help="the products step 3 recommends from: upload, show")
    sub = catalog.add_subparsers(dest="catalog_command", required=True)
    upload = sub.add_parser(
        "upload",
        help="check and store a store's product catalog (replaces any earlier one)",
        description=f"FILE is a JSON list of objects or a CSV file with a header row; fields {', '.join(COLUMNS)} "
        "(sku, name and url required; https URLs; price in the store's currency; in_stock true or false, "
        f"default true). At most {MAX_PRODUCTS:,} products. Any invalid row rejects the whole file, naming "
        "the row; other columns are ignored.",
    )
    upload.add_argument("--store", required=True)
    upload.add_argument("file", metavar="FILE")
    upload.set_defaults(func=lambda args: cmd_upload(args, services))
    show = sub.add_parser("show", help="print a store's catalog")
    show.add_argument("--store", required=True)
    show.add_argument("--json", action="store_true", help="as a JSON list, in the shape an upload takes")
    show.set_defaults(func=lambda args: cmd_show(args, services))
