"""Where the CLI finds the deployment: the running local stack, a CloudFormation stack, or the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cartrecovery.settings import ConfigError, Settings

LOCAL_DIR = Path(".local")
STACK_OUTPUTS = {
    "StoresTableName": "STORES_TABLE",
    "EventsTableName": "EVENTS_TABLE",
    "CartsTableName": "CARTS_TABLE",
    "ContactsTableName": "CONTACTS_TABLE",
    "MessagesTableName": "MESSAGES_TABLE",
    "CountersTableName": "COUNTERS_TABLE",
    "CouponsTableName": "COUPONS_TABLE",
    # What `erase` needs to delete a cart's pending schedules, and `templates preview` for its links.
    "ScheduleGroupName": "SCHEDULE_GROUP",
    "SchedulerRoleArn": "SCHEDULER_ROLE_ARN",
    "SendFunctionArn": "SEND_FUNCTION_ARN",
    "SchedulerDeadLetterQueueArn": "SCHEDULER_DLQ_ARN",
    "ConfigurationSetName": "SES_CONFIGURATION_SET",
    "UnsubscribeBaseUrl": "PUBLIC_BASE_URL",
}


def local_runtime() -> dict[str, Any] | None:
    path = LOCAL_DIR / "runtime.json"
    return json.loads(path.read_text()) if path.exists() else None


def demo_store() -> dict[str, Any] | None:
    path = LOCAL_DIR / "demo-store.json"
    return json.loads(path.read_text()) if path.exists() else None


def resolve_settings(*, local: bool, stack: str | None, region: str | None) -> Settings:
    """--local: the emulator of a running ``make run``; --stack: a deployed stack's outputs; else env vars."""
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    if local:
        runtime = local_runtime()
        if runtime is None:
            raise SystemExit("no running local stack found (.local/runtime.json); start it with `make run`")
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": runtime["endpoint_url"],
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": runtime["region"],
            }
        )
        return Settings.from_env({**runtime["env"]})
    if stack:
        import boto3

        described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        return stack_settings({o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])})
    try:
        return Settings.from_env()
    except ConfigError as exc:  # most often: neither --local nor --stack was given
        raise ConfigError(f"{exc}; pass --local (the stack `make run` runs) or --stack NAME") from None


def stack_settings(outputs: dict[str, str]) -> Settings:
    """The settings a deployed stack's functions run with, from the stack's outputs."""
    return Settings.from_env({name: outputs[key] for key, name in STACK_OUTPUTS.items() if key in outputs})
