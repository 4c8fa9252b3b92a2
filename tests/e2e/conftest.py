"""End-to-end fixtures: the local stack (``python -m cartrecovery.local``) as a real process, over real HTTP.

``local_stack`` (session-scoped) starts one stack for the whole session in a temporary working directory
(so a developer's own ``make run`` and its ``.local/`` files are left alone), on a free port, with the
virtual clock starting at ``CLOCK_START`` (10:00 in Tokyo, outside the demo store's quiet hours) and fixed
demo secrets. It waits for ``/_local/health`` (failing with the process output if the stack does not come
up) and stops the process at the end.

The stack is shared by every test of the session, so tests must not depend on what others did:

- use fresh ids and addresses (``new_id()``, ``unique_email()``), and read the outbox by address
  (``stack.outbox(to=...)``);
- the virtual clock only moves forward and every test moves it: build ``occurred_at`` from ``stack.now()``,
  never from fixed dates, and use ``stack.advance_to_local_time(10)`` first when quiet hours (21:00-08:00
  Tokyo) would otherwise defer a step;
- the virtual clock also ticks with real time, and every move is relative to the moment the stack handles the
  request: a time reached by advancing is that time plus the fraction of a second the requests took, or more
  under load (``start_cart(hour=20)`` can post at 20:00:01). Compare with the times the stack reports (the
  ``occurred_at`` a builder returns, ``sent_at``) or with boundaries the product defines (quiet hours end at
  08:00:00), never with a second assumed to be zero;
- the report is cumulative: compare before and after (``report_delta``), counting the messages that
  appeared in the outbox meanwhile, not absolute numbers;
- ``advance`` fires everyone's due schedules, not only yours.

Webhook signatures use the wall clock (the ±300 s tolerance is checked against real time), business time
(``occurred_at``) comes from the stack's virtual clock. The builders (``cart_event``, ``order_event``,
``new_id``, ``unique_email``, ``sent_at``, ``report_delta``, ``unsubscribe_url``) are functions of this module,
reachable from tests as attributes of the fixture (``local_stack.cart_event(...)``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cartrecovery.signing import sign, sign_shopify
from cartrecovery.usecases.report import COLUMNS as REPORT_COLUMNS

CLOCK_START = "2026-12-01T10:00:00+09:00"
DEMO_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks test vector's secret
DEMO_SHOPIFY_SECRET = "shpss_e2e_0123456789abcdef0123456789abcdef"
STORE_ID = "demo"
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 60.0
TOKYO = ZoneInfo("Asia/Tokyo")


# ---- builders ----


def new_id(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def unique_email(prefix: str = "shopper", domain: str = "example.jp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@{domain}"


def rfc3339(moment: datetime | str) -> str:
    return moment if isinstance(moment, str) else moment.isoformat()


def sent_at(message: dict[str, Any]) -> datetime:
    """When an outbox message went out (aware)."""
    return datetime.fromisoformat(message["sent_at"])


def cart_event(
    cart_id: str,
    email: str | None,
    occurred_at: datetime | str,
    type: str = "cart.updated",
    consent: bool | None = True,
    *,
    customer_id: str | None = None,
    name: str = "山田 太郎",
    locale: str = "ja",
    timezone: str = "Asia/Tokyo",
    items: list[dict[str, Any]] | None = None,
    currency: str = "JPY",
    total: int | float | None = None,
    recovery_url: str | None = None,
    consent_at: datetime | str | None = None,
) -> dict[str, Any]:
    """A v1 cart event (``cart.updated`` or ``checkout.started``) as a store's backend posts it.

    ``consent=None`` leaves ``marketing_consent`` out; ``email=None`` leaves the address out."""
    when = rfc3339(occurred_at)
    items = (
        items
        if items is not None
        else [
            {
                "sku": "TEA-001",
                "name": "抹茶ラテ",
                "url": "https://shop.example.jp/products/tea-001",
                "image_url": "https://shop.example.jp/img/tea-001.jpg",
                "unit_price": 1280,
                "quantity": 2,
            }
        ]
    )
    customer: dict[str, Any] = {
        "id": customer_id or f"u-{cart_id}",
        "name": name,
        "locale": locale,
        "timezone": timezone,
    }
    if email is not None:
        customer["email"] = email
    if consent is not None:
        customer["marketing_consent"] = {
            "granted": consent,
            "at": rfc3339(consent_at) if consent_at is not None else when,
            "source": "checkout-form",
        }
    return {
        "type": type,
        "occurred_at": when,
        "customer": customer,
        "cart": {
            "id": cart_id,
            "currency": currency,
            "items": items,
            "total": total if total is not None else sum(i["unit_price"] * i["quantity"] for i in items),
            "recovery_url": recovery_url or f"https://shop.example.jp/cart/restore?cart={cart_id}",
        },
    }


def order_event(
    cart_id: str,
    email: str,
    occurred_at: datetime | str,
    *,
    total: int | float = 2560,
    currency: str = "JPY",
    order_id: str | None = None,
    customer_id: str | None = None,
) -> dict[str, Any]:
    """An ``order.placed`` event for ``cart_id``."""
    return {
        "type": "order.placed",
        "occurred_at": rfc3339(occurred_at),
        "customer": {"id": customer_id or f"u-{cart_id}", "email": email},
        "order": {"id": order_id or new_id("o"), "cart_id": cart_id, "total": total, "currency": currency},
    }


def unsubscribe_url(message: dict[str, Any]) -> str:
    """The URL of an outbox message's ``List-Unsubscribe`` header."""
    return str(message["headers"]["List-Unsubscribe"]).strip().strip("<>")


def report_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``after - before`` of the report totals, column by column."""
    return {c: after["totals"][c] - before["totals"][c] for c in REPORT_COLUMNS}


# ---- the stack ----


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class LocalStack:
    base_url: str
    secret: str
    shopify_secret: str
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    store_id: str = STORE_ID

    # The builders, reachable from tests without importing this module (``import conftest`` is ambiguous
    # once another test folder has a conftest.py of its own).
    cart_event = staticmethod(cart_event)
    order_event = staticmethod(order_event)
    new_id = staticmethod(new_id)
    unique_email = staticmethod(unique_email)
    sent_at = staticmethod(sent_at)
    report_delta = staticmethod(report_delta)
    unsubscribe_url = staticmethod(unsubscribe_url)

    # -- plain HTTP --

    def request(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | list[Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> Response:
        """Any request; never raises on an HTTP error status (the status is in the response)."""
        data: bytes | None
        headers = dict(headers or {})
        if isinstance(body, dict | list):
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers.setdefault("content-type", "application/json")
        else:
            data = body
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(
        self, path: str, body: bytes | dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        return self.request("POST", path, body if body is not None else b"", headers)

    def _ok(self, response: Response) -> Any:
        assert response.status == 200, f"{response.status}: {response.text}"
        return response.json()

    # -- the public API --

    def post_event(
        self,
        body: dict[str, Any] | bytes,
        event_id: str | None = None,
        secret: str | None = None,
        *,
        timestamp: int | None = None,
        store: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Sign (Standard Webhooks, wall-clock timestamp) and post one event; returns (status, JSON body)."""
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
        event_id = event_id or f"evt_{uuid.uuid4().hex}"
        stamp = int(time.time()) if timestamp is None else timestamp
        signed = {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret or self.secret, event_id, stamp, raw),
            **(headers or {}),
        }
        response = self.request("POST", f"/v1/stores/{store or self.store_id}/events", raw, signed)
        return response.status, _json_or_text(response)

    def post_shopify(
        self,
        payload: dict[str, Any] | bytes,
        topic: str,
        webhook_id: str | None = None,
        secret: str | None = None,
        *,
        store: str | None = None,
    ) -> tuple[int, Any]:
        """Post a Shopify webhook signed with ``X-Shopify-Hmac-SHA256``; returns (status, JSON body)."""
        raw = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {
            "content-type": "application/json",
            "x-shopify-topic": topic,
            "x-shopify-hmac-sha256": sign_shopify(secret or self.shopify_secret, raw),
            "x-shopify-webhook-id": webhook_id or str(uuid.uuid4()),
            "x-shopify-shop-domain": "demo.myshopify.com",
            "x-shopify-triggered-at": datetime.now(UTC).isoformat(),
        }
        response = self.request("POST", f"/v1/stores/{store or self.store_id}/shopify", raw, headers)
        return response.status, _json_or_text(response)

    def start_cart(self, hour: int = 10, **fields: Any) -> tuple[str, str, datetime]:
        """A fresh shopper's cart (``cart_event`` with ``fields``) posted at ``hour``:00 Tokyo, give or take
        the second the requests took: (cart id, address, occurred_at, which is the exact time posted)."""
        self.advance_to_local_time(hour)
        cart_id, email = new_id(), unique_email()
        at = self.now()
        status, body = self.post_event(cart_event(cart_id, email, at, **fields))
        assert status == 202, body
        return cart_id, email, at

    def new_store(self, settings: dict[str, Any] | None = None) -> tuple[str, str]:
        """A store of the calling test's own, for what must not touch the shared demo store (its settings, its
        report): created with ``cartrecovery store create`` and ``settings`` as its settings file.
        Returns (store id, webhook secret)."""
        store_id = new_id("shop")
        extra: list[str] = []
        if settings is not None:
            path = self.workdir / f"{store_id}.json"
            path.write_text(json.dumps(settings), encoding="utf-8")
            extra = ["--settings", str(path)]
        sender = self.store_settings()["sender_email"]
        created = self.cli(
            *("store", "create", "--id", store_id, "--name", "新茶屋", "--sender-email", sender),
            *("--address", "京都府京都市下京区 1-2-3", "--contact", "support@example.jp", *extra),
        )
        assert created.returncode == 0, created.stderr
        lines = created.stdout.splitlines()
        return store_id, next(line.split(": ", 1)[1] for line in lines if line.startswith("webhook secret"))

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """The operator CLI against this stack (``--local`` finds it through ``.local/`` in its folder)."""
        return subprocess.run(
            [sys.executable, "-m", "cartrecovery.cli.main", "--local", *argv],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    # -- /_local/ --

    def now(self) -> datetime:
        """The stack's virtual time (aware)."""
        return datetime.fromisoformat(self._ok(self.get("/_local/clock"))["now"].replace("Z", "+00:00"))

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the virtual clock and run all that became due; returns ``{"now", "fired", ...}``."""
        result: dict[str, Any] = self._ok(self.post("/_local/clock/advance", {"seconds": seconds}))
        return result

    def advance_to_local_time(self, hour: int, minute: int = 0, zone: ZoneInfo = TOKYO) -> dict[str, Any]:
        """Advance to the next ``hour:minute`` in ``zone`` (e.g. 10:00 Tokyo, clear of quiet hours); the clock
        lands there plus the time the requests took (it ticks with real time)."""
        now = self.now()
        local = now.astimezone(zone)
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= local:
            target += timedelta(days=1)
        return self.advance(max(0.0, (target - now).total_seconds()))

    def advance_until(self, moment: datetime) -> dict[str, Any]:
        """Move the virtual clock to ``moment`` (running all that falls due on the way)."""
        seconds = (moment - self.now()).total_seconds()
        assert seconds >= 0, f"{moment} is already past"
        return self.advance(seconds)

    def outbox(self, to: str | None = None) -> list[dict[str, Any]]:
        path = "/_local/outbox" + (f"?{urllib.parse.urlencode({'to': to})}" if to else "")
        messages: list[dict[str, Any]] = self._ok(self.get(path))["messages"]
        return messages

    def report(
        self, store: str | None = None, day_from: str | None = None, day_to: str | None = None
    ) -> dict[str, Any]:
        query = {"store": store or self.store_id}
        if day_from:
            query["from"] = day_from
        if day_to:
            query["to"] = day_to
        report: dict[str, Any] = self._ok(self.get("/_local/report?" + urllib.parse.urlencode(query)))
        return report

    def ses(self, message_id: str, kind: str, url: str | None = None, **click: Any) -> Response:
        """Emit an SES event (delivery, open, click, bounce, complaint) for a sent message; ``click`` takes the
        route's other click fields (``user_agent``, ``seconds_after_send``) to emulate a machine's click."""
        body = {**({"url": url} if url else {}), **click} or None
        return self.post(f"/_local/ses/{urllib.parse.quote(message_id, safe='')}/{kind}", body)

    def carts(self, store: str | None = None) -> list[dict[str, Any]]:
        carts: list[dict[str, Any]] = self._ok(self.get(f"/_local/carts?store={store or self.store_id}"))["carts"]
        return carts

    def cart(self, cart_id: str, store: str | None = None) -> dict[str, Any] | None:
        return next((c for c in self.carts(store) if c["cart_id"] == cart_id), None)

    def cart_view(self, cart_id: str, store: str | None = None) -> dict[str, Any]:
        """A cart that must be there (``cart`` for one that may not)."""
        cart = self.cart(cart_id, store)
        assert cart is not None, f"cart {cart_id} is not in /_local/carts"
        return cart

    def store_settings(self, store: str | None = None) -> dict[str, Any]:
        settings: dict[str, Any] = self._ok(self.get(f"/_local/stores/{store or self.store_id}"))
        return settings

    def log_text(self) -> str:
        """Everything the stack printed so far (for assertion messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _json_or_text(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _tail(path: Path, lines: int = 80) -> str:
    if not path.exists():
        return "(no output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _start(workdir: Path) -> LocalStack:
    log_path = workdir / "stack.log"
    env = {
        **os.environ,
        "PORT": "0",  # the stack picks a free port and writes its URL to .local/demo-store.json
        "CARTRECOVERY_CLOCK_START": CLOCK_START,
        "CARTRECOVERY_DEMO_SECRET": DEMO_SECRET,
        "CARTRECOVERY_DEMO_SHOPIFY_SECRET": DEMO_SHOPIFY_SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cartrecovery.local"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl+C on pytest does not hit the stack before teardown
        )
    stack = LocalStack("", DEMO_SECRET, DEMO_SHOPIFY_SECRET, workdir, log_path, process)
    deadline = time.monotonic() + START_TIMEOUT
    demo_file = workdir / ".local" / "demo-store.json"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited with {process.returncode}:\n{_tail(log_path)}")
        if not stack.base_url and demo_file.exists():
            with contextlib.suppress(ValueError, KeyError):  # still being written
                stack.base_url = json.loads(demo_file.read_text())["base_url"]
        if stack.base_url:
            try:
                if stack.get("/_local/health").status == 200:
                    return stack
            except OSError:
                pass
        time.sleep(0.2)
    _stop(process)
    raise RuntimeError(f"the local stack was not healthy within {START_TIMEOUT:.0f} s:\n{_tail(log_path)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The running local stack (see the module docstring for the rules of sharing it)."""
    failure = ""
    try:
        stack = _start(tmp_path_factory.mktemp("local-stack"))
    except RuntimeError as exc:
        failure = str(exc)
    if failure:
        pytest.fail(failure, pytrace=False)
    try:
        yield stack
    finally:
        assert stack.process is not None
        _stop(stack.process)
