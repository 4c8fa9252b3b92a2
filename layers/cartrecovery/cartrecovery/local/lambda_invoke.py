"""Run the deployed Lambda handlers in this process, as Lambda would call them.

Each ``functions/<name>/app.py`` is loaded from its file path under a module name of its own
(``cartrecovery_fn_<name>``), so the very code that is deployed runs here, unchanged and without touching
``sys.path``. A loaded copy is one warm execution environment: like Lambda, it serves one invocation at a
time (Powertools' logger, metrics and batch processor keep per-invocation state on module-level objects), and a
function with ``concurrency`` N has N copies.

This module also builds what API Gateway (HTTP API, payload format 2.0) hands to a function and turns the
function's answer back into an HTTP response.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import queue
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

Handler = Callable[[dict[str, Any], Any], Any]

ACCOUNT_ID = "123456789012"  # moto's default account


@dataclass
class LambdaContext:
    """The attributes Powertools and the handlers read from Lambda's context object."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 30.0
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_module(path: Path, module_name: str) -> ModuleType:
    """Import one file as ``module_name`` (registered in ``sys.modules`` so tracebacks and pickling work)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


class LocalFunction:
    """One function of the stack: ``concurrency`` warm copies of its handler, one invocation per copy at a time."""

    def __init__(
        self,
        name: str,
        app_path: Path,
        *,
        region: str,
        concurrency: int = 1,
        timeout_seconds: float = 30.0,
        stack_prefix: str = "cartrecovery-local",
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.name = name
        self.function_name = f"{stack_prefix}-{name}"
        self.arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.function_name}"
        self.timeout_seconds = timeout_seconds
        self._copies: queue.Queue[Handler] = queue.Queue()
        previous = os.environ.get("POWERTOOLS_SERVICE_NAME")
        os.environ["POWERTOOLS_SERVICE_NAME"] = self.function_name  # read by Logger/Metrics at import
        try:
            for index in range(concurrency):
                module_name = f"cartrecovery_fn_{name}" + (f"_{index + 1}" if index else "")
                module = load_module(app_path, module_name)
                handler = getattr(module, "lambda_handler", None)
                if not callable(handler):
                    raise ImportError(f"{app_path} has no lambda_handler")
                self._copies.put(handler)
        finally:
            if previous is None:
                os.environ.pop("POWERTOOLS_SERVICE_NAME", None)
            else:
                os.environ["POWERTOOLS_SERVICE_NAME"] = previous

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call the handler synchronously; its exceptions propagate (as a function error would)."""
        handler = self._copies.get()
        try:
            context = LambdaContext(self.function_name, self.arn, timeout_seconds=self.timeout_seconds)
            return handler(event, context)
        finally:
            self._copies.put(handler)


@dataclass(frozen=True)
class Functions:
    ingest: LocalFunction
    send: LocalFunction
    sweep: LocalFunction
    tracking: LocalFunction
    unsubscribe: LocalFunction

    @classmethod
    def load(cls, functions_dir: Path, *, region: str, api_concurrency: int = 1) -> Functions:
        def fn(name: str, concurrency: int = 1, timeout: float = 30.0) -> LocalFunction:
            path = functions_dir / name / "app.py"
            return LocalFunction(name, path, region=region, concurrency=concurrency, timeout_seconds=timeout)

        return cls(
            ingest=fn("ingest", api_concurrency, 10.0),
            send=fn("send", 1, 60.0),
            sweep=fn("sweep", 1, 60.0),
            tracking=fn("tracking", 1, 30.0),
            unsubscribe=fn("unsubscribe", api_concurrency, 10.0),
        )


def find_functions_dir(start: Path | None = None) -> Path:
    """The repository's ``functions/`` folder, found upwards from this package (an editable install)."""
    here = (start or Path(__file__)).resolve()
    for parent in here.parents:
        if (parent / "functions" / "ingest" / "app.py").is_file():
            return parent / "functions"
    raise FileNotFoundError("functions/ not found: run the local stack from a checkout of the repository")


# ---- API Gateway HTTP API (payload format 2.0) ----


def http_api_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    route_key: str,
    path_parameters: Mapping[str, str],
    domain_name: str,
    stage: str = "$default",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The event API Gateway builds: lower-cased headers (repeats joined by commas, cookies split out),
    the body base64-encoded so its exact bytes reach the signature check."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-proto", "http")
    moment = now or datetime.now(UTC)
    request_id = base64.b32encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")[:16]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": stage,
            "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(moment.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    query = _query_parameters(raw_query)
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        event["body"] = base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = True
    return event


def _query_parameters(raw_query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    return params


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def http_api_answer(result: Any) -> HttpAnswer:
    """What API Gateway makes of a function's return value (payload format 2.0); cookies are not relayed."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # HTTP API treats any other JSON value as a 200 JSON body.
        return HttpAnswer(200, {"content-type": "application/json"}, json.dumps(result).encode())
    status = int(result["statusCode"])
    if not 100 <= status <= 599:
        raise ValueError(f"invalid statusCode {status}")
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ",".join(str(v) for v in values)
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(str(raw))
    else:
        body = str(raw).encode("utf-8")
    return HttpAnswer(status, headers, body)
