"""SES events (EventBridge -> SQS): count each against its message; failures retry per record."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from cartrecovery.wiring import services

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    envelope = json.loads(record.body)
    detail = envelope.get("detail", envelope)  # EventBridge envelope; a bare SES record also works
    outcome = services().track(detail)
    logger.info("ses event", extra={"kind": outcome.kind, "result": outcome.result})
    if outcome.kind and outcome.result == "new":
        metrics.add_metric(name=f"Email{outcome.kind.title().replace('_', '')}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
