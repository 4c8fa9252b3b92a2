"""GET /u/{token} shows a confirmation (changes nothing: link scanners follow GETs);
POST /u/{token} with List-Unsubscribe=One-Click unsubscribes at once (RFC 8058)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cartrecovery.http import Answer, answer, lower_headers, path_parameter, raw_body, route_for
from cartrecovery.one_click import is_one_click
from cartrecovery.pages import bad_request_page, confirm_page, done_page, not_found_page, unavailable_page
from cartrecovery.tokens import InvalidToken
from cartrecovery.wiring import services

logger = Logger()
metrics = Metrics()
HTML = "text/html; charset=utf-8"
NO_STORE = {"Cache-Control": "no-store"}


def _page(status: int, body: str) -> Answer:
    return answer(status, HTML, body, NO_STORE)


def confirm(event: dict[str, Any]) -> Answer:
    token = path_parameter(event, "token")
    subject = services().unsubscribe.check(token)
    # A relative action (the token itself) posts back to this same URL, also behind a custom base path.
    return _page(200, confirm_page(_locale(subject.locale), subject.store_name, token))


def one_click(event: dict[str, Any]) -> Answer:
    # The token first: an invalid one is a 404 whatever the body, and a body is only read for a real link.
    subject = services().unsubscribe.check(path_parameter(event, "token"))
    if not is_one_click(lower_headers(event).get("content-type", ""), raw_body(event)):
        return _page(400, bad_request_page(_locale(subject.locale)))
    services().unsubscribe.record(subject)
    metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
    logger.info("unsubscribed", extra={"store_id": subject.token.store_id, "flow": subject.token.flow})
    return _page(200, done_page(_locale(subject.locale), subject.store_name))


ROUTES = {"GET /u/{token}": confirm, "POST /u/{token}": one_click}


def _locale(locale: str) -> str:
    return "ja" if locale.startswith("ja") else "en"


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> Answer:
    route = route_for(ROUTES, event)
    if route is None:  # API Gateway routes only ROUTES here; anything else is a wiring mistake
        logger.warning("no such route", extra={"route_key": event.get("routeKey")})
        return _page(404, not_found_page())
    try:
        return route(event)
    except InvalidToken:
        return _page(404, not_found_page())
    except Exception:
        logger.exception("unsubscribe failed")
        # Not "invalid link": the shopper's link is fine, and trying it again must work.
        return answer(503, HTML, unavailable_page(), {"Retry-After": "5", **NO_STORE})
