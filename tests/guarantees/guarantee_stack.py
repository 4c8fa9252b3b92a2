"""The whole send path on moto, with time and SES under the test's control.

``stack`` gives each test fresh AWS state (tables built from ``template.yaml``, a schedule group, a verified
sender, one store whose flow sends step 1 two hours after the cart's last activity), ``cartrecovery.wiring``
pointed at it with a virtual clock that moves only when told to, the deployed ``send`` and ``sweep`` handlers
loaded from their files, and the local scheduler runner to fire due schedules into the send handler as
EventBridge Scheduler would. Every email the product hands to SES lands in ``stack.outbox``; ``stack.ses``
makes the next SendEmail calls fail the way SES or the network can.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from cartrecovery import wiring
from cartrecovery.adapters.stores import DynamoStoreRepository
from cartrecovery.domain.cart import CartState
from cartrecovery.domain.events import parse_event
from cartrecovery.domain.store import Store
from cartrecovery.local.clock import VirtualClock
from cartrecovery.local.demo import DEMO_SENDER, demo_store_settings
from cartrecovery.local.lambda_invoke import LocalFunction
from cartrecovery.local.outbox import Outbox, SentMessage
from cartrecovery.local.resources import create_tables, find_repo_root, load_template
from cartrecovery.local.runtime import scheduled_event
from cartrecovery.local.scheduler_runner import SchedulerRunner
from cartrecovery.settings import Settings
from cartrecovery.usecases.stores import create_store
from tests.fakes import cart_updated, order_placed
from tests.iam_grants import AuditedFunction, GrantAudit

ROOT = find_repo_root()
REGION = "ap-northeast-1"
PREFIX = "guarantees"
TOKYO = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # a Tuesday morning, clear of the 21:00-08:00 quiet hours
STEP1_DELAY = timedelta(hours=2)
SEND_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{PREFIX}-send"
LAMBDA_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_METRICS_NAMESPACE": "CartRecovery",
    "POWERTOOLS_SERVICE_NAME": "cartrecovery",
    "POWERTOOLS_METRICS_DISABLED": "false",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


class SesFaults:
    """Makes the product's next SendEmail calls fail; counts every call that reached the SES client."""

    def __init__(self) -> None:
        self.queue: list[Callable[[], Any]] = []
        self.attempts = 0
        self.during_send: Callable[[], None] | None = None  # runs inside the next SendEmail call, once

    def throttle(self) -> None:
        self.queue.append(lambda: _error(400, "ThrottlingException", "Maximum sending rate exceeded."))

    def reject(self) -> None:
        self.queue.append(lambda: _error(400, "MessageRejected", "Email address is on the suppression list."))

    def refuse(self) -> None:
        """SES refuses the request itself (an operator must fix permissions or the identity)."""
        self.queue.append(lambda: _error(403, "AccessDeniedException", "not authorized to perform ses:SendEmail"))

    def server_error(self) -> None:
        self.queue.append(lambda: _error(500, "InternalFailure", "An internal error occurred."))

    def read_timeout(self) -> None:
        def fail() -> Any:
            raise ReadTimeoutError(endpoint_url=f"https://email.{REGION}.amazonaws.com/v2/email/outbound-emails")

        self.queue.append(fail)

    def before_call(self, **_: Any) -> Any:
        self.attempts += 1
        hook, self.during_send = self.during_send, None
        if hook is not None:
            hook()
        return self.queue.pop(0)() if self.queue else None


def _error(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    http = AWSResponse(f"https://email.{REGION}.amazonaws.com", status, {}, None)
    return http, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


@dataclass
class Stack:
    admin: Any  # set-up and inspection, outside the product
    session: Any  # the product's session
    settings: Settings
    clock: VirtualClock
    services: wiring.Services
    store: Store
    send: AuditedFunction
    sweep: AuditedFunction
    runner: SchedulerRunner
    outbox: Outbox
    ses: SesFaults
    dynamodb_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    # ---- driving ----

    def event(self, body: dict[str, Any]) -> None:
        raw = json.dumps(body, ensure_ascii=False)
        self.services.ingest(self.store, f"evt_{uuid.uuid4().hex}", parse_event(json.loads(raw)), fingerprint=raw)

    def cart_activity(self, cart_id: str, email: str, at: datetime, *, type: str = "cart.updated") -> None:
        when = at.isoformat()
        self.event(
            cart_updated(
                when, cart_id, email, customer_id=f"u-{cart_id}", timezone="Asia/Tokyo", kind=type, consent_at=when
            )
        )

    def order(self, cart_id: str, email: str, at: datetime) -> None:
        self.event(order_placed(at.isoformat(), cart_id, email, customer_id=f"u-{cart_id}", order_id=f"o-{cart_id}"))

    def advance(self, delta: timedelta) -> list[Any]:
        """Move time on, firing every schedule that falls due on the way; returns the send handler's answers."""
        _, result = self.runner.advance(delta.total_seconds())
        return [f.result if f.error is None else f.error for f in result.firings]

    def run_sweep(self) -> dict[str, Any]:
        result: dict[str, Any] = self.sweep.invoke(scheduled_event(self.clock.now()))
        return result

    def deliver_again(self, cart_id: str, step: int = 1) -> dict[str, Any]:
        """The send handler invoked once more with a firing's input (Scheduler and Lambda both retry)."""
        payload = {"store_id": self.store.store_id, "cart_id": cart_id, "flow": "cart_recovery", "step": step}
        result: dict[str, Any] = self.send.invoke(payload)
        return result

    # ---- looking ----

    def cart(self, cart_id: str) -> CartState:
        cart = self.services.carts.get(self.store.store_id, cart_id)
        assert cart is not None
        return cart

    def schedules(self) -> list[str]:
        scheduler = self.admin.client("scheduler")
        return sorted(s["Name"] for s in scheduler.list_schedules(GroupName=PREFIX)["Schedules"])

    def delete_schedule(self, name: str) -> None:
        self.admin.client("scheduler").delete_schedule(Name=name, GroupName=PREFIX)

    def sent_to(self, email: str) -> list[SentMessage]:
        return self.outbox.messages(to=email)


def new_email() -> str:
    return f"shopper-{uuid.uuid4().hex[:10]}@example.jp"


def emf_metrics(output: str) -> dict[str, float]:
    """Sum of every metric in the EMF lines a handler printed."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]
                values = value if isinstance(value, list) else [value]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(values)
    return totals


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in LAMBDA_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        admin = boto3.session.Session(region_name=REGION)
        tables = create_tables(admin.client("dynamodb"), ROOT / "template.yaml", PREFIX)
        admin.client("scheduler").create_schedule_group(Name=PREFIX)
        admin.client("sesv2").create_email_identity(EmailIdentity=DEMO_SENDER.partition("@")[2])
        settings = Settings(
            **{key.lower(): name for key, name in tables.items()},
            schedule_group=PREFIX,
            scheduler_role_arn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/{PREFIX}-scheduler",
            send_function_arn=SEND_ARN,
            scheduler_dlq_arn=f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:{PREFIX}-dlq",
            public_base_url="https://api.example.com",
            stage="test",
            check_aws_requests=True,
        )
        clock = VirtualClock(START, monotonic=lambda: 0.0)  # moves only when the test says so

        session = boto3.session.Session(region_name=REGION)
        audit = GrantAudit(load_template(ROOT / "template.yaml"))
        audit.table_ids = {name: name.removeprefix(f"{PREFIX}-") for name in tables.values()}
        audit.install(session)  # every call of the handlers is checked against their grants
        outbox = Outbox(clock)
        ses = SesFaults()
        # Hooks go on the session before its first client: a client copies the session's hooks when created.
        session.events.register("before-call.sesv2.SendEmail", ses.before_call)
        outbox.install(session)
        calls: list[tuple[str, dict[str, Any]]] = []
        session.events.register(
            "provide-client-params.dynamodb.*",
            lambda params, model, **_: calls.append((model.name, dict(params))),
        )

        store_settings = demo_store_settings()
        create_store(DynamoStoreRepository(admin.client("dynamodb"), settings.stores_table), store_settings, clock)
        wiring.configure(settings=settings, clock=clock, session=session)
        services = wiring.services()
        store = services.stores.get(store_settings["store_id"])
        assert store is not None
        send = AuditedFunction(
            LocalFunction("send", ROOT / "functions" / "send" / "app.py", region=REGION, stack_prefix=PREFIX),
            "SendFunction",
            audit,
        )
        sweep = AuditedFunction(
            LocalFunction("sweep", ROOT / "functions" / "sweep" / "app.py", region=REGION, stack_prefix=PREFIX),
            "SweepFunction",
            audit,
        )
        runner = SchedulerRunner(admin.client("scheduler"), PREFIX, clock, send.invoke, send_function_arn=SEND_ARN)
        try:
            yield Stack(
                admin, session, settings, clock, services, store, send, sweep, runner, outbox, ses, dynamodb_calls=calls
            )
        finally:
            wiring.reset()
