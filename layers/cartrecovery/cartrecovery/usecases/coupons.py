"""Single-use coupon codes: reading a store's upload, adding it to the pool, and choosing a cart's code.

A store whose coupon is ``kind: "pool"`` gives each cart's coupon step its own code from the pool; the same
(cart, step) always gets the same code, and a code once given is never given again. When the pool is empty
the store-wide ``code`` is used if there is one, else the step goes out without a coupon.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from cartrecovery.domain.store import POOL_COUPON, Coupon
from cartrecovery.ports import CouponPool, StoreRepository, UnknownStore

MAX_CODE_LENGTH = 64
HEADER_NAMES = frozenset({"code", "codes", "coupon", "coupon_code", "coupon code", "クーポンコード", "コード"})


class InvalidCodes(ValueError):
    """Lines that cannot be codes; nothing was added."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ParsedCodes:
    codes: list[str]  # in file order, each once
    duplicates: list[str] = field(default_factory=list)  # repeated within the file (kept once)
    header: str | None = None  # the header line that was skipped


@dataclass(frozen=True)
class UploadedCodes:
    added: int
    duplicates: list[str]  # repeated within the file, added once
    already_in_pool: list[str]  # skipped
    header: str | None
    total: int
    left: int


def parse_codes(text: str) -> ParsedCodes:
    """One code per line, or CSV whose first column is the code. Blank lines and a header are skipped;
    a code with spaces or control characters, or longer than ``MAX_CODE_LENGTH``, rejects the file."""
    codes: list[str] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    problems: list[str] = []
    header = None
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:  # e.g. a field over the csv module's limit of 131,072 characters
        raise InvalidCodes([f"line {reader.line_num}: {exc}"]) from None
    for number, row in enumerate(rows, start=1):
        cell = row[0].strip() if row else ""
        if not cell:
            continue
        if not codes and header is None and not problems and cell.lower() in HEADER_NAMES:
            header = cell
            continue
        if len(cell) > MAX_CODE_LENGTH:
            problems.append(f"line {number}: longer than {MAX_CODE_LENGTH} characters")
        elif any(c.isspace() or not c.isprintable() for c in cell):
            problems.append(f"line {number}: {cell!r} contains spaces or control characters")
        elif cell in seen:
            duplicates.append(cell)
        else:
            seen.add(cell)
            codes.append(cell)
    if problems:
        raise InvalidCodes(problems)
    return ParsedCodes(codes, duplicates, header)


def upload_codes(stores: StoreRepository, pool: CouponPool, store_id: str, text: str, at: datetime) -> UploadedCodes:
    """Add the file's new codes to the store's pool; codes already in it are skipped, never added twice.
    Raises ``UnknownStore``, ``InvalidCodes`` (nothing added) or ``PoolBusy``."""
    if stores.get(store_id) is None:
        raise UnknownStore(store_id)
    parsed = parse_codes(text)
    existing = pool.existing_codes(store_id) if parsed.codes else set()
    new = [code for code in parsed.codes if code not in existing]
    if new:
        pool.add_codes(store_id, new, at)
    stats = pool.stats(store_id)
    return UploadedCodes(
        added=len(new),
        duplicates=parsed.duplicates,
        already_in_pool=[code for code in parsed.codes if code in existing],
        header=parsed.header,
        total=stats.total,
        left=stats.left,
    )


@dataclass(frozen=True)
class CouponChoice:
    code: str | None  # the code this shopper's email shows; None: no coupon block
    pool_empty: bool = False  # a pool store's pool had no code left


def choose_code(
    coupon: Coupon | None, pool: CouponPool | None, store_id: str, holder: str, at: datetime
) -> CouponChoice:
    """The code for ``holder`` (a cart's step): the store-wide code, or for a pool store a code of its own,
    falling back to the store-wide code (if any) when the pool is empty. Only pool stores touch the pool."""
    if coupon is None:
        return CouponChoice(None)
    if coupon.kind != POOL_COUPON:
        return CouponChoice(coupon.code)
    code = pool.hand_out(store_id, holder, at) if pool is not None else None
    if code is not None:
        return CouponChoice(code)
    return CouponChoice(coupon.code or None, pool_empty=True)
