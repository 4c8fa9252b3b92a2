"""Deployment settings, read once from the environment and checked up front (fail fast, name what's missing)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any


class ConfigError(RuntimeError):
    pass


# What template.yaml gives the ingest function as STORE_CACHE_SECONDS (a test holds the two equal). A secret
# that ends now (``store revoke-secret``, ``rotate-secret --overlap-hours 0``) can still pass a warm ingest
# function for this long, so the CLI waits it out before it reports the secret ended.
INGEST_STORE_CACHE_SECONDS = 10.0

_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Settings:
    stores_table: str
    events_table: str
    carts_table: str
    contacts_table: str
    messages_table: str
    counters_table: str
    coupons_table: str = ""  # single-use coupon codes (read only for stores whose coupon is a pool)
    schedule_group: str = ""
    scheduler_role_arn: str = ""
    send_function_arn: str = ""
    scheduler_dlq_arn: str = ""
    ses_configuration_set: str = ""
    public_base_url: str = "http://127.0.0.1:3000"
    stage: str = "dev"
    # How long a warm function reuses a store it read; 0 reads it every time. Deployed, send keeps a store a
    # minute and ingest INGEST_STORE_CACHE_SECONDS (the CLI waits that out after it ends a secret).
    store_cache_seconds: float = 0.0
    # Carts expire (DynamoDB TTL) this many days after their last activity.
    cart_retention_days: int = 90
    # botocore checks each request against the service model before sending it, about a quarter of a call's
    # CPU. Deployed functions skip that (AWS checks every request on arrival); the tests and the local mode
    # turn it on, where a malformed request is best caught before it leaves, with botocore's exact message.
    check_aws_requests: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        missing = []
        for f in fields(cls):
            name = "CARTRECOVERY_STAGE" if f.name == "stage" else f.name.upper()
            if name in env and env[name] != "":
                values[f.name] = env[name]
            elif f.default is MISSING:
                missing.append(name)
        if missing:
            raise ConfigError("missing environment variables: " + ", ".join(missing))
        if "store_cache_seconds" in values:
            try:
                values["store_cache_seconds"] = float(values["store_cache_seconds"])
            except ValueError as exc:
                raise ConfigError("STORE_CACHE_SECONDS must be a number of seconds") from exc
        if "cart_retention_days" in values:
            try:
                values["cart_retention_days"] = int(values["cart_retention_days"])
            except ValueError as exc:
                raise ConfigError("CART_RETENTION_DAYS must be a whole number of days") from exc
            if values["cart_retention_days"] < 1:
                raise ConfigError("CART_RETENTION_DAYS must be at least 1")
        if "check_aws_requests" in values:
            flag = values["check_aws_requests"].strip().lower()
            if flag not in _FLAGS:
                raise ConfigError("CHECK_AWS_REQUESTS must be true or false")
            values["check_aws_requests"] = _FLAGS[flag]
        return cls(**values)
