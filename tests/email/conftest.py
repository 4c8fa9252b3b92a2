"""Fixtures for the template tests.

- ``svc``: the wired services on moto's in-process DynamoDB (tables built from ``template.yaml``); ``store``
  adds a store, ``ab_store`` one whose step 1 lists the A/B variants a and b. Fresh AWS state per test.
- ``cli("templates", "upload", ...)``: runs ``cartrecovery`` in-process on ``svc`` and returns
  ``(exit code, stdout, stderr)``.
- ``local_stack``: the e2e fixture (``tests/e2e/conftest.py``, loaded once by ``tests/shared_fixtures.py``);
  the rules of sharing it are in that module's docstring.
- ``chromium``: Debian's headless Chromium (``/usr/bin/chromium``) through Playwright, on a thread of its
  own; every test that uses it is skipped, with the reason, where Chromium is not installed (``make chromium``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import boto3
import pytest
from moto import mock_aws

from cartrecovery import wiring
from cartrecovery.cli import main as cli_main
from cartrecovery.clock import ManualClock
from cartrecovery.domain.store import Store
from cartrecovery.local import resources
from cartrecovery.settings import Settings
from cartrecovery.usecases.stores import create_store
from tests import shared_fixtures

ROOT = resources.find_repo_root()
REGION = "ap-northeast-1"
START = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
PUBLIC_BASE_URL = "https://mail.shop.example.jp"
STORE_SETTINGS: dict[str, Any] = {
    "store_id": "kotonoha",
    "name": "ことのは茶舗",
    "sender_email": "shop@kotonoha.example.jp",
    "url": "https://kotonoha.example.jp/",
    "legal": {
        "sender_name": "株式会社ことのは",
        "address": "〒600-8216 京都府京都市下京区 1-2-3",
        "contact": "support@kotonoha.example.jp",
    },
    "coupon": {"code": "KOTO15", "description": "15%オフ", "terms": "お一人さま1回限り", "valid_days": 7},
    "help": {"faq_url": "https://kotonoha.example.jp/faq"},
}
T = TypeVar("T")
_AWS_ENV_HIDDEN = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN")


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return resources.load_template(ROOT / "template.yaml")


@pytest.fixture
def svc(monkeypatch: pytest.MonkeyPatch, template: dict[str, Any]) -> Iterator[wiring.Services]:
    for name in list(os.environ):
        if name in _AWS_ENV_HIDDEN or name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    parse = resources.load_template
    monkeypatch.setattr(
        resources, "load_template", lambda path: template if path.name == "template.yaml" else parse(path)
    )
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        tables = resources.create_tables(session.client("dynamodb"), ROOT / "template.yaml", "tpl-test")
        settings = Settings(
            **{name.lower(): table for name, table in tables.items()},
            public_base_url=PUBLIC_BASE_URL,
            stage="test",
            check_aws_requests=True,
        )
        wiring.configure(settings=settings, clock=ManualClock(START), session=session)
        try:
            yield wiring.services()
        finally:
            wiring.reset()


@pytest.fixture
def store(svc: wiring.Services) -> Store:
    return create_store(svc.stores, STORE_SETTINGS, svc.clock)


@pytest.fixture
def ab_store(svc: wiring.Services) -> Store:
    """A second store, testing two subject lines on step 1 (the shipped templates' ``b`` wording)."""
    steps = [
        {"step": 1, "delay_seconds": 7200, "variants": ["a", "b"]},
        {"step": 2, "delay_seconds": 259200},
        {"step": 3, "delay_seconds": 604800},
    ]
    settings = {**STORE_SETTINGS, "store_id": "ab-shop", "flows": {"cart_recovery": {"steps": steps}}}
    return create_store(svc.stores, settings, svc.clock)


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(svc: wiring.Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI on the test's tables. It would resolve its deployment from the environment and build a new boto3
    session per command, which costs most of a command's time; it reuses the test's session instead."""
    monkeypatch.setattr(cli_main, "_services", lambda args: wiring.Services(svc.settings, svc.clock, svc._session))

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli_main.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


# ---- the local stack (shared with tests/e2e and tests/browser) ----


local_stack = shared_fixtures.local_stack


# ---- headless Chromium ----


class Chromium:
    """Headless Chromium on a thread of its own. Playwright's sync API allows one instance per thread, and
    ``tests/browser`` keeps one open on the main thread for the whole session; this one never meets it.
    ``run(fn, *args)`` calls ``fn(browser, *args)`` on that thread and returns its result."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._playwright: Any = None
        self._browser: Any = None
        self._pool.submit(self._start).result()

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=str(shared_fixtures.CHROMIUM), args=shared_fixtures.CHROMIUM_ARGS
        )

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        return self._pool.submit(fn, self._browser, *args).result()

    def close(self) -> None:
        def stop() -> None:
            try:
                if self._browser is not None:
                    self._browser.close()
            finally:
                if self._playwright is not None:
                    self._playwright.stop()

        try:
            self._pool.submit(stop).result()
        finally:
            self._pool.shutdown()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    reason = shared_fixtures.chromium_missing()
    if reason:
        pytest.skip(reason)
    started = Chromium()
    try:
        yield started
    finally:
        started.close()
