"""The AWS clients the functions build: deployed, they skip botocore's client-side request checks and send a
fixed User-Agent (both cost CPU on every call); the tests and the local mode keep the checks."""

from __future__ import annotations

import dataclasses
from typing import Any

import boto3
import botocore
import pytest
from botocore.exceptions import ParamValidationError

from cartrecovery import __version__, wiring
from cartrecovery.clock import SystemClock
from cartrecovery.local.resources import function_environment
from cartrecovery.settings import ConfigError, Settings


def _services(settings: Settings, region: str) -> tuple[wiring.Services, list[Any]]:
    """Services on a session of their own (in the fixtures' region) whose requests are recorded as they are
    sent (moto answers them)."""
    session = boto3.session.Session(region_name=region)
    sent: list[Any] = []
    session.events.register("before-send", lambda request, **_: sent.append(request))
    return wiring.Services(settings, clock=SystemClock(), session=session), sent


def _template_environment(template: dict[str, Any], tables: dict[str, str], function: str) -> dict[str, str]:
    """What a deployed function finds in its environment (intrinsic functions resolved to the test's names)."""
    variables = function_environment(template, function)
    return {name: value for name, value in variables.items() if isinstance(value, str)} | tables


@pytest.mark.parametrize(
    "function", ["IngestFunction", "SendFunction", "SweepFunction", "TrackingFunction", "UnsubscribeFunction"]
)
def test_deployed_functions_send_without_the_client_side_checks(
    template: dict[str, Any],
    tables: dict[str, str],
    settings: Settings,
    boto_session: boto3.session.Session,
    function: str,
) -> None:
    deployed = Settings.from_env(_template_environment(template, tables, function))
    assert deployed.check_aws_requests is False
    services, sent = _services(deployed, boto_session.region_name)
    key = {"store_id": {"S": "tea-shop"}, "cart_id": {"S": "c-1"}}
    services.dynamodb.put_item(TableName=settings.carts_table, Item={**key, "status": {"S": "open"}})
    item = services.dynamodb.get_item(TableName=settings.carts_table, Key=key, ConsistentRead=True)["Item"]

    assert item["status"] == {"S": "open"}
    assert sent[-1].headers["User-Agent"].decode().startswith(f"cartrecovery/{__version__} Botocore/")
    # A malformed request is no longer stopped on the client: it is sent, and AWS refuses it.
    with pytest.raises(botocore.exceptions.ClientError):
        services.dynamodb.get_item(TableName=settings.carts_table, Key={"store_id": {"S": "tea-shop"}})
    assert len(sent) == 3


def test_with_checks_a_malformed_request_never_leaves(settings: Settings, boto_session: boto3.session.Session) -> None:
    services, sent = _services(dataclasses.replace(settings, check_aws_requests=True), boto_session.region_name)
    with pytest.raises(ParamValidationError, match="Key"):
        services.dynamodb.get_item(TableName=settings.carts_table, Key={"store_id": {"N": 5}})
    assert sent == []


def test_the_flag_is_read_from_the_environment(tables: dict[str, str]) -> None:
    assert Settings.from_env(tables | {"CHECK_AWS_REQUESTS": "true"}).check_aws_requests is True
    assert Settings.from_env(tables | {"CHECK_AWS_REQUESTS": "0"}).check_aws_requests is False
    with pytest.raises(ConfigError, match="CHECK_AWS_REQUESTS"):
        Settings.from_env(tables | {"CHECK_AWS_REQUESTS": "sometimes"})
