"""The per-(flow, step, variant) report over a date range, read from counters (never from messages)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from cartrecovery.domain.measurement import (
    ENTERED,
    ENTRY_STEP,
    HOLDOUT,
    TREATED,
    Difference,
    GroupFigures,
    family_z,
    lift,
    rate_difference,
)
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


# What an entry row counts: carts that entered the flow in the group, those an order converted, their revenue
# (in the store's currency; other currencies' orders count as conversions, their amounts are left out).
ENTRY_COLUMNS = (ENTERED, "converted", "revenue")

# What an A/B test compares between a step's variants: the rates per email sent (a variant that lands in spam
# more often is worse for it), shoppers' clicks and conversions. Opens are shown, not tested: privacy proxies
# open every email, so an open rate's difference says little.
AB_RATES = {"open_rate": "opened", "click_rate": "clicked", "conversion_rate": "converted"}
AB_TESTED = ("click_rate", "conversion_rate")
CONTROL = "a"


def revenue_column(currency: str, store_currency: str) -> str:
    """The counter an order's total adds to: ``revenue`` in the store's currency, else ``revenue_<CUR>``."""
    return "revenue" if currency == store_currency else OTHER_REVENUE + currency


def build_report(ledger: MessageLedger, store_id: str, day_from: date, day_to: date) -> dict[str, Any]:
    """Rows keyed by the send day of the messages they count: an open on day 3 of a message sent on
    day 1 counts in day 1's row, so a row reads as a funnel."""
    merged: dict[tuple[str, int, str], dict[str, Any]] = {}
    entries: dict[tuple[str, str], dict[str, Decimal]] = {}  # (flow, group) -> entered, converted, revenue
    for raw in ledger.report_rows(store_id, day_from.isoformat(), day_to.isoformat()):
        if int(raw["step"]) == ENTRY_STEP:
            group = entries.setdefault((str(raw["flow"]), str(raw["variant"])), {})
            for column in ENTRY_COLUMNS:
                group[column] = group.get(column, Decimal(0)) + Decimal(raw.get(column, 0) or 0)
            continue
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
    return {
        "store": store_id,
        "from": day_from.isoformat(),
        "to": day_to.isoformat(),
        "rows": rows,
        "totals": totals,
        "holdout": [_holdout(flow, entries) for flow in sorted({flow for flow, _ in entries})],
        "ab_tests": _ab_tests(rows),
    }


def _ab_tests(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One item per (flow, step) that sent more than one variant in the report's days: each variant's rates,
    and each other variant set against the control (``a``, else the first by name), with intervals that hold
    together at 95% over the step's comparisons."""
    steps: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:  # sorted by flow, step and variant
        steps.setdefault((row["flow"], row["step"]), []).append(row)
    tests = []
    for (flow, step), variants in steps.items():
        if len(variants) < 2:
            continue
        control = next((v for v in variants if v["variant"] == CONTROL), variants[0])
        z = family_z(len(variants) - 1)
        comparisons = []
        for other in variants:
            if other is control:
                continue
            measured = {
                rate: rate_difference(other[AB_RATES[rate]], other["sent"], control[AB_RATES[rate]], control["sent"], z)
                for rate in AB_TESTED
            }
            comparisons.append({"variant": other["variant"], **{r: _difference(m) for r, m in measured.items()}})
        tests.append(
            {
                "flow": flow,
                "step": step,
                "control": control["variant"],
                "variants": [_variant(v) for v in variants],
                "comparisons": comparisons,
            }
        )
    return tests


def _variant(row: dict[str, Any]) -> dict[str, Any]:
    sent = row["sent"]
    figures = {c: row[c] for c in ("sent", "opened", "clicked", "converted", "revenue")}
    rates = {rate: round(row[column] / sent, 4) if sent else None for rate, column in AB_RATES.items()}
    per_email = _money(Decimal(str(row["revenue"])) / sent) if sent else None
    return {"variant": row["variant"], **figures, **rates, "revenue_per_email": per_email}


def _difference(measured: Difference | None) -> dict[str, Any] | None:
    return None if measured is None else {"difference": round(measured.points, 4), **_interval(measured)}


def _interval(measured: Difference) -> dict[str, Any]:
    """A difference's interval and verdict, as both the A/B comparisons and the holdout lift give them."""
    return {"interval_95": [round(measured.low, 4), round(measured.high, 4)], "significant": measured.significant}


def _holdout(flow: str, entries: dict[tuple[str, str], dict[str, Decimal]]) -> dict[str, Any]:
    """One flow's treated and held-out groups, over carts that entered it in the report's days, and the lift."""
    groups = {}
    for group in (TREATED, HOLDOUT):
        counts = entries.get((flow, group), {})
        groups[group] = GroupFigures(
            int(counts.get(ENTERED, 0)), int(counts.get("converted", 0)), counts.get("revenue", Decimal(0))
        )
    measured = lift(groups[TREATED], groups[HOLDOUT])
    return {
        "flow": flow,
        **{name: _group(figures) for name, figures in groups.items()},
        "lift": None
        if measured is None
        else {
            "conversion_rate": round(measured.points, 4),
            **_interval(measured),
            "incremental_revenue": _money(measured.incremental_revenue),
        },
    }


def holdout_summary(flow: dict[str, Any]) -> list[str]:
    """A flow's holdout comparison (one item of the report's ``holdout``) as lines of text."""
    lines = [f"holdout, {flow['flow']}:"]
    for name, label in ((TREATED, "emailed"), (HOLDOUT, "held out")):
        group = flow[name]
        lines.append(
            f"  {label:>8}: {group['carts']} carts, {group['converted']} converted"
            f" ({percent_text(group['conversion_rate'])}), revenue {group['revenue']}"
        )
    return [*lines, "  " + lift_sentence(flow["lift"])]


def lift_sentence(measured: dict[str, Any] | None) -> str:
    """The report's ``lift`` of a flow as a sentence (the CLI's table and the console show the same)."""
    if measured is None:
        return "lift: not measured until both groups have carts"
    points = _points_text(measured["conversion_rate"], measured)
    return f"lift: {points}, incremental revenue {measured['incremental_revenue']}"


def ab_summary(test: dict[str, Any]) -> list[str]:
    """A step's A/B test (one item of the report's ``ab_tests``) as lines of text."""
    lines = [f"A/B test, {test['flow']} step {test['step']} (against {test['control']}):"]
    for v in test["variants"]:
        lines.append(
            f"  {v['variant']:>8}: {v['sent']} sent, {v['clicked']} clicked ({percent_text(v['click_rate'])}),"
            f" {v['converted']} converted ({percent_text(v['conversion_rate'])}), revenue {v['revenue']}"
        )
    return [*lines, *("  " + comparison_sentence(c, test["control"]) for c in test["comparisons"])]


def comparison_sentence(comparison: dict[str, Any], control: str) -> str:
    """One variant against the control, as a sentence (the CLI's table and the console show the same)."""
    parts = []
    for rate, label in (("click_rate", "clicks"), ("conversion_rate", "conversions")):
        measured = comparison[rate]
        if measured is None:
            parts.append(f"{label} not measured until both have sent")
        else:
            parts.append(f"{label} {_points_text(measured['difference'], measured)}")
    return f"{comparison['variant']} against {control}: " + "; ".join(parts)


def _points_text(difference: float, measured: dict[str, Any]) -> str:
    """``+4.0 points (95% interval +1.8 to +6.2, significant)``: a difference of rates and its ``_interval``."""
    low, high = measured["interval_95"]
    verdict = "significant" if measured["significant"] else "not significant"
    return f"{difference * 100:+.1f} points (95% interval {low * 100:+.1f} to {high * 100:+.1f}, {verdict})"


def percent_text(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _group(figures: GroupFigures) -> dict[str, Any]:
    rate = figures.rate
    per_cart = figures.revenue_per_cart
    return {
        "carts": figures.carts,
        "converted": figures.converted,
        "revenue": _number(figures.revenue),
        "conversion_rate": None if rate is None else round(rate, 4),
        "revenue_per_cart": None if per_cart is None else _money(per_cart),
    }


def _money(amount: Decimal) -> int | float:
    """A per-cart or per-email amount, to the cent, as a JSON number."""
    return _number(amount.quantize(Decimal("0.01")))


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
