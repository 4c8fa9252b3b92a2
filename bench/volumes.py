"""Monthly cost at 10k, 1M and 10M carts, for this design and two others, from the same price table.

This design uses the measured per-cart figures, adjusted for volume: Scheduler's 14M free invocations a
month, and SQS, tracking invocations and tracking's counting writes in batches once traffic fills them.
The alternatives replace only the timer: a Step Functions (Standard) execution waiting between steps, about
7 transitions per step; or a cron function that scans the carts table every 5 minutes for due steps.
"""

from __future__ import annotations

from typing import Any

from bench.cost import PRICES, per_cart

VOLUMES = {"10k": 10_000, "1M": 1_000_000, "10M": 10_000_000}
SCHEDULER_FREE = 14_000_000
BATCHED_FROM = 100_000  # carts a month from which SQS and tracking batches are assumed full
SQS_BATCHED_REQUESTS_PER_EVENT = 1.2  # one SendMessage, a tenth of a ReceiveMessage and of a DeleteMessage
TRACKING_BATCH = 25  # template.yaml BatchSize
# A full batch is counted in one transaction: one update per message, one per counter row (store, send day,
# flow, step, variant) for the whole batch. The assumption: a batch's 25 events fall in about 5 rows (most
# are deliveries of today's sends and opens of the last few days', across a store's steps and variants).
# Repeats found by the read and the rare fallback to one event at a time are left out.
TRACKING_COUNTER_ROWS_PER_BATCH = 5
SFN_TRANSITIONS_PER_STEP = 7
SFN_PRICE_PER_TRANSITION = 0.025 / 1000
SCANS_PER_MONTH = 30 * 24 * 12  # every 5 minutes
CART_RETENTION_MONTHS = 3  # carts stay 90 days (TTL), so a scan reads three months of carts
CART_ITEM_KB = 2.0


def _this_design(calls: dict[str, Any], carts: int) -> dict[str, float]:
    parts = {name: value * carts for name, value in per_cart(calls).items()}
    firings = calls["invocations_per_cart"]["send"] * carts
    parts["scheduler"] = max(0, firings - SCHEDULER_FREE) * PRICES["scheduler_invocation"]
    if carts >= BATCHED_FROM:
        events = calls["invocations_per_cart"]["tracking"] * carts
        parts["sqs"] = events * SQS_BATCHED_REQUESTS_PER_EVENT * PRICES["sqs_request"]
        saved = events - events / TRACKING_BATCH
        parts["lambda_requests"] -= saved * PRICES["lambda_request"]
        parts["dynamodb"] -= _batched_counter_write_units_saved(calls) * carts * PRICES["dynamodb_write_unit"]
    return parts


def _batched_counter_write_units_saved(calls: dict[str, Any]) -> float:
    """Write units a cart saves when its tracking events are counted in full batches: each counted event still
    updates its message, but shares its counter row's update with the rest of its batch."""
    tracked = calls["calls_floor_breakdown"]["tracking writes"]  # the lifecycle's counted tracking events
    counter_units = calls["dynamodb_units_by_table"]["CountersTable write"]
    per_update = counter_units / (calls["emails_per_cart"] + tracked)  # each send counts 'sent', each event its kind
    return tracked * per_update * (1 - TRACKING_COUNTER_ROWS_PER_BATCH / TRACKING_BATCH)


def _step_functions(calls: dict[str, Any], carts: int) -> dict[str, float]:
    parts = _this_design(calls, carts)
    parts["scheduler"] = 0.0
    parts["step_functions"] = carts * calls["emails_per_cart"] * SFN_TRANSITIONS_PER_STEP * SFN_PRICE_PER_TRANSITION
    return parts


def _cron_scan(calls: dict[str, Any], carts: int) -> dict[str, float]:
    parts = _this_design(calls, carts)
    parts["scheduler"] = 0.0
    items_held = carts * CART_RETENTION_MONTHS
    scan_units = SCANS_PER_MONTH * items_held * CART_ITEM_KB / 4 / 2  # eventually consistent scan
    parts["scan_reads"] = scan_units * PRICES["dynamodb_read_unit"]
    parts["lambda_requests"] += SCANS_PER_MONTH * PRICES["lambda_request"]
    return parts


def run(calls: dict[str, Any]) -> dict[str, Any]:
    designs = {"this": _this_design, "step_functions": _step_functions, "cron_scan": _cron_scan}
    model: dict[str, Any] = {}
    for label, carts in VOLUMES.items():
        model[label] = {}
        for name, design in designs.items():
            parts = design(calls, carts)
            total = sum(parts.values())
            model[label][name] = {
                "total": round(total, 2),
                "non_ses": round(total - parts["ses"], 2),
                "largest_non_ses": max((k for k in parts if k != "ses"), key=lambda k: parts[k]),
                "breakdown": {k: round(v, 2) for k, v in parts.items()},
            }
    return model
