"""Invoked by EventBridge Scheduler with a cart reference: run the cart's due step."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cartrecovery.wiring import services

logger = Logger()
metrics = Metrics()

OUTCOME_METRICS = {
    "sent": "EmailSent",
    "unknown": "SendOutcomeUnknown",
    "throttled": "SendThrottled",
    "skipped": "StepSkipped",
    "deferred": "StepDeferred",
    "rearmed": "StepRearmed",
    "stopped": "SendRejected",
}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcome = services().run_step(event)
    logger.info(
        "step run",
        extra={
            "store_id": event.get("store_id"),
            "cart_id": event.get("cart_id"),
            "flow": outcome.flow,
            "step": outcome.step,
            "action": outcome.action,
            "reason": outcome.reason,
            "message_id": outcome.message_id,
        },
    )
    name = OUTCOME_METRICS.get(outcome.action)
    if name:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if outcome.coupon_pool_empty:
        # The store's single-use codes ran out: the email showed the store-wide code, or no coupon.
        metrics.add_metric(name="CouponPoolEmpty", unit=MetricUnit.Count, value=1)
    return {"action": outcome.action, "reason": outcome.reason, "message_id": outcome.message_id}
