"""Assembles the local stack: emulator, wiring, the deployed handlers, scheduler runner, SES events.

``start_runtime`` does, in order: start moto; point boto3 at it; create the tables (from ``template.yaml``),
the schedule group and SES; configure ``cartrecovery.wiring`` with the virtual clock and a session whose
SES calls feed the outbox; load the handlers (the scheduler runner also runs the sweep's); create the demo
store. Nothing of this is deployed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

from cartrecovery.clock import isoformat
from cartrecovery.domain.cart import CartState
from cartrecovery.identity import email_hash
from cartrecovery.local.clock import VirtualClock
from cartrecovery.local.config import LocalConfig
from cartrecovery.local.demo import DEMO_SENDER, DEMO_STORE_ID, demo_store_settings
from cartrecovery.local.emulator import (
    REGION,
    SCHEDULER_DLQ_ARN,
    SCHEDULER_ROLE_ARN,
    SEND_FUNCTION_ARN,
    Emulator,
    Provisioned,
    isolate_aws_environment,
)
from cartrecovery.local.lambda_invoke import ACCOUNT_ID, Functions, find_functions_dir
from cartrecovery.local.outbox import Outbox
from cartrecovery.local.scheduler_runner import RunResult, SchedulerRunner
from cartrecovery.local.ses_events import Emission, SesEventEmitter
from cartrecovery.settings import Settings

log = logging.getLogger("cartrecovery.local")

SETTINGS_ENV = {  # Settings field -> the environment variable Settings.from_env reads
    "stores_table": "STORES_TABLE",
    "events_table": "EVENTS_TABLE",
    "carts_table": "CARTS_TABLE",
    "contacts_table": "CONTACTS_TABLE",
    "messages_table": "MESSAGES_TABLE",
    "counters_table": "COUNTERS_TABLE",
    "coupons_table": "COUPONS_TABLE",
    "schedule_group": "SCHEDULE_GROUP",
    "scheduler_role_arn": "SCHEDULER_ROLE_ARN",
    "send_function_arn": "SEND_FUNCTION_ARN",
    "scheduler_dlq_arn": "SCHEDULER_DLQ_ARN",
    "ses_configuration_set": "SES_CONFIGURATION_SET",
    "public_base_url": "PUBLIC_BASE_URL",
    "stage": "CARTRECOVERY_STAGE",
}


@dataclass
class LocalRuntime:
    config: LocalConfig
    base_url: str
    clock: VirtualClock
    emulator: Emulator
    provisioned: Provisioned
    settings: Settings
    functions: Functions
    outbox: Outbox
    ses: SesEventEmitter
    runner: SchedulerRunner
    repo_root: Path
    started_at: datetime = field(default_factory=lambda: datetime.now().astimezone())

    # ---- what the routes do ----

    def announce_sent(self) -> list[Emission]:
        """Emit Send and Delivery for every message sent since the last call (after its handler returned)."""
        emissions: list[Emission] = []
        for message in self.outbox.take_unannounced():
            emissions += self.ses.announce(message)
        return emissions

    def advance(self, seconds: float) -> tuple[datetime, RunResult]:
        now, result = self.runner.advance(seconds)
        self.announce_sent()  # anything sent outside the runner meanwhile
        return now, result

    def services(self) -> Any:
        from cartrecovery.wiring import services

        return services()

    def carts_view(self, store_id: str) -> list[dict[str, Any]] | None:
        """Every cart of a store with its decision log, newest activity first; None for an unknown store."""
        svc = self.services()
        store = svc.stores.get(store_id)
        if store is None:
            return None
        carts = svc.carts.list_for_store(store_id)
        carts.sort(key=lambda c: c.last_activity_at or c.first_seen_at or self.started_at, reverse=True)
        return [cart_json(cart, store.salt) for cart in carts]

    # ---- files for operators and scripts ----

    def demo_store_file(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "store_id": DEMO_STORE_ID,
            "webhook_secret": self.config.webhook_secret,
            "shopify_secret": self.config.shopify_secret,
        }

    def runtime_file(self) -> dict[str, Any]:
        values = {name: str(getattr(self.settings, attr)) for attr, name in SETTINGS_ENV.items()}
        return {
            "endpoint_url": self.emulator.endpoint_url,
            "region": REGION,
            "env": values,  # what Settings.from_env reads (the operator CLI's --local uses it)
            "tables": self.provisioned.tables,
            "schedule_group": self.provisioned.schedule_group,
            "base_url": self.base_url,
            "pid": os.getpid(),
            "clock_start": isoformat(self.config.clock_start),
            "started_at": isoformat(self.started_at),
        }

    def write_state_files(self) -> None:
        directory = self.config.state_dir
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(directory / "demo-store.json", self.demo_store_file())
        _write_private(directory / "runtime.json", self.runtime_file())

    def remove_runtime_file(self) -> None:
        path = self.config.state_dir / "runtime.json"
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        self.runner.stop()
        self.emulator.stop()


def cart_json(cart: CartState, salt: str) -> dict[str, Any]:
    """A cart as the console shows it: no address in clear (masked, and the store's salted hash)."""
    email = cart.customer.email
    consent = cart.customer.consent
    return {
        "cart_id": cart.cart_id,
        "status": cart.status,
        "customer": {
            "email": mask_email(email) if email else None,
            "email_hash": email_hash(salt, email) if email else None,
            "locale": cart.customer.locale,
            "timezone": cart.customer.timezone,
            "consent": consent.granted if consent else None,
        },
        "items": len(cart.items),
        "total": _number(cart.total),
        "currency": cart.currency,
        "first_seen_at": _time(cart.first_seen_at),
        "last_activity_at": _time(cart.last_activity_at),
        "closed_at": _time(cart.closed_at),
        "order_id": cart.order_id,
        "timer": {
            "flow": cart.timer.flow,
            "step": cart.timer.step,
            "due_at": isoformat(cart.timer.due_at),
            "schedule_name": cart.timer.schedule_name,
        }
        if cart.timer
        else None,
        "steps": {
            key: {
                "status": r.status,
                "at": isoformat(r.at),
                "variant": r.variant,
                "message_id": r.message_id,
                "day": r.day,
                "reason": r.reason,
            }
            for key, r in sorted(cart.steps.items())
        },
        "decisions": [
            {
                "at": isoformat(d.at),
                "action": d.action,
                "flow": d.flow,
                "step": d.step,
                "reason": d.reason,
                "until": _time(d.until),
            }
            for d in cart.decisions
        ],
    }


def mask_email(email: str) -> str:
    """``t***@example.jp``: enough to tell test shoppers apart on screen, not the address itself."""
    local, at, domain = email.partition("@")
    return (local[:1] + "***" + at + domain) if at else "***"


def _time(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment else None


def _number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Written atomically, readable by the owner only (it holds secrets)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def find_repo_root() -> Path:
    functions = find_functions_dir()
    return functions.parent


def start_runtime(config: LocalConfig, base_url: str) -> LocalRuntime:
    """Everything but the HTTP server; raises if any part cannot start (the caller stops what started)."""
    emulator = Emulator(config.host)
    endpoint = emulator.start()
    try:
        return _assemble(config, base_url, emulator, endpoint)
    except BaseException:
        emulator.stop()
        raise


def _assemble(config: LocalConfig, base_url: str, emulator: Emulator, endpoint: str) -> LocalRuntime:
    isolate_aws_environment(endpoint)
    repo_root = find_repo_root()
    provisioned = emulator.provision(repo_root / "template.yaml")
    emulator.verify_sender(DEMO_SENDER)
    tables = {key.lower(): value for key, value in provisioned.tables.items()}
    settings = Settings(
        **tables,
        schedule_group=provisioned.schedule_group,
        scheduler_role_arn=SCHEDULER_ROLE_ARN,
        send_function_arn=SEND_FUNCTION_ARN,
        scheduler_dlq_arn=SCHEDULER_DLQ_ARN,
        ses_configuration_set=provisioned.configuration_set,
        public_base_url=base_url,
        stage="local",
        check_aws_requests=True,  # a developer's malformed request fails here with botocore's exact message
    )
    clock = VirtualClock(config.clock_start)
    outbox = Outbox(clock)
    session = boto3.session.Session(region_name=REGION)
    outbox.install(session, before_send=lambda params: emulator.verify_sender(str(params.get("FromEmailAddress", ""))))

    from cartrecovery import wiring

    wiring.configure(settings=settings, clock=clock, session=session)
    _warm(wiring.services())

    functions = Functions.load(repo_root / "functions", region=REGION, api_concurrency=config.api_concurrency)
    ses = SesEventEmitter(functions.tracking.invoke, clock)
    runtime_ref: list[LocalRuntime] = []
    runner = SchedulerRunner(
        emulator.client("scheduler"),
        provisioned.schedule_group,
        clock,
        functions.send.invoke,
        send_function_arn=SEND_FUNCTION_ARN,
        after_invoke=lambda: runtime_ref[0].announce_sent() if runtime_ref else None,
        sweep=lambda: functions.sweep.invoke(scheduled_event(clock.now())),
    )
    runtime = LocalRuntime(
        config=config,
        base_url=base_url,
        clock=clock,
        emulator=emulator,
        provisioned=provisioned,
        settings=settings,
        functions=functions,
        outbox=outbox,
        ses=ses,
        runner=runner,
        repo_root=repo_root,
    )
    runtime_ref.append(runtime)
    _create_demo_store(runtime)
    return runtime


def scheduled_event(now: datetime) -> dict[str, Any]:
    """What an EventBridge rule on a rate schedule hands the sweep function."""
    return {
        "version": "0",
        "id": f"local-sweep-{int(now.timestamp())}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": isoformat(now),
        "region": REGION,
        "resources": [],
        "detail": {},
    }


def _warm(svc: Any) -> None:
    """Build every client and adapter now, on one thread: boto3 sessions are not thread-safe when creating
    clients, and the first request should not pay for it."""
    for name in ("stores", "events", "carts", "contacts", "ledger", "schedules", "mailer", "renderer"):
        getattr(svc, name)
    for name in ("ingest", "run_step", "reconcile", "track", "unsubscribe"):
        getattr(svc, name)


def _create_demo_store(runtime: LocalRuntime) -> None:
    from cartrecovery.usecases.stores import create_store

    svc = runtime.services()
    create_store(
        svc.stores,
        demo_store_settings(),
        runtime.clock,
        webhook_secret=runtime.config.webhook_secret,
        shopify_secret=runtime.config.shopify_secret,
    )
