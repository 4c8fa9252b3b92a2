"""What each SES outcome does to a step: a step goes out at most once, and never silently not at all."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from guarantee_stack import START, STEP1_DELAY, SesFaults, Stack, emf_metrics, new_email

from cartrecovery.usecases.ingest import contact_keys


def test_throttling_releases_the_claim_and_the_retry_sends_once(stack: Stack) -> None:
    email = new_email()
    stack.cart_activity("busy", email, START)
    stack.ses.throttle()

    assert [a["action"] for a in stack.advance(STEP1_DELAY)] == ["throttled"]

    cart = stack.cart("busy")
    assert "cart_recovery#1" not in cart.steps  # released: the step is free to be sent again
    assert cart.timer is not None and cart.timer.step == 1
    assert cart.timer.due_at == START + STEP1_DELAY + timedelta(minutes=5)
    assert stack.schedules() == [cart.timer.schedule_name]
    assert stack.sent_to(email) == []

    assert [a["action"] for a in stack.advance(timedelta(minutes=5))] == ["sent"]
    stack.deliver_again("busy")
    stack.run_sweep()
    stack.advance(timedelta(hours=6))
    assert len(stack.sent_to(email)) == 1
    assert stack.ses.attempts == 2
    assert stack.cart("busy").steps["cart_recovery#1"].status == "sent"


@pytest.mark.parametrize("fault", [SesFaults.read_timeout, SesFaults.server_error], ids=["read-timeout", "5xx"])
def test_an_ambiguous_failure_is_marked_unknown_alarmed_and_never_sent_again(
    stack: Stack, capsys: pytest.CaptureFixture[str], fault: Callable[[SesFaults], None]
) -> None:
    email = new_email()
    stack.cart_activity("maybe", email, START)
    fault(stack.ses)
    capsys.readouterr()

    assert [a["action"] for a in stack.advance(STEP1_DELAY)] == ["unknown"]

    assert emf_metrics(capsys.readouterr().out).get("SendOutcomeUnknown") == 1
    record = stack.cart("maybe").steps["cart_recovery#1"]
    assert (record.status, record.reason) == ("unknown", "send_outcome_unknown")
    # Invoked again (a duplicate delivery, a redrive by hand) and swept: the step is not tried again.
    stack.deliver_again("maybe")
    stack.deliver_again("maybe")
    stack.clock.advance(timedelta(hours=1).total_seconds())
    stack.run_sweep()
    stack.advance(timedelta(hours=12))
    assert stack.ses.attempts == 1
    assert stack.cart("maybe").steps["cart_recovery#1"].status == "unknown"


def test_a_rejected_message_suppresses_the_address(stack: Stack) -> None:
    email = new_email()
    stack.cart_activity("bad-address", email, START)
    stack.ses.reject()

    assert [a["action"] for a in stack.advance(STEP1_DELAY)] == ["stopped"]

    cart = stack.cart("bad-address")
    assert cart.steps["cart_recovery#1"].reason == "rejected"
    assert cart.timer is None and stack.schedules() == []
    key = contact_keys(stack.store, email, None)[0]
    record = stack.services.contacts.get_many(stack.store.store_id, [key]).get(key)
    assert record is not None and record.suppressed_reason == "rejected"

    # The same shopper abandons another cart a week later: nothing is sent to the address again.
    later = START + timedelta(days=7)
    stack.clock.advance((later - stack.clock.now()).total_seconds())
    stack.cart_activity("bad-address-2", email, later)
    answers = stack.advance(STEP1_DELAY + timedelta(minutes=1))
    assert [(a["action"], a["reason"]) for a in answers] == [("skipped", "suppressed")]
    assert stack.ses.attempts == 1
    assert stack.sent_to(email) == []


def test_a_step_is_sent_once_however_often_its_firing_is_delivered(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = new_email()
    stack.cart_activity("twice", email, START)
    carts = stack.services.carts
    claim = carts.claim_step
    nested: list[str] = []
    started: list[bool] = []

    def claim_while_a_duplicate_runs(*args: Any, **kwargs: Any) -> bool:
        # Scheduler and Lambda both retry: a second delivery of the same firing runs to the end between the
        # first one's read of the cart and its claim. Both saw the step unsent; only the claim decides.
        if not started:
            started.append(True)
            payload = {"store_id": stack.store.store_id, "cart_id": "twice", "flow": "cart_recovery", "step": 1}
            nested.append(stack.services.run_step(payload).action)
        return claim(*args, **kwargs)

    monkeypatch.setattr(carts, "claim_step", claim_while_a_duplicate_runs)

    assert [a["action"] for a in stack.advance(STEP1_DELAY)] == ["already_claimed"]
    assert nested == ["sent"]

    # And after the send: invoked again, nothing more goes out.
    assert stack.deliver_again("twice")["action"] != "sent"
    assert stack.deliver_again("twice")["action"] != "sent"
    stack.run_sweep()
    stack.advance(timedelta(hours=1))
    assert len(stack.sent_to(email)) == 1
    assert stack.ses.attempts == 1


class Killed(BaseException):
    """The send function's process ends mid-call (a Lambda timeout): no handler code runs after this."""


def test_a_send_that_died_after_its_claim_is_marked_unknown_and_the_flow_goes_on(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    email = new_email()
    stack.cart_activity("killed", email, START)
    timer = stack.cart("killed").timer
    assert timer is not None

    def killed() -> None:
        raise Killed

    stack.ses.during_send = killed
    with pytest.raises(Killed):
        stack.advance(STEP1_DELAY)
    stack.delete_schedule(timer.schedule_name)  # Scheduler deleted it once Lambda had accepted the firing
    capsys.readouterr()
    for minutes in (1, 2):  # Lambda's own two retries of the failed invocation
        stack.clock.advance(timedelta(minutes=minutes).total_seconds())
        stack.deliver_again("killed")
    stack.clock.advance(timedelta(minutes=15).total_seconds())
    stack.run_sweep()

    stack.advance(timedelta(days=3, hours=1))
    stack.run_sweep()
    stack.advance(timedelta(hours=1))

    steps = stack.cart("killed").steps
    assert (steps["cart_recovery#1"].status, steps["cart_recovery#1"].reason) == ("unknown", "claim_abandoned")
    assert emf_metrics(capsys.readouterr().out).get("SendOutcomeUnknown") == 1
    assert steps["cart_recovery#2"].status == "sent"  # the flow went on with its next step
    assert stack.ses.attempts == 2  # step 1 was never tried again
    assert len(stack.sent_to(email)) == 1
