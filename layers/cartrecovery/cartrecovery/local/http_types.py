"""The request and reply the local HTTP layer passes around (independent of the server implementation)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

JSON = "application/json"
PROBLEM = "application/problem+json"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as received (percent-encoded), without the query
    query: str  # raw query string
    headers: list[tuple[str, str]]
    body: bytes
    client_ip: str
    host: str = ""

    def header(self, name: str, default: str = "") -> str:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), default)

    def query_param(self, name: str) -> str | None:
        values = parse_qs(self.query, keep_blank_values=True).get(name)
        return values[0] if values else None


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(data, ensure_ascii=False, indent=None).encode("utf-8")
    return Reply(status, body, {"Content-Type": JSON, **(headers or {})})


def problem_reply(status: int, title: str, detail: str = "", **extra: Any) -> Reply:
    data = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Reply(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), {"Content-Type": PROBLEM})


def html_reply(status: int, html: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, html.encode("utf-8"), {"Content-Type": HTML, "Cache-Control": "no-store", **(headers or {})})


def not_found() -> Reply:
    """What API Gateway answers for a path no route matches."""
    return json_reply(404, {"message": "Not Found"})
