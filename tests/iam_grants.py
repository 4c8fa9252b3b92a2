"""Each function may make only the AWS calls ``template.yaml`` grants it: moto does not enforce IAM, so the
tests that run the real handlers on moto record every call a handler makes (a botocore hook) and check it
against that function's policy statements. A call the policy does not grant would be AccessDenied in AWS.

What a call needs: its own action on its table (and index), per table for batch calls, per item for
transactions (``dynamodb:PutItem`` for a ``Put``, ...); Scheduler and SES actions by name, and
``iam:PassRole`` beside ``scheduler:CreateSchedule``. Non-DynamoDB resources are not matched (the template
tests check their ARNs); DynamoDB resources are the ``Fn::GetAtt`` table ARNs and ``${Table.Arn}/index/x``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
SERVICE_PREFIX = {"dynamodb": "dynamodb", "scheduler": "scheduler", "sesv2": "ses"}
_INDEX_SUB = re.compile(r"^\$\{(\w+)\.Arn\}/index/(\S+)$")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource(value: Any) -> str:
    """A policy resource as ``Table`` or ``Table/index/name``; other resources as ``*`` (not matched)."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        return str(logical) if attribute == "Arn" else "*"
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        match = _INDEX_SUB.match(value["Fn::Sub"])
        return f"{match.group(1)}/index/{match.group(2)}" if match else "*"
    return "*"


def granted(template: dict[str, Any], function: str) -> set[tuple[str, str]]:
    """(action, resource) pairs the function's policy allows; resource as ``_resource`` writes it."""
    statements = [
        s
        for policy in template["Resources"][function]["Properties"].get("Policies", [])
        for s in policy.get("Statement", [])
        if s.get("Effect") == "Allow"
    ]
    return {(a, _resource(r)) for s in statements for a in _as_list(s["Action"]) for r in _as_list(s["Resource"])}


def needed(service: str, operation: str, params: dict[str, Any], table_ids: dict[str, str]) -> set[tuple[str, str]]:
    """(action, resource) pairs one call needs; ``table_ids`` maps table names to logical ids."""
    prefix = SERVICE_PREFIX.get(service, service)
    if service != "dynamodb":
        needs = {(f"{prefix}:{operation}", "*")}
        if (service, operation) == ("scheduler", "CreateSchedule"):
            needs.add(("iam:PassRole", "*"))
        return needs

    def table(name: str) -> str:
        return table_ids.get(name, name)

    if operation in ("BatchGetItem", "BatchWriteItem"):
        return {(f"dynamodb:{operation}", table(name)) for name in params.get("RequestItems", {})}
    if operation in ("TransactWriteItems", "TransactGetItems"):
        needs = set()
        for item in params.get("TransactItems", []):
            ((kind, body),) = item.items()
            action = "GetItem" if kind == "Get" else TRANSACT_ACTIONS[kind]
            needs.add((f"dynamodb:{action}", table(body["TableName"])))
        return needs
    resource = table(params["TableName"])
    if params.get("IndexName"):
        resource = f"{resource}/index/{params['IndexName']}"
    return {(f"dynamodb:{operation}", resource)}


@dataclass
class GrantAudit:
    """Records the calls of the handler running now (``running(function)``) and names those not granted.
    Per thread, so handlers invoked concurrently are each checked against their own calls."""

    template: dict[str, Any]
    table_ids: dict[str, str] = field(default_factory=dict)  # table name -> logical id
    _state: threading.local = field(default_factory=threading.local)

    def install(self, session: Any) -> None:
        """On the session before its first client: a client copies the session's hooks when it is created."""
        session.events.register("before-parameter-build", self._record)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        calls = getattr(self._state, "calls", None)
        if calls is not None:
            calls.append((model.service_model.service_name, model.name, dict(params)))

    @contextmanager
    def running(self, function: str) -> Iterator[None]:
        calls: list[tuple[str, str, dict[str, Any]]] = []
        self._state.calls = calls
        try:
            yield
        finally:
            self._state.calls = None
        allowed = granted(self.template, function)
        actions = {action for action, _ in allowed}
        missing = sorted(
            {
                (action, resource)
                for service, operation, params in calls
                for action, resource in needed(service, operation, params, self.table_ids)
                # "*": an action whose resource is not matched here, granted on any resource
                if (action, resource) not in allowed and not (resource == "*" and action in actions)
            }
        )
        assert not missing, f"{function} made calls template.yaml does not grant it: {missing}"


@dataclass
class AuditedFunction:
    """A function run in-process (anything with ``invoke(event)``) whose every invocation is audited."""

    function: Any
    logical_id: str
    audit: GrantAudit

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.audit.running(self.logical_id):
            return self.function.invoke(event)
