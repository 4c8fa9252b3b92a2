"""EventBridge Scheduler one-time schedules: one per armed step, deleted by the service after firing."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from cartrecovery.adapters.errors import error_code
from cartrecovery.domain.cart import Timer

# Scheduler's default is 185 attempts over 24 h; a step that fails that long is better in the DLQ, alarmed.
RETRY_POLICY = {"MaximumRetryAttempts": 20, "MaximumEventAgeInSeconds": 6 * 3600}


class EventBridgeSchedules:
    def __init__(self, client: Any, group: str, target_arn: str, role_arn: str, dead_letter_arn: str) -> None:
        self.client = client
        self.group = group
        self.target_arn = target_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn

    def arm(self, timer: Timer, payload: dict[str, Any]) -> None:
        at = timer.due_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        target: dict[str, Any] = {
            "Arn": self.target_arn,
            "RoleArn": self.role_arn,
            "Input": json.dumps({**payload, "due_at": at + "Z"}, separators=(",", ":")),
            "RetryPolicy": RETRY_POLICY,
        }
        if self.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self.dead_letter_arn}
        try:
            self.client.create_schedule(
                Name=timer.schedule_name,
                GroupName=self.group,
                ScheduleExpression=f"at({at})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                Target=target,
                ActionAfterCompletion="DELETE",
                State="ENABLED",
            )
        except Exception as exc:
            if error_code(exc) != "ConflictException":
                raise  # the same timer already exists: arming is idempotent by name

    def exists(self, name: str) -> bool:
        """Whether the schedule is still there (not fired and deleted, nor removed by hand)."""
        try:
            self.client.get_schedule(Name=name, GroupName=self.group)
            return True
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            return False

    def delete(self, name: str) -> None:
        try:
            self.client.delete_schedule(Name=name, GroupName=self.group)
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
