"""POST /v1/stores/{store_id}/events and /shopify: authenticate, validate, ingest once."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cartrecovery.adapters.errors import error_code
from cartrecovery.http import Answer, json_response, lower_headers, path_parameter, problem, raw_body, route_for
from cartrecovery.usecases.receive import Rejected, receive_event, receive_shopify
from cartrecovery.wiring import services

logger = Logger()
metrics = Metrics()

THROTTLED_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
}


def post_event(event: dict[str, Any]) -> Answer:
    svc = services()
    store_id = path_parameter(event, "store_id")
    result = receive_event(svc.stores, svc.ingest, store_id, lower_headers(event), raw_body(event), time.time())
    metrics.add_metric(
        name="EventAccepted" if result.status == "accepted" else "EventDuplicate", unit=MetricUnit.Count, value=1
    )
    logger.info("event ingested", extra={"store_id": store_id, "event_id": result.event_id, "status": result.status})
    if result.status == "duplicate":
        return json_response(200, {"status": "duplicate"})
    return json_response(202, {"status": "accepted", "event_id": result.event_id})


def post_shopify(event: dict[str, Any]) -> Answer:
    svc = services()
    store_id = path_parameter(event, "store_id")
    result = receive_shopify(svc.stores, svc.ingest, store_id, lower_headers(event), raw_body(event), time.time())
    if result is None:
        metrics.add_metric(name="EventIgnored", unit=MetricUnit.Count, value=1)
        return json_response(200, {"status": "ignored"})
    metrics.add_metric(
        name="EventAccepted" if result.status == "accepted" else "EventDuplicate", unit=MetricUnit.Count, value=1
    )
    if result.status == "duplicate":
        return json_response(200, {"status": "duplicate"})
    return json_response(202, {"status": "accepted", "event_id": result.event_id})


ROUTES = {
    "POST /v1/stores/{store_id}/events": post_event,
    "POST /v1/stores/{store_id}/shopify": post_shopify,
}


def rejected(exc: Rejected) -> Answer:
    logger.info("event rejected", extra={"status": exc.status, "title": exc.title})
    metrics.add_metric(name=f"EventRejected{exc.status}", unit=MetricUnit.Count, value=1)
    return problem(exc.status, exc.title, exc.detail, exc.errors)


def failed(exc: Exception) -> Answer:
    # Not the sender's fault: a dependency is throttled or down. Ask for a retry; the event is not lost
    # because the sender retries and every effect of ingestion is idempotent.
    if error_code(exc) in THROTTLED_CODES:
        return problem(429, "Too Many Requests", "Please retry shortly.", headers={"Retry-After": "2"})
    logger.exception("ingest failed")
    return problem(503, "Service Unavailable", "Please retry shortly.", headers={"Retry-After": "5"})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> Answer:
    route = route_for(ROUTES, event)
    if route is None:  # API Gateway routes only ROUTES here; anything else is a wiring mistake
        logger.warning("no such route", extra={"route_key": event.get("routeKey")})
        return problem(404, "Not Found", "This function serves no such route.")
    try:
        return route(event)
    except Rejected as exc:
        return rejected(exc)
    except Exception as exc:
        return failed(exc)
