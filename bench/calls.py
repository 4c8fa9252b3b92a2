"""Every AWS call of the reference cart lifecycle, counted on moto over the real handlers and adapters.

One cart warms the process (imports, clients), the next is counted, and a few more are timed with the
counter off (its capacity look-ups would otherwise inflate the durations).
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.counter import CallCounter
from bench.lifecycle import CLOCK_START, TRACKING_KINDS, Invocations, Lifecycle
from bench.moto_stack import moto_stack
from cartrecovery.local.outbox import Outbox
from cartrecovery.local.ses_events import KINDS
from cartrecovery.usecases.track import COUNTED

TIMED_CARTS = 3
TARGET_RATIO = 1.25
# ARCHITECTURE.md's cost floor for this lifecycle, as AWS calls the code itself makes: one write per cart
# event, one schedule creation, one claim and one send per email, and one write per tracking event that
# is recorded (SES's Send event is reported by no design, so it needs none).
EMAILS = 3
FLOOR = {
    "event writes": 4,
    "schedule creations": EMAILS,
    "claims": EMAILS,
    "sends": EMAILS,
    "tracking writes": EMAILS * sum(1 for kind in TRACKING_KINDS if KINDS[kind][0] in COUNTED),
}


def run() -> dict[str, Any]:
    counter = CallCounter(admin_dynamodb=None, enabled=False)
    with moto_stack(CLOCK_START) as stack:
        counter.admin_dynamodb = stack.admin.client("dynamodb")
        outbox = Outbox(stack.clock)
        outbox.install(stack.session)  # before the handlers create their clients
        counter.install(stack.session)
        life = Lifecycle(stack, outbox)
        life.run_cart()

        counter.enabled = True
        life.invocations = Invocations()
        email = life.run_cart()
        counted = life.invocations
        counter.enabled = False

        life.invocations = Invocations()
        for _ in range(TIMED_CARTS):
            life.run_cart()
        timed = life.invocations

    emails_sent = len(counter.sent)
    total = sum(counter.calls.values())
    floor = sum(FLOOR.values())
    return {
        "aws_calls_per_cart": dict(sorted(counter.calls.items())),
        "calls_total": total,
        "calls_floor": floor,
        "calls_floor_breakdown": FLOOR,
        "calls_ratio": round(total / floor, 2),
        "calls_target_ratio": TARGET_RATIO,
        "emails_per_cart": emails_sent,
        "dynamodb_units_per_cart": {"read": counter.read_units, "write": counter.write_units},
        "dynamodb_units_by_table": dict(sorted(counter.units_by_table.items())),
        "invocations_per_cart": {name: counted.count(name) for name in ("ingest", "send", "tracking")},
        "lambda_median_ms": {
            name: round(statistics.median(samples), 2) for name, samples in sorted(timed.durations_ms.items())
        },
        "log_bytes_per_cart": dict(counted.log_bytes),
        "logs_contain_email": any(email in text for text in counted.log_text),
        "email_bytes_per_cart": sum(_raw_size(params) for params, _ in counter.sent),
    }


def _raw_size(params: dict[str, Any]) -> int:
    data = ((params.get("Content") or {}).get("Raw") or {}).get("Data") or b""
    return len(data)
