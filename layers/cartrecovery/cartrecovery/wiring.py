"""Builds the adapters and use cases a function needs, once per warm container, from ``Settings``.

The local runtime and the tests use the same seam: ``configure(clock=..., settings=...)`` before the first
request replaces the clock (virtual or frozen) or the settings, and nothing else changes.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cartrecovery.clock import Clock, SystemClock
from cartrecovery.settings import Settings

if TYPE_CHECKING:  # adapters import lazily: a function pays only for what its use case touches
    from cartrecovery.adapters.carts import DynamoCartRepository
    from cartrecovery.adapters.contacts import DynamoContactBook
    from cartrecovery.adapters.coupons import DynamoCouponPool
    from cartrecovery.adapters.events import DynamoEventLog
    from cartrecovery.adapters.ledger import DynamoMessageLedger
    from cartrecovery.adapters.scheduler import EventBridgeSchedules
    from cartrecovery.adapters.ses import SesMailer
    from cartrecovery.adapters.stores import CachedStoreRepository, DynamoStoreRepository
    from cartrecovery.email.render import EmailRenderer
    from cartrecovery.usecases.ingest import IngestEvent
    from cartrecovery.usecases.reconcile import ReconcileTimers
    from cartrecovery.usecases.run_step import RunDueStep
    from cartrecovery.usecases.track import RecordSesEvent, RecordSesEvents
    from cartrecovery.usecases.unsubscribe import Unsubscribe

_overrides: dict[str, Any] = {}
_current: Services | None = None


class Services:
    def __init__(self, settings: Settings, clock: Clock, session: Any = None) -> None:
        self.settings = settings
        self.clock = clock
        self._session = session

    def _client(self, service: str, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        from cartrecovery import __version__

        session = self._session or boto3.session.Session()
        config = {
            "parameter_validation": self.settings.check_aws_requests,
            # botocore builds its standard User-Agent anew for every request (about a quarter of a call's
            # CPU); a fixed one that names the product costs nothing per call (botocore adds its version).
            "user_agent": f"cartrecovery/{__version__}",
            **config,
        }
        return session.client(service, config=Config(**config))

    @functools.cached_property
    def dynamodb(self) -> Any:
        return self._client("dynamodb", retries={"mode": "standard", "max_attempts": 3})

    @functools.cached_property
    def scheduler_client(self) -> Any:
        return self._client("scheduler", retries={"mode": "standard", "max_attempts": 3})

    @functools.cached_property
    def ses_client(self) -> Any:
        # No automatic retries: a retried SendEmail after a timeout could deliver the same email twice.
        return self._client(
            "sesv2", retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=10, connect_timeout=3
        )

    @functools.cached_property
    def stores(self) -> DynamoStoreRepository | CachedStoreRepository:
        from cartrecovery.adapters.stores import CachedStoreRepository, DynamoStoreRepository

        repository = DynamoStoreRepository(self.dynamodb, self.settings.stores_table)
        if self.settings.store_cache_seconds > 0:
            return CachedStoreRepository(repository, self.settings.store_cache_seconds)
        return repository

    @functools.cached_property
    def events(self) -> DynamoEventLog:
        from cartrecovery.adapters.events import DynamoEventLog

        return DynamoEventLog(self.dynamodb, self.settings.events_table)

    @functools.cached_property
    def carts(self) -> DynamoCartRepository:
        from cartrecovery.adapters.carts import DynamoCartRepository

        return DynamoCartRepository(
            self.dynamodb, self.settings.carts_table, retention=timedelta(days=self.settings.cart_retention_days)
        )

    @functools.cached_property
    def contacts(self) -> DynamoContactBook:
        from cartrecovery.adapters.contacts import DynamoContactBook

        return DynamoContactBook(self.dynamodb, self.settings.contacts_table)

    @functools.cached_property
    def ledger(self) -> DynamoMessageLedger:
        from cartrecovery.adapters.ledger import DynamoMessageLedger

        return DynamoMessageLedger(self.dynamodb, self.settings.messages_table, self.settings.counters_table)

    @functools.cached_property
    def coupons(self) -> DynamoCouponPool:
        from cartrecovery.adapters.coupons import DynamoCouponPool

        return DynamoCouponPool(self.dynamodb, self.settings.coupons_table)

    @functools.cached_property
    def schedules(self) -> EventBridgeSchedules:
        from cartrecovery.adapters.scheduler import EventBridgeSchedules

        s = self.settings
        return EventBridgeSchedules(
            self.scheduler_client, s.schedule_group, s.send_function_arn, s.scheduler_role_arn, s.scheduler_dlq_arn
        )

    @functools.cached_property
    def mailer(self) -> SesMailer:
        from cartrecovery.adapters.ses import SesMailer

        return SesMailer(self.ses_client, self.settings.ses_configuration_set or None)

    @functools.cached_property
    def renderer(self) -> EmailRenderer:
        from cartrecovery.email.render import EmailRenderer

        return EmailRenderer()

    @functools.cached_property
    def ingest(self) -> IngestEvent:
        from cartrecovery.usecases.ingest import IngestEvent

        return IngestEvent(self.events, self.carts, self.contacts, self.schedules, self.ledger, self.clock)

    @functools.cached_property
    def run_step(self) -> RunDueStep:
        from cartrecovery.usecases.run_step import RunDueStep

        return RunDueStep(
            self.stores,
            self.carts,
            self.contacts,
            self.schedules,
            self.mailer,
            self.ledger,
            self.renderer,
            self.clock,
            self.settings.public_base_url,
            templates=self.stores,
            coupons=self.coupons,
            catalogs=self.stores,
        )

    @functools.cached_property
    def reconcile(self) -> ReconcileTimers:
        from cartrecovery.usecases.reconcile import ReconcileTimers

        return ReconcileTimers(self.carts, self.schedules, self.clock)

    @functools.cached_property
    def track(self) -> RecordSesEvent:
        from cartrecovery.usecases.track import RecordSesEvent

        return RecordSesEvent(self.ledger, self.contacts, self.clock)

    @functools.cached_property
    def track_batch(self) -> RecordSesEvents:
        from cartrecovery.usecases.track import RecordSesEvents

        return RecordSesEvents(self.ledger, self.clock)

    @functools.cached_property
    def unsubscribe(self) -> Unsubscribe:
        from cartrecovery.usecases.unsubscribe import Unsubscribe

        return Unsubscribe(self.stores, self.contacts, self.ledger, self.clock)


def configure(**overrides: Any) -> None:
    """Replace parts of the container (``clock``, ``settings``, ``session``) before the next use."""
    global _current
    _overrides.update(overrides)
    _current = None


def use(container: Services) -> None:
    """Make ``container`` the one ``services()`` answers: a harness running several functions in one process,
    each with its own settings and caches, switches to a function's container before invoking it."""
    global _current
    _current = container


def reset() -> None:
    global _current
    _overrides.clear()
    _current = None


def services() -> Services:
    global _current
    if _current is None:
        _current = Services(
            settings=_overrides.get("settings") or Settings.from_env(),
            clock=_overrides.get("clock") or SystemClock(),
            session=_overrides.get("session"),
        )
    return _current
