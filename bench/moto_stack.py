"""The deployed handlers on moto: tables from ``template.yaml``, a schedule group, SES, one store.

The handlers (``functions/*/app.py``) are loaded from their files and called as Lambda would call them; the
adapters are the real ones, pointed at moto's in-process mocks. A separate administrative session does
the set-up and any look-ups the benchmarks make, so only the product's own calls are seen on ``session``.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench import REPO
from cartrecovery.local.clock import VirtualClock
from cartrecovery.local.demo import DEMO_SENDER, DEMO_STORE_ID, demo_store_settings
from cartrecovery.local.lambda_invoke import LocalFunction, http_api_event
from cartrecovery.settings import Settings
from cartrecovery.signing import signed_headers

REGION = "ap-northeast-1"
ACCOUNT = "123456789012"
PREFIX = "bench"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SEND_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PREFIX}-send"
LAMBDA_ENV = {  # as template.yaml sets it, with fake credentials for moto
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_METRICS_NAMESPACE": "CartRecovery",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_METRICS_DISABLED": "false",
}


@dataclass
class MotoStack:
    session: Any  # the product's session: every client the handlers use comes from it
    admin: Any  # set-up and look-ups, not counted
    settings: Settings
    clock: VirtualClock
    functions: dict[str, WarmFunction]


def signed_api_event(body: dict[str, Any], store_id: str = DEMO_STORE_ID) -> dict[str, Any]:
    """One event, signed as a store's backend signs it, as API Gateway hands it to the ingest handler."""
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = signed_headers(SECRET, f"evt_{uuid.uuid4().hex}", raw)
    return api_event(store_id, list(headers.items()), raw)


def api_event(store_id: str, headers: list[tuple[str, str]], raw: bytes) -> dict[str, Any]:
    return http_api_event(
        method="POST",
        raw_path=f"/v1/stores/{store_id}/events",
        raw_query="",
        headers=headers,
        body=raw,
        source_ip="203.0.113.10",
        route_key="POST /v1/stores/{store_id}/events",
        path_parameters={"store_id": store_id},
        domain_name="api.example.com",
    )


def bench_settings(tables: dict[str, str], function: str = "ingest") -> Settings:
    """Settings as the template gives them to ``function``; ``tables`` maps ``stores_table`` etc. to names."""
    cache = _template_env(function).get("STORE_CACHE_SECONDS")
    return Settings(
        **tables,
        schedule_group=PREFIX,
        scheduler_role_arn=f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-scheduler",
        send_function_arn=SEND_ARN,
        scheduler_dlq_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{PREFIX}-dlq",
        ses_configuration_set=PREFIX,
        public_base_url="https://api.example.com",
        stage="bench",
        **({} if cache is None else {"store_cache_seconds": float(cache)}),
    )


def _template_env(function: str) -> dict[str, Any]:
    """The environment ``template.yaml`` gives ``function`` (Globals, then its own variables)."""
    from cartrecovery.local.resources import function_environment, load_template

    return function_environment(load_template(REPO / "template.yaml"), f"{function.title()}Function")


class WarmFunction:
    """One function's warm container: its handler and its own wiring (settings differ per function)."""

    def __init__(self, function: LocalFunction, services: Any) -> None:
        self.function = function
        self.services = services

    def invoke(self, event: dict[str, Any]) -> Any:
        from cartrecovery import wiring

        wiring.use(self.services)  # the container this function's invocations run in
        return self.function.invoke(event)


@contextlib.contextmanager
def lambda_environment() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in LAMBDA_ENV}
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
        saved[name] = os.environ.pop(name)
    os.environ.update(LAMBDA_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def moto_stack(clock_start: datetime) -> Iterator[MotoStack]:
    """Everything the handlers need, in moto. Hooks go on ``session`` before the first invocation: the
    handlers create their clients then, and a client copies the session's hooks when it is created."""
    import boto3
    from moto import mock_aws

    from cartrecovery import wiring
    from cartrecovery.adapters.stores import DynamoStoreRepository
    from cartrecovery.local.resources import create_tables
    from cartrecovery.usecases.stores import create_store

    with lambda_environment(), mock_aws():
        admin = boto3.session.Session(region_name=REGION)
        tables = create_tables(admin.client("dynamodb"), REPO / "template.yaml", PREFIX)
        admin.client("scheduler").create_schedule_group(Name=PREFIX)
        ses = admin.client("sesv2")
        ses.create_email_identity(EmailIdentity=DEMO_SENDER.partition("@")[2])
        ses.create_configuration_set(ConfigurationSetName=PREFIX)
        names = {key.lower(): name for key, name in tables.items()}
        settings = bench_settings(names)
        clock = VirtualClock(clock_start, monotonic=lambda: 0.0)
        session = boto3.session.Session(region_name=REGION)
        stores = DynamoStoreRepository(admin.client("dynamodb"), settings.stores_table)
        create_store(stores, demo_store_settings(), clock, webhook_secret=SECRET)
        wiring.configure(settings=settings, clock=clock, session=session)
        try:
            functions = {
                name: WarmFunction(
                    LocalFunction(name, REPO / "functions" / name / "app.py", region=REGION, stack_prefix=PREFIX),
                    wiring.Services(bench_settings(names, name), clock, session),
                )
                for name in ("ingest", "send", "tracking")
            }
            yield MotoStack(session, admin, settings, clock, functions)
        finally:
            wiring.reset()
