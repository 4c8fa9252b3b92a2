"""The ``/_local/`` routes: the local stack's controls and views, never deployed.

Contract routes (CONTRACT §3):

| route | answer |
|---|---|
| ``GET /_local/health`` | ``200 {"status": "ok"}`` (the server only listens once everything is ready) |
| ``GET /_local/stores/demo`` | the store's settings without secrets (any store id works) |
| ``POST /_local/clock/advance`` ``{"seconds": N}`` | ``{"now", "fired", ...}`` after running all that became due |
| ``GET /_local/outbox[?to=addr]`` | ``{"messages": [...]}``, oldest first |
| ``POST /_local/ses/{message_id}/{kind}`` | emits an SES event through the tracking handler |
| ``GET /_local/report?store=demo[&from=YYYY-MM-DD&to=YYYY-MM-DD]`` | the report JSON |
| ``GET /_local/`` | the console page |

Extensions (local only):

| route | answer |
|---|---|
| ``GET /_local/clock`` | ``{"now": RFC 3339}``, the virtual time |
| ``GET /_local/carts?store=demo`` | ``{"carts": [...]}``: each cart's status, timer, steps and decision log |
| ``GET /_local/outbox/{message_id}.html`` | a sent email's HTML body, as a page (scripts blocked) |
| ``GET /_local/schedules`` | ``{"schedules", "dead_letters", "recent"}``: armed steps, failed ones, firings |
| ``GET /_local/preview?store=demo&step=N[&locale=ja&flow=...&variant=b&part=html]`` | a step's preview (below) |

The preview renders a step as a send would, with the store's settings and uploaded templates, for a sample
cart and shopper: ``part=html`` (default) as a page (scripts blocked), ``part=text`` or ``part=subject`` as
plain text; a template error is a 422 problem naming file and line. ``variant`` is one of the A/B variants
the store lists for the step (default: its first, ``a``); another is a 404 problem naming the step's variants.

The carts view masks the shopper's address and shows the store's salted hash of it instead.
``POST /_local/clock/advance`` also answers ``sent`` (emails sent meanwhile) and ``failed`` (send invocations
that raised; retried on the next run). ``POST /_local/ses/...`` answers ``{"status": "emitted", "kind",
"message_id", "result"}`` where ``result`` is the tracking handler's answer (``{"batchItemFailures": []}``);
a click without ``{"url"}`` clicks the email's first shop link. A click is the shopper's (a phone browser, a
minute or more after the send) unless its body says otherwise, to emulate a mail security scanner or a script:
``{"user_agent": "python-requests/2.32.3"}`` (``""`` for none), ``{"seconds_after_send": 2}``. A record the
handler still fails after retries answers 502. Errors are ``application/problem+json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from cartrecovery.clock import isoformat
from cartrecovery.local.clock import check_seconds
from cartrecovery.local.http_types import Reply, Request, html_reply, json_reply, problem_reply
from cartrecovery.local.runtime import LocalRuntime
from cartrecovery.local.ses_events import KINDS, shopper_click_time

REPORT_DAYS_BACK = 400
REPORT_DAYS_AHEAD = 30
PREVIEW_PARTS = ("html", "text", "subject")
TEXT = "text/plain; charset=utf-8"
EMAIL_PAGE_CSP = "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; sandbox allow-popups"

Handler = Callable[[Request, dict[str, str]], Reply]


class LocalApi:
    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"^/_local/health$"), self.health),
            ("GET", re.compile(r"^/_local/?$"), self.console),
            ("GET", re.compile(r"^/_local/clock$"), self.clock),
            ("POST", re.compile(r"^/_local/clock/advance$"), self.advance),
            ("GET", re.compile(r"^/_local/stores/(?P<store_id>[^/]+)$"), self.store),
            ("GET", re.compile(r"^/_local/outbox$"), self.outbox),
            ("GET", re.compile(r"^/_local/outbox/(?P<message_id>[^/]+)\.html$"), self.outbox_html),
            ("POST", re.compile(r"^/_local/ses/(?P<message_id>[^/]+)/(?P<kind>[^/]+)$"), self.ses_event),
            ("GET", re.compile(r"^/_local/report$"), self.report),
            ("GET", re.compile(r"^/_local/carts$"), self.carts),
            ("GET", re.compile(r"^/_local/schedules$"), self.schedules),
            ("GET", re.compile(r"^/_local/preview$"), self.preview),
        ]

    def handles(self, path: str) -> bool:
        return path == "/_local" or path.startswith("/_local/")

    def __call__(self, request: Request) -> Reply:
        allowed = []
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if request.method == method or (request.method == "HEAD" and method == "GET"):
                return handler(request, match.groupdict())
            allowed.append(method)
        if allowed:
            reply = problem_reply(405, "Method Not Allowed", f"use {', '.join(sorted(set(allowed)))}")
            reply.headers["Allow"] = ", ".join(sorted(set(allowed)))
            return reply
        return problem_reply(404, "Not Found", f"no local route {request.path}")

    # ---- routes ----

    def health(self, request: Request, params: dict[str, str]) -> Reply:
        return json_reply(200, {"status": "ok"})

    def clock(self, request: Request, params: dict[str, str]) -> Reply:
        return json_reply(200, {"now": isoformat(self.runtime.clock.now())})

    def advance(self, request: Request, params: dict[str, str]) -> Reply:
        data = _json_body(request)
        seconds = data.get("seconds") if isinstance(data, dict) else None
        try:
            if seconds is None:
                raise ValueError('the body must be a JSON object with a number of seconds: {"seconds": N}')
            check_seconds(seconds)
        except ValueError as exc:
            return problem_reply(400, "Bad Request", str(exc), errors=[{"path": "seconds", "message": str(exc)}])
        before = len(self.runtime.outbox)
        now, result = self.runtime.advance(float(seconds))
        return json_reply(
            200,
            {
                "now": isoformat(now),
                "fired": result.fired,
                "sent": len(self.runtime.outbox) - before,
                "failed": result.failed,
            },
        )

    def store(self, request: Request, params: dict[str, str]) -> Reply:
        store = self.runtime.services().stores.get(params["store_id"])
        if store is None:
            return problem_reply(404, "Not Found", f"no store {params['store_id']!r}")
        return json_reply(200, store.settings.to_dict())

    def outbox(self, request: Request, params: dict[str, str]) -> Reply:
        messages = self.runtime.outbox.messages(to=request.query_param("to"))
        return json_reply(200, {"messages": [m.to_json() for m in messages]})

    def outbox_html(self, request: Request, params: dict[str, str]) -> Reply:
        message = self.runtime.outbox.get(params["message_id"])
        if message is None:
            return problem_reply(404, "Not Found", "no such message")
        return html_reply(200, message.parsed.html, {"Content-Security-Policy": EMAIL_PAGE_CSP})

    def ses_event(self, request: Request, params: dict[str, str]) -> Reply:
        kind = params["kind"]
        if kind not in KINDS or kind == "send":
            return problem_reply(
                400, "Bad Request", "kind must be one of delivery, open, click, bounce, complaint", kind=kind
            )
        message = self.runtime.outbox.get(params["message_id"])
        if message is None:
            return problem_reply(404, "Not Found", f"no message {params['message_id']!r} in the outbox")
        url = user_agent = at = None
        if kind == "click":
            data = _json_body(request) if request.body.strip() else {}
            if not isinstance(data, dict) or not isinstance(data.get("url", ""), str):
                return problem_reply(400, "Bad Request", 'the body must be a JSON object {"url": "https://..."}')
            url = data.get("url") or first_link(message.parsed.html, exclude=self.runtime.base_url)
            user_agent = data.get("user_agent")
            if user_agent is not None and not isinstance(user_agent, str):
                detail = "user_agent must be a string"
                return problem_reply(400, "Bad Request", detail, errors=[{"path": "user_agent", "message": detail}])
            after = data.get("seconds_after_send")
            try:
                if after is not None:
                    at = message.sent_at + timedelta(seconds=check_seconds(after))
            except ValueError as exc:
                errors = [{"path": "seconds_after_send", "message": str(exc)}]
                return problem_reply(400, "Bad Request", str(exc), errors=errors)
            at = at or shopper_click_time(message, self.runtime.clock.now())
        emission = self.runtime.ses.emit(kind, message, url=url, at=at, user_agent=user_agent)
        if not emission.ok:
            return problem_reply(502, "Tracking Failed", emission.error or "the tracking handler failed", kind=kind)
        return json_reply(
            200,
            {"status": "emitted", "kind": kind, "message_id": message.message_id, "result": emission.response},
        )

    def report(self, request: Request, params: dict[str, str]) -> Reply:
        from cartrecovery.usecases.report import build_report

        svc = self.runtime.services()
        store_id = request.query_param("store") or "demo"
        store = svc.stores.get(store_id)
        if store is None:
            return problem_reply(404, "Not Found", f"no store {store_id!r}")
        today = self.runtime.clock.now().astimezone(ZoneInfo(store.settings.timezone)).date()
        try:
            day_from = _day(request.query_param("from"), today - timedelta(days=REPORT_DAYS_BACK))
            day_to = _day(request.query_param("to"), today + timedelta(days=REPORT_DAYS_AHEAD))
        except ValueError:
            return problem_reply(400, "Bad Request", "from and to must be dates: YYYY-MM-DD")
        if day_from > day_to:
            return problem_reply(400, "Bad Request", "from must not be after to")
        return json_reply(200, build_report(svc.ledger, store_id, day_from, day_to))

    def carts(self, request: Request, params: dict[str, str]) -> Reply:
        store_id = request.query_param("store") or "demo"
        data = self.runtime.carts_view(store_id)
        if data is None:
            return problem_reply(404, "Not Found", f"no store {store_id!r}")
        return json_reply(200, {"store": store_id, "carts": data})

    def schedules(self, request: Request, params: dict[str, str]) -> Reply:
        runner = self.runtime.runner
        return json_reply(
            200,
            {
                "schedules": [
                    {
                        "name": s.name,
                        "due_at": isoformat(s.due_at),
                        "payload": s.payload(),
                        "failed_attempts": runner.attempts.get(s.name, 0),
                    }
                    for s in runner.pending()
                ],
                "dead_letters": [f.to_json() for f in runner.dead_letters],
                "recent": [f.to_json() for f in list(runner.history)[-50:]],
            },
        )

    def preview(self, request: Request, params: dict[str, str]) -> Reply:
        from cartrecovery.domain.store import CART_RECOVERY, VARIANT_NAME
        from cartrecovery.email.overrides import flow_steps
        from cartrecovery.email.render import TemplateError
        from cartrecovery.usecases.templates import UnknownVariant, preview_email

        svc = self.runtime.services()
        store_id = request.query_param("store") or "demo"
        store = svc.stores.get(store_id)
        if store is None:
            return problem_reply(404, "Not Found", f"no store {store_id!r}")
        step_text = request.query_param("step") or "1"
        flow = request.query_param("flow") or CART_RECOVERY
        part = request.query_param("part") or "html"
        if part not in PREVIEW_PARTS:
            return problem_reply(400, "Bad Request", f"part must be one of {', '.join(PREVIEW_PARTS)}")
        if not re.fullmatch(r"[1-9][0-9]{0,2}", step_text):
            return problem_reply(400, "Bad Request", "step must be a step number, e.g. step=1")
        variant = request.query_param("variant") or None
        if variant is not None and not VARIANT_NAME.match(variant):
            return problem_reply(400, "Bad Request", "variant must be a variant name, e.g. variant=b")
        overrides = svc.stores.get_templates(store_id)
        if (flow, int(step_text)) not in flow_steps(svc.renderer.templates_dir, overrides):
            return problem_reply(404, "Not Found", f"no templates for flow {flow!r} step {step_text}")
        try:
            preview = preview_email(
                store,
                overrides,
                int(step_text),
                flow=flow,
                locale=request.query_param("locale"),
                now=self.runtime.clock.now(),
                public_base_url=self.runtime.base_url,
                renderer=svc.renderer,
                variant=variant,
            )
        except UnknownVariant as exc:  # well-formed, but not one of this step's: like a step it does not have
            return problem_reply(404, "Not Found", str(exc))
        except TemplateError as exc:
            return problem_reply(422, "Template Error", str(exc))
        if part == "html":
            return html_reply(200, preview.email.html, {"Content-Security-Policy": EMAIL_PAGE_CSP})
        text = preview.email.text if part == "text" else preview.email.subject + "\n"
        return Reply(200, text.encode("utf-8"), {"Content-Type": TEXT, "Cache-Control": "no-store"})

    def console(self, request: Request, params: dict[str, str]) -> Reply:
        from cartrecovery.local.console import render_console

        return html_reply(200, render_console(self.runtime, request.query_param("store") or "demo"))


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.body.decode("utf-8")) if request.body else None
    except (UnicodeDecodeError, ValueError):
        return None


def _day(text: str | None, default: date) -> date:
    if not text:
        return default
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(text)
    return date.fromisoformat(text)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href and href.startswith(("http://", "https://")):
                self.links.append(href)


def first_link(html: str, exclude: str = "") -> str:
    """The email's first link to the shop (not the unsubscribe link), as a shopper would click it."""
    parser = _Links()
    parser.feed(html)
    for link in parser.links:
        if not (exclude and link.startswith(exclude)) and "/u/" not in link:
            return link
    return parser.links[0] if parser.links else ""
