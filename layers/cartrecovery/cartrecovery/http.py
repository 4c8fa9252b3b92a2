"""HTTP for the API functions: routes by API Gateway's route key, JSON bodies, RFC 9457 problem details,
HTML pages, raw request bytes.

The functions answer API Gateway (HTTP API, payload format 2.0) with plain response dicts and pick their
route by the event's ``routeKey``: API Gateway has already matched the path against the routes
``template.yaml`` declares, so matching it again in the function would only repeat that work, and would
also have to allow for stage names and custom-domain base paths in the raw path (see ``decisions.md``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from cartrecovery.domain.events import FieldError

Answer = dict[str, Any]
Route = Callable[[dict[str, Any]], Answer]


def route_for(routes: Mapping[str, Route], event: Mapping[str, Any]) -> Route | None:
    """The function's handler for the route API Gateway matched, e.g. ``POST /v1/stores/{store_id}/events``."""
    return routes.get(str(event.get("routeKey") or ""))


def path_parameter(event: Mapping[str, Any], name: str) -> str:
    """A path parameter as API Gateway decoded it; the route guarantees it is present."""
    return str((event.get("pathParameters") or {})[name])


def answer(status: int, content_type: str, body: str, headers: Mapping[str, str] | None = None) -> Answer:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **(headers or {})},
        "body": body,
        "isBase64Encoded": False,
    }


def json_response(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> Answer:
    return answer(status, "application/json", json.dumps(body, ensure_ascii=False), headers)


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors is not None and status == 400:
        body["errors"] = [{"path": e.path, "message": e.message} for e in errors]
    return answer(status, "application/problem+json", json.dumps(body, ensure_ascii=False), headers)


def raw_body(event: Mapping[str, Any]) -> bytes:
    """The exact bytes the client sent (API Gateway base64-encodes bodies it does not treat as text)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return str(body).encode("utf-8")


def lower_headers(event: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
