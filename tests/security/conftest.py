"""Security fixtures: the e2e local stack, plus what an operator has at hand beside it.

``local_stack`` is the e2e fixture itself (``tests/e2e/conftest.py``, loaded once by
``tests/shared_fixtures.py``); the rules of sharing it are in that module's docstring. Tests here must
never change the demo store's secrets (every other test signs with them): a test that rotates or revokes
creates a store of its own with ``new_store``.

- ``cli(*args)`` runs ``cartrecovery --local ...`` in the stack's working directory (where its
  ``.local/runtime.json`` is) and returns the finished process; it fails the test on a non-zero exit.
- ``new_store()`` creates a fresh store through the CLI and returns its id and the secrets printed once.
- The stack logs at INFO and emits its metrics, as a deployment does (the local default is WARNING, no
  metrics), so the privacy tests read what an operator's log store and metric dimensions would hold.
- ``dynamodb`` is a boto3 DynamoDB client on the stack's emulator, and ``tables`` maps the table kinds
  (``stores``, ``events``, ``carts``, ``contacts``, ``messages``, ...) to their names: what an auditor
  inspecting the database would see.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests import shared_fixtures

CLI = Path(sys.executable).with_name("cartrecovery")


local_stack = shared_fixtures.local_stack


@pytest.fixture(scope="session", autouse=True)
def _deployed_log_level() -> Iterator[None]:
    """Autouse and session-scoped, so it is set before ``local_stack`` starts (it reads the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
        # Metrics on as well: their embedded-metric-format lines (dimensions included) land in the same log.
        patch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
        yield


@dataclass(frozen=True)
class NewStore:
    store_id: str
    secret: str
    shopify_secret: str


def _runtime(stack: Any) -> dict[str, Any]:
    runtime: dict[str, Any] = json.loads((stack.workdir / ".local" / "runtime.json").read_text())
    return runtime


@pytest.fixture(scope="session")
def cli(local_stack: Any) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(CLI), "--local", *args],
            cwd=local_stack.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"cartrecovery {' '.join(args)}: {done.returncode}\n{done.stdout}{done.stderr}"
        return done

    return run


@pytest.fixture(scope="session")
def new_store(cli: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[[], NewStore]:
    def create() -> NewStore:
        store_id = f"sec-{uuid.uuid4().hex[:10]}"
        done = cli(
            "store",
            "create",
            "--id",
            store_id,
            "--name",
            f"Shop {store_id}",
            "--sender-email",
            f"shop@{store_id}.example.jp",
            "--legal-name",
            f"{store_id} 株式会社",
            "--address",
            "東京都千代田区千代田1-1",
            "--contact",
            "https://shop.example.jp/contact",
        )
        printed = {}
        for line in done.stdout.splitlines():
            label, _, value = line.partition(":")
            if label.startswith(("webhook secret", "shopify secret")):
                printed[label.split()[0]] = value.strip()
        assert printed.get("webhook", "").startswith("whsec_"), done.stdout
        assert printed.get("shopify"), done.stdout
        return NewStore(store_id, printed["webhook"], printed["shopify"])

    return create


@pytest.fixture(scope="session")
def dynamodb(local_stack: Any) -> Any:
    runtime = _runtime(local_stack)
    return boto3.client(
        "dynamodb",
        endpoint_url=runtime["endpoint_url"],
        region_name=runtime["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # the emulator's; nothing real
    )


@pytest.fixture(scope="session")
def tables(local_stack: Any) -> dict[str, str]:
    env = _runtime(local_stack)["env"]
    return {name.removesuffix("_TABLE").lower(): value for name, value in env.items() if name.endswith("_TABLE")}
