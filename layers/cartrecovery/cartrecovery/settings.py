"""Deployment settings, read once from the environment and checked up front (fail fast, name what's missing)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields


class ConfigError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    stores_table: str
    events_table: str
    carts_table: str
    contacts_table: str
    messages_table: str
    counters_table: str
    schedule_group: str = ""
    scheduler_role_arn: str = ""
    send_function_arn: str = ""
    scheduler_dlq_arn: str = ""
    ses_configuration_set: str = ""
    public_base_url: str = "http://127.0.0.1:3000"
    stage: str = "dev"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {}
        missing = []
        for f in fields(cls):
            name = "CARTRECOVERY_STAGE" if f.name == "stage" else f.name.upper()
            if name in env and env[name] != "":
                values[f.name] = env[name]
            elif f.default is MISSING:
                missing.append(name)
        if missing:
            raise ConfigError("missing environment variables: " + ", ".join(missing))
        return cls(**values)
