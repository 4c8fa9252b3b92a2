"""The deployed ingest function keeps a warm copy of each store for a few seconds (on DynamoDB, over moto):
a secret added by a rotation works at once all the same, and a secret the CLI ends has stopped everywhere
by the time the command returns, because the CLI waits the copy's lifetime out."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from cartrecovery.adapters.stores import CachedStoreRepository, DynamoStoreRepository
from cartrecovery.cli import main as cli_main
from cartrecovery.domain.store import Store
from cartrecovery.local.resources import function_environment
from cartrecovery.settings import INGEST_STORE_CACHE_SECONDS
from cartrecovery.signing import sign_shopify, signed_headers
from cartrecovery.usecases.receive import Rejected, receive_event, receive_shopify
from cartrecovery.wiring import Services


class WarmIngest:
    """The ingest function's store cache as ``template.yaml`` configures it, on a clock the test moves."""

    def __init__(self, svc: Services, template: dict[str, Any]) -> None:
        self.svc = svc
        self.now = 0.0
        ttl = float(function_environment(template, "IngestFunction")["STORE_CACHE_SECONDS"])
        self.reads = 0
        inner = DynamoStoreRepository(svc.dynamodb, svc.settings.stores_table)
        self.stores = CachedStoreRepository(inner, ttl, monotonic=lambda: self.now)
        svc.dynamodb.meta.events.register("provide-client-params.dynamodb.GetItem", self._count_store_reads)

    def _count_store_reads(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == self.svc.settings.stores_table:
            self.reads += 1

    def post(self, store: Store, secret: str) -> int:
        """Sign an event with ``secret`` and receive it: 202 when accepted, else the refusal's status."""
        body = json.dumps(
            {
                "type": "customer.unsubscribed",
                "occurred_at": self.svc.clock.now().isoformat(),
                "customer": {"email": f"{uuid.uuid4().hex[:8]}@example.jp"},
            }
        ).encode()
        wall_clock = self.svc.clock.now().timestamp()
        headers = signed_headers(secret, f"evt_{uuid.uuid4().hex}", body, int(wall_clock))
        try:
            receive_event(self.stores, self.svc.ingest, store.store_id, headers, body, wall_clock)
        except Rejected as exc:
            return exc.status
        return 202

    def post_shopify(self, store: Store, secret: str) -> int:
        """A signed Shopify webhook of a topic nothing acts on: 200 (ignored) once authenticated, else 401."""
        body = b'{"id": 1}'
        headers = {
            "content-type": "application/json",
            "x-shopify-hmac-sha256": sign_shopify(secret, body),
            "x-shopify-topic": "products/update",
            "x-shopify-webhook-id": uuid.uuid4().hex,
        }
        wall_clock = self.svc.clock.now().timestamp()
        try:
            receive_shopify(self.stores, self.svc.ingest, store.store_id, headers, body, wall_clock)
        except Rejected as exc:
            return exc.status
        return 200


@pytest.fixture
def warm(svc: Services, template: dict[str, Any]) -> WarmIngest:
    return WarmIngest(svc, template)


def test_the_template_gives_ingest_the_cache_time_the_cli_waits_out(template: dict[str, Any]) -> None:
    assert float(function_environment(template, "IngestFunction")["STORE_CACHE_SECONDS"]) == INGEST_STORE_CACHE_SECONDS


def test_a_warm_ingest_answers_from_its_copy_and_a_bad_signature_reads_again_before_its_401(
    warm: WarmIngest, store: Store
) -> None:
    assert warm.post(store, store.webhook_secrets[0].secret) == 202
    assert warm.reads == 1
    assert warm.post(store, store.webhook_secrets[0].secret) == 202
    assert warm.reads == 1  # the copy answered

    assert warm.post(store, "whsec_" + "A" * 32) == 401
    assert warm.reads == 2  # its copy might have predated a rotation: read again before refusing

    warm.now += INGEST_STORE_CACHE_SECONDS
    assert warm.post(store, store.webhook_secrets[0].secret) == 202
    assert warm.reads == 3  # the copy expired


def test_a_rotated_secret_works_at_once_and_a_revoked_one_has_stopped_when_the_command_returns(
    warm: WarmIngest, store: Store, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = store.webhook_secrets[0].secret
    assert warm.post(store, old) == 202  # the warm copy holds only the old secret
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        # The window the wait covers: the warm copy still takes the revoked secret until it expires.
        assert warm.post(store, old) == 202
        slept.append(seconds)
        warm.now += seconds

    monkeypatch.setattr(cli_main, "_sleep", sleep)

    code, out, _ = cli("store", "rotate-secret", "--id", store.store_id, "--overlap-hours", "24")
    assert code == 0 and slept == []  # the old secret stays valid a day: nothing to wait for
    new = next(word for word in out.split() if word.startswith("whsec_"))
    assert warm.post(store, new) == 202  # not in the warm copy, which is read again rather than refuse it
    assert warm.post(store, old) == 202  # the overlap

    code, out, _ = cli("store", "revoke-secret", "--id", store.store_id)

    assert code == 0 and "revoked 1 secret(s)" in out
    assert slept == [INGEST_STORE_CACHE_SECONDS]
    assert warm.post(store, old) == 401
    assert warm.post(store, new) == 202


def test_a_rotation_without_overlap_waits_out_the_cache_and_one_with_nothing_to_revoke_does_not(
    warm: WarmIngest, store: Store, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = store.webhook_secrets[0].secret
    assert warm.post(store, old) == 202
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        warm.now += seconds

    monkeypatch.setattr(cli_main, "_sleep", sleep)

    code, out, _ = cli("store", "rotate-secret", "--id", store.store_id, "--overlap-hours", "0")

    assert code == 0 and slept == [INGEST_STORE_CACHE_SECONDS]
    new = next(word for word in out.split() if word.startswith("whsec_"))
    assert warm.post(store, old) == 401
    assert warm.post(store, new) == 202

    code, out, _ = cli("store", "revoke-secret", "--id", store.store_id)
    assert code == 0 and "revoked 0 secret(s)" in out
    assert slept == [INGEST_STORE_CACHE_SECONDS]  # nothing ended, so nothing to wait for


def test_a_rotated_shopify_secret_works_at_once_through_the_warm_copy_and_a_revoked_one_stops(
    warm: WarmIngest, store: Store, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = store.shopify_secrets[0].secret
    assert warm.post_shopify(store, old) == 200
    monkeypatch.setattr(cli_main, "_sleep", lambda seconds: setattr(warm, "now", warm.now + seconds))

    code, out, _ = cli("store", "rotate-secret", "--id", store.store_id, "--shopify", "--overlap-hours", "2")
    assert code == 0
    new = out.splitlines()[0].rsplit(" ", 1)[1]  # "new shopify secret (shown once): <secret>"
    assert warm.post_shopify(store, new) == 200
    assert cli("store", "revoke-secret", "--id", store.store_id, "--shopify")[0] == 0
    assert warm.post_shopify(store, old) == 401
    assert warm.post_shopify(store, new) == 200
