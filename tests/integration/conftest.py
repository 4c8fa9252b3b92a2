"""Fixtures for the adapter and handler tests: AWS emulated in-process by moto (``mock_aws``).

Every test gets fresh AWS state: the DynamoDB tables built from ``template.yaml`` (so the keys the code
relies on are the deployed ones), a schedule group, a verified SES sender domain and a configuration set,
fake credentials in ap-northeast-1, and ``cartrecovery.wiring`` configured with those tables and a frozen
clock (``clock``, a ``ManualClock`` the test may advance). ``store`` adds one store with a known webhook
secret. ``handlers`` are the deployed Lambda entry points, loaded once per session from their files; each
invocation fails if the handler made an AWS call its policy in ``template.yaml`` does not grant.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from cartrecovery import wiring
from cartrecovery.cli import main as cli_main
from cartrecovery.clock import ManualClock
from cartrecovery.domain.store import Store
from cartrecovery.local import resources
from cartrecovery.local.lambda_invoke import LambdaContext, load_module
from cartrecovery.settings import Settings
from cartrecovery.usecases.stores import create_store
from tests.iam_grants import GrantAudit

ROOT = resources.find_repo_root()
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "ap-northeast-1"
TOKYO = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # a Tuesday morning, clear of quiet hours
PREFIX = "cartrecovery-test"
SCHEDULE_GROUP = PREFIX
CONFIGURATION_SET = PREFIX
SEND_FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{PREFIX}-send"
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/{PREFIX}-scheduler"
SCHEDULER_DLQ_ARN = f"arn:aws:sqs:{REGION}:{DEFAULT_ACCOUNT_ID}:{PREFIX}-scheduler-dlq"
PUBLIC_BASE_URL = "https://mail.shop.example.jp"

STORE_ID = "tea-shop"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks test vector's secret
SENDER_DOMAIN = "tea-shop.example.jp"
SENDER = f"shop@{SENDER_DOMAIN}"
STORE_SETTINGS: dict[str, Any] = {
    "store_id": STORE_ID,
    "name": "抹茶堂",
    "sender_email": SENDER,
    "sender_name": "抹茶堂",
    "url": "https://shop.example.jp/",
    "legal": {
        "sender_name": "株式会社抹茶堂",
        "address": "京都府京都市下京区 1-2-3",
        "contact": "support@shop.example.jp",
    },
    "locale": "ja",
    "timezone": "Asia/Tokyo",
    "currency": "JPY",
}

# What a caller's environment may hold that would send boto3 elsewhere than moto (or to a real account).
_AWS_ENV_HIDDEN = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_SECURITY_TOKEN",
)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return resources.load_template(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def grant_audit(template: dict[str, Any]) -> GrantAudit:
    return GrantAudit(template)


@pytest.fixture(scope="session")
def boto_session(grant_audit: GrantAudit) -> boto3.session.Session:
    """One session for all tests: it caches the service models, which take ~50 ms per client to load.
    Clients are still created per test, inside that test's ``mock_aws`` and fake credentials. Every call a
    handler makes through it is checked against the function's grants in ``template.yaml``."""
    session = boto3.session.Session(region_name=REGION)
    grant_audit.install(session)
    return session


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process AWS with fake credentials in ap-northeast-1; state is fresh for every test."""
    for name in list(os.environ):
        if name in _AWS_ENV_HIDDEN or name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with mock_aws():
        yield


@pytest.fixture
def tables(
    aws: None,
    boto_session: boto3.session.Session,
    template: dict[str, Any],
    grant_audit: GrantAudit,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """Environment variable name (``CARTS_TABLE``...) -> table name, every table created from the template
    (parsed once per session: reading the YAML takes longer than creating the tables)."""
    parse = resources.load_template
    monkeypatch.setattr(resources, "load_template", lambda path: template if path == TEMPLATE_PATH else parse(path))
    names = resources.create_tables(boto_session.client("dynamodb"), TEMPLATE_PATH, PREFIX)
    grant_audit.table_ids = {name: name.removeprefix(f"{PREFIX}-") for name in names.values()}
    return names


@pytest.fixture
def settings(tables: dict[str, str]) -> Settings:
    return Settings(
        **{name.lower(): table for name, table in tables.items()},
        schedule_group=SCHEDULE_GROUP,
        scheduler_role_arn=SCHEDULER_ROLE_ARN,
        send_function_arn=SEND_FUNCTION_ARN,
        scheduler_dlq_arn=SCHEDULER_DLQ_ARN,
        ses_configuration_set=CONFIGURATION_SET,
        public_base_url=PUBLIC_BASE_URL,
        stage="test",
        check_aws_requests=True,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def svc(settings: Settings, clock: ManualClock, boto_session: boto3.session.Session) -> Iterator[wiring.Services]:
    """The wired services on moto, with the schedule group, the sender domain verified and a configuration set."""
    wiring.configure(settings=settings, clock=clock, session=boto_session)
    services = wiring.services()
    services.scheduler_client.create_schedule_group(Name=SCHEDULE_GROUP)
    services.ses_client.create_email_identity(EmailIdentity=SENDER_DOMAIN)
    services.ses_client.create_configuration_set(ConfigurationSetName=CONFIGURATION_SET)
    try:
        yield services
    finally:
        wiring.reset()


@pytest.fixture
def cli(svc: wiring.Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Runs the operator CLI in-process against the deployment (not ``--local``), on the test's tables;
    returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli_main, "_services", lambda args: wiring.Services(svc.settings, svc.clock, svc._session))

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli_main.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def store(svc: wiring.Services) -> Store:
    return create_store(svc.stores, STORE_SETTINGS, svc.clock, webhook_secret=WEBHOOK_SECRET)


def sent_messages() -> list[Any]:
    """What moto's SES accepted so far (``RawMessage``: ``id``, ``source``, ``destinations``, ``raw_data``)."""
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


@pytest.fixture
def outbox() -> Any:
    """``outbox()`` lists the messages moto's SES accepted, oldest first."""
    return sent_messages


@dataclass(frozen=True)
class Deployment:
    """The names this test deployment uses, for tests (which cannot import this module unambiguously)."""

    region: str = REGION
    start: datetime = START
    store_id: str = STORE_ID
    webhook_secret: str = WEBHOOK_SECRET
    sender: str = SENDER
    schedule_group: str = SCHEDULE_GROUP
    configuration_set: str = CONFIGURATION_SET
    send_function_arn: str = SEND_FUNCTION_ARN
    scheduler_role_arn: str = SCHEDULER_ROLE_ARN
    scheduler_dlq_arn: str = SCHEDULER_DLQ_ARN
    public_base_url: str = PUBLIC_BASE_URL

    @staticmethod
    def store_settings(**changes: Any) -> dict[str, Any]:
        """The test store's settings (as ``StoreSettings.from_dict`` reads them), with ``changes`` applied."""
        return {**copy.deepcopy(STORE_SETTINGS), **changes}


@pytest.fixture(scope="session")
def deployment() -> Deployment:
    return Deployment()


@dataclass(frozen=True)
class Handlers:
    ingest: ModuleType
    send: ModuleType
    tracking: ModuleType
    unsubscribe: ModuleType
    sweep: ModuleType
    audit: GrantAudit

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        """Run a function as Lambda would; fails if it made an AWS call its policy does not grant."""
        module = getattr(self, name)
        context = LambdaContext(f"{PREFIX}-{name}", f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{name}")
        with self.audit.running(f"{name.title()}Function"):
            return module.lambda_handler(event, context)


@pytest.fixture(scope="session")
def handlers(grant_audit: GrantAudit) -> Handlers:
    """``functions/<name>/app.py`` loaded by path: the folders are not packages of one namespace (every one
    holds an ``app.py``), so each gets a module name of its own. Powertools reads its settings at import."""
    modules = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CartRecovery")
        patch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
        for name in ("ingest", "send", "tracking", "unsubscribe", "sweep"):
            patch.setenv("POWERTOOLS_SERVICE_NAME", f"{PREFIX}-{name}")
            modules[name] = load_module(ROOT / "functions" / name / "app.py", f"integration_fn_{name}")
    return Handlers(**modules, audit=grant_audit)
