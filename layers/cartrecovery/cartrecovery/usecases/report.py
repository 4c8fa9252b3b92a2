"""The per-(flow, step, variant) report over a date range, read from counters (never from messages)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from cartrecovery.ports import MessageLedger

# ``clicked`` counts the shopper's clicks only; ``bot_clicked`` the messages whose links a machine followed
# (a mail security scanner, a link preview: domain/bot_clicks.py). A message may count in both.
COLUMNS = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "bot_clicked",
    "converted",
    "revenue",
    "bounced",
    "complained",
    "unsubscribed",
)
# Revenue of orders in another currency than the store's, kept apart by currency (``revenue_USD``): amounts
# in different currencies cannot be added. Reported as ``revenue_other_currencies: {"USD": 49.99}``.
OTHER_REVENUE = "revenue_"
OTHER_CURRENCIES = "revenue_other_currencies"


def revenue_column(currency: str, store_currency: str) -> str:
    """The counter an order's total adds to: ``revenue`` in the store's currency, else ``revenue_<CUR>``."""
    return "revenue" if currency == store_currency else OTHER_REVENUE + currency


def build_report(ledger: MessageLedger, store_id: str, day_from: date, day_to: date) -> dict[str, Any]:
    """Rows keyed by the send day of the messages they count: an open on day 3 of a message sent on
    day 1 counts in day 1's row, so a row reads as a funnel."""
    merged: dict[tuple[str, int, str], dict[str, Any]] = {}
    for raw in ledger.report_rows(store_id, day_from.isoformat(), day_to.isoformat()):
        key = (str(raw["flow"]), int(raw["step"]), str(raw["variant"]))
        row = merged.setdefault(
            key, {"flow": key[0], "step": key[1], "variant": key[2], **{c: 0 for c in COLUMNS}, OTHER_CURRENCIES: {}}
        )
        for column in COLUMNS:
            row[column] += raw.get(column, 0) or 0
        for name, amount in raw.items():
            if name.startswith(OTHER_REVENUE):
                _add(row[OTHER_CURRENCIES], name.removeprefix(OTHER_REVENUE), amount)
    # Totals sum the exact counts; the rows' JSON numbers (a float for fractional revenue) are only for output.
    totals: dict[str, Any] = {
        c: _number(sum((Decimal(row[c]) for row in merged.values()), start=Decimal(0))) for c in COLUMNS
    }
    other_totals: dict[str, Decimal] = {}
    for row in merged.values():
        for currency, amount in row[OTHER_CURRENCIES].items():
            _add(other_totals, currency, amount)
    totals[OTHER_CURRENCIES] = {c: _number(a) for c, a in sorted(other_totals.items())}
    rows = [_plain(merged[k]) for k in sorted(merged)]
    return {"store": store_id, "from": day_from.isoformat(), "to": day_to.isoformat(), "rows": rows, "totals": totals}


def _add(amounts: dict[str, Any], currency: str, amount: Any) -> None:
    amounts[currency] = amounts.get(currency, Decimal(0)) + Decimal(amount)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    plain = {k: (_number(v) if k in COLUMNS else v) for k, v in row.items()}
    plain[OTHER_CURRENCIES] = {c: _number(a) for c, a in sorted(row[OTHER_CURRENCIES].items())}
    return plain


def _number(value: Any) -> int | float:
    """JSON numbers: integral values as int, fractional revenue (e.g. USD cents) as float."""
    amount = Decimal(value)
    return int(amount) if amount == amount.to_integral_value() else float(amount)
