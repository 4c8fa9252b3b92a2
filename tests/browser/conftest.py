"""Browser fixtures: Debian's headless Chromium driven by Playwright, against the e2e local stack.

``local_stack`` is the e2e fixture itself (``tests/e2e/conftest.py``, loaded once by ``tests/shared_fixtures.py``
so that both folders' ``conftest`` modules can coexist); the rules of sharing it are in that module's
docstring. Chromium is ``/usr/bin/chromium`` (``make chromium`` installs it; Playwright's own browser
download is not used). When it is missing, every test of this folder is skipped with that reason, before
any stack is started; any other launch failure is an error.

``tab`` is a fresh browser context and page per test that records what a person (and a privacy reviewer)
would notice: JavaScript errors and console errors (``tab.errors``), and every URL the page asked for
(``tab.requests``). Requests to the local stack go through; images under ``https://shop.example.jp/img/``
(what the example carts use) are answered with a small PNG so that emails render offline; anything else
is blocked and stays listed in ``tab.requests``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route, sync_playwright

from tests import shared_fixtures
from tests.shared_fixtures import CHROMIUM, CHROMIUM_ARGS, chromium_missing

SHOP_IMAGES = "https://shop.example.jp/img/"
# A 1x1 opaque PNG: stands in for the shop's product images.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
TIMEOUT_MS = 20_000


local_stack = shared_fixtures.local_stack


@pytest.fixture(scope="session", autouse=True)
def _requires_chromium() -> None:
    """Autouse and session-scoped, so it runs before ``local_stack`` is started."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Tab:
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        """Record ``page``'s JavaScript and console errors (the first page and every popup)."""
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.on("console", lambda message: self._console(page, message))

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{page.url}: {message.text}")

    def external_requests(self, base_url: str) -> list[str]:
        """Every requested URL that is neither the local stack nor inline content."""
        return [
            url
            for url in self.requests
            if not url.startswith(base_url + "/") and not url.startswith(("data:", "about:"))
        ]


def new_tab(browser: Browser, local_base_url: str, **context_options: Any) -> Tab:
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", **context_options)
    tab = Tab(context, context.new_page())
    tab.watch(tab.page)
    context.on("page", tab.watch)

    def route(route: Route) -> None:
        url = route.request.url
        tab.requests.append(url)
        if url.startswith(local_base_url + "/"):
            route.continue_()
        elif url.startswith(SHOP_IMAGES):
            route.fulfill(status=200, content_type="image/png", body=PNG)
        else:
            route.abort("blockedbyclient")

    context.route("**/*", route)
    return tab


@pytest.fixture
def tab(browser: Browser, local_stack: Any) -> Iterator[Tab]:
    """A fresh context (Japanese locale, Tokyo time) and page; closed after the test."""
    opened = new_tab(browser, local_stack.base_url)
    try:
        yield opened
    finally:
        opened.context.close()


@pytest.fixture
def phone_tab(browser: Browser, local_stack: Any) -> Iterator[Tab]:
    """Like ``tab`` on a phone-sized screen (375 x 667, touch, device scale 2)."""
    opened = new_tab(
        browser,
        local_stack.base_url,
        viewport={"width": 375, "height": 667},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        yield opened
    finally:
        opened.context.close()


@dataclass
class Sent:
    """A cart event as posted and the step-1 email it led to (an outbox message)."""

    cart_id: str
    email: str
    event: dict[str, Any]
    message: dict[str, Any]


@pytest.fixture
def send_step_one(local_stack: Any) -> Any:
    """``send_step_one(items=None) -> Sent``: post a cart for a fresh shopper at 10:00 Tokyo time, advance
    three hours and return the one email that shopper got."""

    def send(items: list[dict[str, Any]] | None = None) -> Sent:
        stack = local_stack
        stack.advance_to_local_time(10)  # steps 1-3 then fall due at 12:00, clear of quiet hours
        cart_id, email = stack.new_id(), stack.unique_email("taro")
        event = stack.cart_event(cart_id, email, stack.now(), items=items)
        status, body = stack.post_event(event)
        assert status == 202, body
        stack.advance(3 * 3600)
        messages = stack.outbox(to=email)
        assert len(messages) == 1, f"expected the step-1 email, got {messages}\n{stack.log_text()[-3000:]}"
        return Sent(cart_id, email, event, messages[0])

    return send
