"""The reference cart: 4 cart events, then 3 emails (2 hours, 3 days and 7 days later), and for each email
the 4 events SES publishes when it is opened and clicked (Send, Delivery, Open, Click).

The scheduler runner of the local mode fires due schedules into the send handler; SES events are built
as the configuration set would publish them and handed to the tracking handler one SQS batch each, those
that ``template.yaml``'s EventBridge rule routes to the tracking queue.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench import REPO
from bench.moto_stack import SEND_ARN, MotoStack, signed_api_event
from cartrecovery.local.outbox import Outbox
from cartrecovery.local.scheduler_runner import SchedulerRunner
from cartrecovery.local.ses_events import KINDS, eventbridge_envelope, ses_record, sqs_event

CLOCK_START = datetime.fromisoformat("2026-12-01T10:00:00+09:00")
TRACKING_KINDS = ("send", "delivery", "open", "click")
ITEMS = [
    ("TEA-001", "抹茶ラテ", 1280),
    ("CUP-014", "有田焼 マグカップ", 3300),
    ("TWL-203", "今治タオル フェイスタオル", 1650),
]


def routed_detail_types() -> set[str] | None:
    """The detail-types the SES events rule sends to tracking (None: the rule does not filter on them)."""
    from cartrecovery.local.resources import load_template

    template = load_template(REPO / "template.yaml")
    pattern = template["Resources"]["SesEventsRule"]["Properties"]["EventPattern"]
    return set(pattern["detail-type"]) if "detail-type" in pattern else None


@dataclass
class Invocations:
    """Per function: each invocation's wall time (ms) and what it wrote to stdout (its log lines)."""

    durations_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    log_bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    log_text: list[str] = field(default_factory=list)

    def call(self, stack: MotoStack, name: str, event: dict[str, Any]) -> Any:
        with _stdout_captured() as captured:
            start = time.perf_counter()
            try:
                result = stack.functions[name].invoke(event)
            finally:
                self.durations_ms[name].append((time.perf_counter() - start) * 1000)
        self.log_bytes[name] += len(captured[0].encode("utf-8"))
        self.log_text.append(captured[0])
        return result

    def count(self, name: str) -> int:
        return len(self.durations_ms[name])


@contextlib.contextmanager
def _stdout_captured() -> Iterator[list[str]]:
    """What the handler prints (Powertools logs and EMF metrics go to file descriptor 1)."""
    box = [""]
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield box
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            box[0] = tmp.read().decode("utf-8", "replace")


def cart_event(cart_id: str, email: str, at: datetime, items: int, kind: str = "cart.updated") -> dict[str, Any]:
    lines = [
        {"sku": sku, "name": name, "url": f"https://shop.example.jp/p/{sku}", "unit_price": price, "quantity": 1}
        for sku, name, price in ITEMS[:items]
    ]
    return {
        "type": kind,
        "occurred_at": at.isoformat(),
        "customer": {
            "id": f"u-{cart_id}",
            "email": email,
            "name": "山田 太郎",
            "locale": "ja",
            "timezone": "Asia/Tokyo",
            "marketing_consent": {"granted": True, "at": at.isoformat(), "source": "checkout-form"},
        },
        "cart": {
            "id": cart_id,
            "currency": "JPY",
            "items": lines,
            "total": sum(line["unit_price"] for line in lines),
            "recovery_url": f"https://shop.example.jp/cart/restore?cart={cart_id}",
        },
    }


class Lifecycle:
    """Drives carts through a ``MotoStack``; ``outbox`` must be installed on its session first."""

    def __init__(self, stack: MotoStack, outbox: Outbox) -> None:
        self.stack = stack
        self.outbox = outbox
        self.invocations = Invocations()
        self.routed = routed_detail_types()
        self.runner = SchedulerRunner(
            stack.admin.client("scheduler"),
            stack.settings.schedule_group,
            stack.clock,
            lambda payload: self.invocations.call(stack, "send", payload),
            send_function_arn=SEND_ARN,
            after_invoke=self._track_new_messages,
        )

    def run_cart(self) -> str:
        """One reference cart, start to finish; returns its shopper's address."""
        cart_id = f"c-{uuid.uuid4().hex[:12]}"
        email = f"shopper-{uuid.uuid4().hex[:8]}@example.jp"
        kinds = ("cart.updated", "cart.updated", "cart.updated", "checkout.started")
        for index, kind in enumerate(kinds):
            if index:
                self.runner.advance(300)
            body = cart_event(cart_id, email, self.stack.clock.now(), min(index + 1, len(ITEMS)), kind)
            answer = self.invocations.call(self.stack, "ingest", signed_api_event(body))
            if answer["statusCode"] != 202:
                raise RuntimeError(f"event not accepted: {answer}")
        self.runner.advance(timedelta(days=8).total_seconds())
        return email

    def _track_new_messages(self) -> None:
        for message in self.outbox.take_unannounced():
            for offset, kind in enumerate(TRACKING_KINDS):
                if self.routed is not None and KINDS[kind][1] not in self.routed:
                    continue  # filtered out by the rule: never reaches SQS or the function
                at = self.stack.clock.now() + timedelta(minutes=offset * 20)
                url = "https://shop.example.jp/cart/restore" if kind == "click" else None
                envelope = eventbridge_envelope(ses_record(kind, message, at, url=url), at)
                answer = self.invocations.call(self.stack, "tracking", sqs_event([json.dumps(envelope)]))
                if answer.get("batchItemFailures"):
                    raise RuntimeError(f"tracking failed: {answer}")
