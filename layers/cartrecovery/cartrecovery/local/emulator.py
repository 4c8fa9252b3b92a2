"""The local AWS: an in-process moto server holding the stack's DynamoDB tables, schedule group and SES.

``isolate_aws_environment`` points every boto3 client of this process at the emulator (``AWS_ENDPOINT_URL``)
with fake credentials, and hides the operator's own AWS configuration so nothing local can reach a real
account. It must run before the first client is created.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from cartrecovery.local.lambda_invoke import ACCOUNT_ID

log = logging.getLogger("cartrecovery.local")

REGION = "ap-northeast-1"
STACK_PREFIX = "cartrecovery-local"
SCHEDULE_GROUP = STACK_PREFIX
CONFIGURATION_SET = STACK_PREFIX
SEND_FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{STACK_PREFIX}-send"
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/{STACK_PREFIX}-scheduler"
SCHEDULER_DLQ_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{STACK_PREFIX}-scheduler-dlq"
TRACKING_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{STACK_PREFIX}-ses-events"

# Our own clients fail fast: botocore would otherwise retry the emulator's 500s for seconds.
FAIL_FAST = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)

_HIDDEN = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN")


def isolate_aws_environment(endpoint_url: str, region: str = REGION) -> None:
    """Point boto3 at the emulator with fake credentials; the operator's AWS config files are not read."""
    for name in list(os.environ):
        if name in _HIDDEN or name.startswith("AWS_ENDPOINT_URL_") or name == "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS":
            del os.environ[name]
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "2",
        }
    )
    # Powertools: a namespace is required to emit metrics; the EMF lines and INFO logs of every invocation
    # would drown the console, so they are off unless asked for (POWERTOOLS_LOG_LEVEL=INFO, ..._DISABLED=false).
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "CartRecovery")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


@dataclass(frozen=True)
class Provisioned:
    tables: dict[str, str]  # env var name (CARTS_TABLE, ...) -> table name
    schedule_group: str
    configuration_set: str


class Emulator:
    """moto's server on a free port of 127.0.0.1, in this process (so its state can be inspected directly)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.endpoint_url = ""
        self._server: Any = None
        self._clients: dict[str, Any] = {}
        self._verified: set[str] = set()
        self._lock = threading.RLock()

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per emulator request
        server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.stop()
            self._server = None

    def client(self, service: str) -> Any:
        """An administrative client (fails fast); never the one the handlers use."""
        with self._lock:  # creating clients from one session is not thread-safe
            if service not in self._clients:
                session = boto3.session.Session(region_name=REGION)
                self._clients[service] = session.client(service, endpoint_url=self.endpoint_url, config=FAIL_FAST)
            return self._clients[service]

    def provision(self, template_path: Path) -> Provisioned:
        """Create what ``template.yaml`` declares and the handlers touch: tables, schedule group, SES."""
        from cartrecovery.local import resources

        tables = resources.create_tables(self.client("dynamodb"), template_path, STACK_PREFIX)
        scheduler = self.client("scheduler")
        with contextlib.suppress(scheduler.exceptions.ConflictException):
            scheduler.create_schedule_group(Name=SCHEDULE_GROUP)
        sesv2 = self.client("sesv2")
        try:
            sesv2.create_configuration_set(ConfigurationSetName=CONFIGURATION_SET)
        except Exception as exc:  # moto accepts it; its absence would not block sending locally anyway
            log.debug("configuration set not created: %s", exc)
        return Provisioned(dict(tables), SCHEDULE_GROUP, CONFIGURATION_SET)

    def verify_sender(self, address: str) -> None:
        """Register the sender's domain as a verified SES identity, once.

        In AWS an operator verifies the domain (DNS records) before a store sends; the emulator has no DNS,
        so every sender domain is treated as verified the first time it is used (the demo store's before
        start). Stores created locally with the operator CLI can thus send at once."""
        domain = parseaddr(address)[1].rpartition("@")[2].lower()
        if not domain:
            return
        with self._lock:
            if domain in self._verified:
                return
            self.client("sesv2").create_email_identity(EmailIdentity=domain)
            self._verified.add(domain)
