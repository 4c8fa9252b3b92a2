"""The counted lifecycle priced at the list prices of REFERENCE.md (us-east-1), per 1,000 carts.

Free tiers are left out (they are per account, not per cart). DynamoDB units come from the items' sizes,
Lambda GB-seconds from the measured durations at the memory ``template.yaml`` configures, rounded up to
the millisecond as Lambda bills. Logs count what the handlers printed plus Lambda's own START/END/REPORT
lines. Tracking events are priced one SQS batch each (the low-volume case; batching only lowers it).
"""

from __future__ import annotations

import math
from typing import Any

from bench import REPO
from cartrecovery.local.resources import load_template

PRICES = {
    "lambda_gb_s": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "http_api_request": 1.00 / 1e6,
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_read_unit": 0.125 / 1e6,
    "scheduler_invocation": 1.00 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "ses_email": 0.10 / 1000,
    "logs_gb": 0.50,
}
TARGET_NON_SES = 0.02
PLATFORM_LOG_BYTES = 300  # START, END and REPORT lines Lambda writes per invocation
SQS_REQUESTS_PER_EVENT = 3  # EventBridge's SendMessage, the poller's ReceiveMessage and DeleteMessage
FUNCTION_RESOURCES = {"ingest": "IngestFunction", "send": "SendFunction", "tracking": "TrackingFunction"}


def memory_mb() -> dict[str, int]:
    """Each function's configured memory (its own MemorySize, else the Globals one)."""
    template = load_template(REPO / "template.yaml")
    default = int(template["Globals"]["Function"].get("MemorySize", 128))
    resources = template["Resources"]
    return {
        name: int(resources[logical]["Properties"].get("MemorySize", default))
        for name, logical in FUNCTION_RESOURCES.items()
    }


def per_cart(calls: dict[str, Any]) -> dict[str, float]:
    """USD per cart, by component."""
    invocations: dict[str, int] = calls["invocations_per_cart"]
    memory = memory_mb()
    gb_seconds = sum(
        count * math.ceil(calls["lambda_median_ms"][name]) / 1000 * memory[name] / 1024
        for name, count in invocations.items()
    )
    log_bytes = sum(calls["log_bytes_per_cart"].values()) + PLATFORM_LOG_BYTES * sum(invocations.values())
    units = calls["dynamodb_units_per_cart"]
    return {
        "ses": calls["emails_per_cart"] * PRICES["ses_email"],
        "dynamodb": units["write"] * PRICES["dynamodb_write_unit"] + units["read"] * PRICES["dynamodb_read_unit"],
        "lambda_requests": sum(invocations.values()) * PRICES["lambda_request"],
        "lambda_compute": gb_seconds * PRICES["lambda_gb_s"],
        "http_api": invocations["ingest"] * PRICES["http_api_request"],
        "scheduler": invocations["send"] * PRICES["scheduler_invocation"],
        "sqs": invocations["tracking"] * SQS_REQUESTS_PER_EVENT * PRICES["sqs_request"],
        "logs": log_bytes / 1e9 * PRICES["logs_gb"],
    }


def floor_per_cart(calls: dict[str, Any]) -> dict[str, float]:
    """The non-SES cost of ARCHITECTURE.md's floor for the same lifecycle, priced the same way: one API request
    and one write per cart event, one Scheduler firing, one claim write and one send per email, one write per
    counted tracking event, each tracking event its own SQS batch, and only Lambda's own log lines. Lambda
    compute is left out (a floor has no measured duration), so this is a lower bound on any design's bill."""
    floor = calls["calls_floor_breakdown"]
    emails = calls["emails_per_cart"]
    events = calls["invocations_per_cart"]["ingest"]
    tracked = floor["tracking writes"]
    invocations = events + emails + tracked
    return {
        "dynamodb": (floor["event writes"] + floor["claims"] + tracked) * PRICES["dynamodb_write_unit"],
        "lambda_requests": invocations * PRICES["lambda_request"],
        "http_api": events * PRICES["http_api_request"],
        "scheduler": emails * PRICES["scheduler_invocation"],
        "sqs": tracked * SQS_REQUESTS_PER_EVENT * PRICES["sqs_request"],
        "logs": PLATFORM_LOG_BYTES * invocations / 1e9 * PRICES["logs_gb"],
    }


def run(calls: dict[str, Any]) -> dict[str, Any]:
    parts = per_cart(calls)
    total = sum(parts.values())
    floor = sum(floor_per_cart(calls).values())
    return {
        "total": round(total * 1000, 4),
        "non_ses": round((total - parts["ses"]) * 1000, 4),
        # The target sits below what the floor itself costs at these prices: the ratio is the fair measure.
        "floor_non_ses": round(floor * 1000, 4),
        "non_ses_vs_floor": round((total - parts["ses"]) / floor, 2),
        "breakdown": {name: round(value * 1000, 5) for name, value in parts.items()},
        "memory_mb": memory_mb(),
        "target_non_ses": TARGET_NON_SES,
    }
