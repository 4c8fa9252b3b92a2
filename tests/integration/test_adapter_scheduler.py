"""EventBridge Scheduler one-time schedules: one per armed step, in the stack's group, aimed at the send
function with its role, a bounded retry policy and the dead-letter queue; arming is idempotent by name."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from cartrecovery.adapters.scheduler import EventBridgeSchedules
from cartrecovery.domain.cart import Timer
from cartrecovery.wiring import Services

if TYPE_CHECKING:
    from conftest import Deployment

PAYLOAD = {"store_id": "tea-shop", "cart_id": "c-1", "flow": "cart_recovery", "step": 1}


@pytest.fixture
def schedules(svc: Services) -> EventBridgeSchedules:
    return svc.schedules


def timer(name: str = "cr-abc", due: datetime | None = None) -> Timer:
    due = due or datetime(2026, 12, 1, 12, 0, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    return Timer("cart_recovery", 1, due, name)


def get(svc: Services, name: str, group: str) -> dict[str, Any]:
    schedule: dict[str, Any] = svc.scheduler_client.get_schedule(Name=name, GroupName=group)
    return schedule


def test_a_timer_becomes_a_one_time_schedule_for_the_send_function(
    schedules: EventBridgeSchedules, svc: Services, deployment: Deployment
) -> None:
    schedules.arm(timer(), PAYLOAD)

    schedule = get(svc, "cr-abc", deployment.schedule_group)
    assert schedule["ScheduleExpression"] == "at(2026-12-01T03:00:30)"  # 12:00:30 in Tokyo, as UTC
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == deployment.send_function_arn
    assert target["RoleArn"] == deployment.scheduler_role_arn
    assert target["DeadLetterConfig"] == {"Arn": deployment.scheduler_dlq_arn}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 20, "MaximumEventAgeInSeconds": 6 * 3600}
    assert json.loads(target["Input"]) == {**PAYLOAD, "due_at": "2026-12-01T03:00:30Z"}
    names = [s["Name"] for s in svc.scheduler_client.list_schedules(GroupName=deployment.schedule_group)["Schedules"]]
    assert names == ["cr-abc"]


def test_arming_the_same_timer_again_is_a_no_op(
    schedules: EventBridgeSchedules, svc: Services, deployment: Deployment
) -> None:
    schedules.arm(timer(), PAYLOAD)
    schedules.arm(timer(due=timer().due_at + timedelta(hours=1)), {**PAYLOAD, "step": 2})

    schedule = get(svc, "cr-abc", deployment.schedule_group)
    assert schedule["ScheduleExpression"] == "at(2026-12-01T03:00:30)"
    assert json.loads(schedule["Target"]["Input"])["step"] == 1


def test_without_a_dead_letter_queue_the_target_has_none(svc: Services, deployment: Deployment) -> None:
    schedules = EventBridgeSchedules(
        svc.scheduler_client, deployment.schedule_group, deployment.send_function_arn, deployment.scheduler_role_arn, ""
    )
    schedules.arm(timer("cr-no-dlq"), PAYLOAD)

    assert "DeadLetterConfig" not in get(svc, "cr-no-dlq", deployment.schedule_group)["Target"]


def test_a_schedule_is_deleted_and_deleting_it_again_is_harmless(
    schedules: EventBridgeSchedules, svc: Services, deployment: Deployment
) -> None:
    schedules.arm(timer("cr-1"), PAYLOAD)
    schedules.arm(timer("cr-2"), PAYLOAD)

    schedules.delete("cr-1")
    schedules.delete("cr-1")

    names = [s["Name"] for s in svc.scheduler_client.list_schedules(GroupName=deployment.schedule_group)["Schedules"]]
    assert names == ["cr-2"]
