"""HTTP answers shared by the API functions: JSON bodies, RFC 9457 problem details, raw request bytes."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from cartrecovery.domain.events import FieldError


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False),
        headers=headers or {},
    )


def problem(
    status: int, title: str, detail: str, errors: list[FieldError] | None = None, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors is not None and status == 400:
        body["errors"] = [{"path": e.path, "message": e.message} for e in errors]
    return Response(
        status_code=status,
        content_type="application/problem+json",
        body=json.dumps(body, ensure_ascii=False),
        headers=headers or {},
    )


def raw_body(event: Any) -> bytes:
    """The exact bytes the client sent (API Gateway base64-encodes bodies it does not treat as text)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8")


def lower_headers(event: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
