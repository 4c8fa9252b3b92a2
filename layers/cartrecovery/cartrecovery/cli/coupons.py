"""``cartrecovery coupons upload|show``: a store's pool of single-use coupon codes.

cartrecovery [--local | --stack NAME] coupons upload --store shop1 FILE
cartrecovery [--local | --stack NAME] coupons show --store shop1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cartrecovery.cli.common import ServicesFor, find_store, no_store
from cartrecovery.domain.store import POOL_COUPON, Store
from cartrecovery.ports import PoolBusy
from cartrecovery.usecases.coupons import InvalidCodes, UnknownStore, upload_codes

SHOWN_SKIPPED = 10  # codes named in a "skipped" message; the rest are counted


def _listed(codes: list[str]) -> str:
    shown = ", ".join(codes[:SHOWN_SKIPPED])
    return shown + (f" and {len(codes) - SHOWN_SKIPPED} more" if len(codes) > SHOWN_SKIPPED else "")


def _pool_note(store: Store | None) -> str | None:
    coupon = store.settings.coupon if store else None
    if coupon is None or coupon.kind != POOL_COUPON:
        return (
            'note: the store\'s coupon is not a pool (settings "coupon": {"kind": "pool", ...}); '
            "its emails do not use these codes until it is"
        )
    return None


def cmd_upload(args: argparse.Namespace, services: ServicesFor) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    svc = services(args)
    try:
        uploaded = upload_codes(svc.stores, svc.coupons, args.store, text, svc.clock.now())
    except UnknownStore:
        no_store(args.store)
        return 1
    except InvalidCodes as exc:
        print(f"error: {path} has lines that are not coupon codes; nothing was added:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except PoolBusy:
        print(f"error: another upload to store {args.store}'s pool is in progress; try again later", file=sys.stderr)
        return 1
    if uploaded.header:
        print(f"skipped the header line {uploaded.header!r}")
    if uploaded.duplicates:
        print(
            f"skipped {len(uploaded.duplicates)} repeated line(s), each code added once: {_listed(uploaded.duplicates)}"
        )
    if uploaded.already_in_pool:
        print(
            f"skipped {len(uploaded.already_in_pool)} code(s) already in the pool: {_listed(uploaded.already_in_pool)}"
        )
    print(f"added {uploaded.added} code(s) to store {args.store}'s pool; {uploaded.left} of {uploaded.total} left")
    note = _pool_note(svc.stores.get(args.store))
    if note:
        print(note, file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace, services: ServicesFor) -> int:
    svc = services(args)
    store = find_store(svc, args.store)
    if store is None:
        return 1
    stats = svc.coupons.stats(args.store)
    print(f"store {args.store}: {stats.total} code(s) uploaded, {stats.handed_out} handed out, {stats.left} left")
    note = _pool_note(store)
    if note:
        print(note, file=sys.stderr)
    return 0


def add_coupon_parsers(commands: Any, services: ServicesFor) -> None:
    """Register ``coupons`` on the CLI's subcommands."""
    coupons = commands.add_parser("coupons", help="a store's single-use coupon codes: upload, show")
    sub = coupons.add_subparsers(dest="coupons_command", required=True)
    upload = sub.add_parser(
        "upload",
        help="add codes from a file to a store's pool",
        description="FILE has one code per line, or is a CSV whose first column is the code. Blank lines and "
        "a header line (code, coupon_code, ...) are skipped; a code repeated in the file or already in the "
        "pool is skipped and named. Each code is given to at most one cart, ever.",
    )
    upload.add_argument("--store", required=True)
    upload.add_argument("file", metavar="FILE")
    upload.set_defaults(func=lambda args: cmd_upload(args, services))
    show = sub.add_parser("show", help="how many codes a store's pool has, has handed out and has left")
    show.add_argument("--store", required=True)
    show.set_defaults(func=lambda args: cmd_show(args, services))
