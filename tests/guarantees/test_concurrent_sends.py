"""One firing delivered many times at once sends one email, and a retry after the send sends nothing.

EventBridge Scheduler delivers at least once and Lambda retries failed invocations, so the same (cart, step)
can reach several send containers at the same moment. Twenty containers, each with its own clients built by
``cartrecovery.wiring`` over the real DynamoDB and SES adapters (moto), run the step at once: the conditional
claim lets exactly one of them call SES.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from guarantee_stack import START, STEP1_DELAY, Stack, new_email
from moto.core.botocore_stubber import BotocoreStubber

from cartrecovery import wiring
from cartrecovery.domain.cart import SENT
from cartrecovery.usecases.run_step import StepOutcome

CONTAINERS = 20
FLOW = "cart_recovery"


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each request atomically: a conditional write checks and writes in one step. moto's
    in-process backend takes no lock, so two threads could both pass a condition inside moto itself; serialise
    its request handling so the emulator behaves like the service. Requests still interleave freely."""
    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


def warm_container(stack: Stack) -> wiring.Services:
    """A send container after its cold start: adapters, clients and the use case built, nothing run yet."""
    container = wiring.Services(stack.settings, stack.clock, stack.session)
    assert container.run_step is not None
    return container


def messages_for(stack: Stack, cart_id: str) -> list[dict[str, Any]]:
    table = stack.settings.messages_table
    items: list[dict[str, Any]] = stack.admin.client("dynamodb").scan(TableName=table)["Items"]
    return [item for item in items if item["cart_id"]["S"] == cart_id]


@pytest.mark.usefixtures("atomic_requests")
def test_twenty_simultaneous_deliveries_of_a_firing_send_one_email(stack: Stack) -> None:
    email = new_email()
    stack.cart_activity("race", email, START)
    armed = stack.cart("race").timer
    assert armed is not None and armed.step == 1
    stack.clock.advance((STEP1_DELAY + timedelta(minutes=1)).total_seconds())  # due; the runner has not fired it

    containers = [warm_container(stack) for _ in range(CONTAINERS)]
    payload = {"store_id": stack.store.store_id, "cart_id": "race", "flow": FLOW, "step": 1}
    start = threading.Barrier(CONTAINERS)

    def deliver(container: wiring.Services) -> StepOutcome:
        start.wait()
        return container.run_step(dict(payload))

    with ThreadPoolExecutor(CONTAINERS) as pool:
        outcomes = list(pool.map(deliver, containers))

    actions = Counter(outcome.action for outcome in outcomes)
    assert actions["sent"] == 1, actions
    # Every other delivery found the step claimed (or, reading after the winner finished, already done).
    assert set(actions) <= {"sent", "already_claimed", "already_done"}, actions
    assert stack.ses.attempts == 1  # the losers never reached SES at all
    sent = stack.sent_to(email)
    assert len(sent) == 1
    winner = next(outcome for outcome in outcomes if outcome.action == "sent")
    assert sent[0].message_id == winner.message_id

    record = stack.cart("race").step_record(FLOW, 1)
    assert record is not None and record.status == SENT and record.message_id == winner.message_id
    assert [item["message_id"]["S"] for item in messages_for(stack, "race")] == [winner.message_id]
    timer = stack.cart("race").timer
    assert timer is not None and timer.step == 2  # armed once for the next step, whoever got there


@pytest.mark.usefixtures("atomic_requests")
def test_a_retried_firing_after_the_send_sends_nothing(stack: Stack) -> None:
    email = new_email()
    stack.cart_activity("retried", email, START)
    answers = stack.advance(STEP1_DELAY + timedelta(minutes=1))  # the Scheduler fires step 1 once
    assert [a["action"] for a in answers] == ["sent"]
    first = stack.sent_to(email)
    assert len(first) == 1

    # The Scheduler redelivers the same input and Lambda retries the invocation: the same step, again.
    retries = [stack.deliver_again("retried", step=1) for _ in range(3)]
    assert all(r["action"] != "sent" and r["message_id"] is None for r in retries), retries
    assert stack.sent_to(email) == first
    assert stack.ses.attempts == 1
    assert len(messages_for(stack, "retried")) == 1
    record = stack.cart("retried").step_record(FLOW, 1)
    assert record is not None and record.status == SENT and record.message_id == first[0].message_id
