"""Invoked every five minutes: re-arm carts whose step is overdue and whose schedule is gone."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cartrecovery.wiring import services

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = services().reconcile()
    logger.info("sweep", extra=result.as_dict())  # counts only: no cart ids, no addresses
    metrics.add_metric(name="StepsRecovered", unit=MetricUnit.Count, value=result.rearmed)
    return result.as_dict()
