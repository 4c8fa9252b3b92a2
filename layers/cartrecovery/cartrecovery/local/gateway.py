"""The public routes, as API Gateway (HTTP API) routes them to the deployed functions.

A request matching a route becomes a payload-format-2.0 event for that function; the function's answer
becomes the HTTP response. A request matching no route gets API Gateway's ``404 {"message": "Not Found"}``
(a wrong method on a known path included), and a function error its ``500 {"message": "Internal Server
Error"}`` (the handlers map every input problem to a 4xx themselves).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote

from cartrecovery.local.http_types import Reply, Request, json_reply, not_found
from cartrecovery.local.lambda_invoke import Functions, LocalFunction, http_api_answer, http_api_event

log = logging.getLogger("cartrecovery.local")


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # API Gateway's route path, e.g. /v1/stores/{store_id}/events
    function: str  # attribute of Functions

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        return re.compile(f"^{regex}\\Z")


ROUTES = (
    Route("POST", "/v1/stores/{store_id}/events", "ingest"),
    Route("POST", "/v1/stores/{store_id}/shopify", "ingest"),
    Route("GET", "/u/{token}", "unsubscribe"),
    Route("POST", "/u/{token}", "unsubscribe"),
)
PUBLIC_PREFIXES = ("/v1/", "/u/")


class Gateway:
    def __init__(self, functions: Functions, routes: tuple[Route, ...] = ROUTES) -> None:
        self.functions = functions
        self.routes = [(route, route.pattern) for route in routes]

    def handles(self, path: str) -> bool:
        return path.startswith(PUBLIC_PREFIXES)

    def __call__(self, request: Request) -> Reply:
        method, path = request.method, request.path
        for route, pattern in self.routes:
            match = pattern.match(path)
            if match is None or route.method != method:
                continue
            function: LocalFunction = getattr(self.functions, route.function)
            event = http_api_event(
                method=method,
                raw_path=path,
                raw_query=request.query,
                headers=request.headers,
                body=request.body,
                source_ip=request.client_ip,
                route_key=route.route_key,
                path_parameters={k: unquote(v) for k, v in match.groupdict().items()},
                domain_name=request.host or "127.0.0.1",
            )
            try:
                answer = http_api_answer(function.invoke(event))
            except Exception:
                log.exception("%s failed on %s %s", function.function_name, method, path)
                return json_reply(500, {"message": "Internal Server Error"})
            return Reply(answer.status, answer.body, answer.headers)
        return not_found()
