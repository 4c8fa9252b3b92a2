"""SES events (EventBridge -> SQS): count each against its message; failures retry per record.

A batch of several events is counted in one write first; when that write cannot be made, the batch is
counted one record at a time, which is what a batch of one always does.
"""

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


def _detail(body: str) -> dict[str, Any]:
    envelope = json.loads(body)
    detail: dict[str, Any] = envelope.get("detail", envelope)  # EventBridge envelope; a bare SES record also works
    return detail


def record_handler(record: SQSRecord, counted: str | None = None) -> None:
    outcome = services().track(_detail(record.body), counted=counted)
    logger.info("ses event", extra={"kind": outcome.kind, "result": outcome.result})
    if outcome.kind and outcome.result == "new":
        metrics.add_metric(name=f"Email{outcome.kind.title().replace('_', '')}", unit=MetricUnit.Count, value=1)


def count_together(records: list[dict[str, Any]]) -> dict[str, str | None]:
    """Each SQS message id's counting result when the batch was counted in one write; empty otherwise."""
    if len(records) < 2:
        return {}
    try:
        results = services().track_batch([_detail(record["body"]) for record in records])
    except Exception:
        # Safe to count again one record at a time: the write is all or nothing, and had it gone through,
        # its marks would make every record a repeat. That path fails only the records that fail.
        logger.exception("counting the batch together failed; counting one record at a time")
        return {}
    if results is None:
        return {}
    return {record["messageId"]: result for record, result in zip(records, results, strict=True)}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    counted = count_together(event.get("Records") or [])

    def handle(record: SQSRecord) -> None:
        record_handler(record, counted.get(record.message_id))

    return dict(process_partial_response(event=event, record_handler=handle, processor=processor, context=context))
