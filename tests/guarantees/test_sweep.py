"""Nothing is silently lost: a step whose schedule vanished is re-armed by the sweep and sent exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from guarantee_stack import PREFIX, SEND_ARN, START, STEP1_DELAY, Stack, new_email

from cartrecovery.local.scheduler_runner import SchedulerRunner
from cartrecovery.usecases.reconcile import GRACE, ReconcileTimers


def test_a_step_whose_schedule_vanished_is_rearmed_and_sent_exactly_once(
    stack: Stack, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    email = new_email()
    stack.cart_activity("lost", email, START)
    armed = stack.cart("lost").timer
    assert armed is not None and stack.schedules() == [armed.schedule_name]

    stack.delete_schedule(armed.schedule_name)  # behind the system's back
    assert stack.advance(STEP1_DELAY + GRACE + timedelta(minutes=1)) == []  # nothing left to fire
    assert stack.sent_to(email) == []

    stack.dynamodb_calls.clear()
    capsys.readouterr()
    caplog.set_level("INFO")
    assert stack.run_sweep()["rearmed"] == 1
    logged = capsys.readouterr().out + caplog.text
    assert '"rearmed": 1' in logged or "'rearmed': 1" in logged  # counts are logged...
    assert email not in logged and email.split("@")[0] not in logged  # ...never the address
    rearmed = stack.cart("lost").timer
    assert rearmed is not None and rearmed.step == 1
    assert rearmed.due_at <= stack.clock.now() + timedelta(minutes=1)  # due now, not at some later time
    assert stack.schedules() == [rearmed.schedule_name]
    assert stack.cart("lost").decisions[-1].reason == "schedule_missing"
    operations = {name for name, _ in stack.dynamodb_calls}
    assert "Scan" not in operations
    assert {p.get("IndexName") for name, p in stack.dynamodb_calls if name == "Query"} == {"timers"}

    # A second run before the new schedule fires changes nothing: the sweep is idempotent.
    again = stack.run_sweep()
    assert again["rearmed"] == 0
    assert stack.schedules() == [rearmed.schedule_name]

    answers = stack.advance(timedelta(minutes=2))
    assert [a["action"] for a in answers] == ["sent"]
    stack.run_sweep()
    stack.deliver_again("lost")
    stack.advance(timedelta(hours=6))
    assert len(stack.sent_to(email)) == 1
    assert stack.cart("lost").steps["cart_recovery#1"].status == "sent"


def test_a_cart_whose_schedule_is_still_there_is_left_alone(stack: Stack) -> None:
    stack.cart_activity("late", new_email(), START)
    before = stack.cart("late")
    stack.clock.advance((STEP1_DELAY + GRACE * 3).total_seconds())  # Scheduler running late: not fired yet

    result = stack.run_sweep()

    assert (result["live"], result["rearmed"], result["cleared"]) == (1, 0, 0)
    after = stack.cart("late")
    assert before.timer is not None and after.timer == before.timer
    assert after.decisions == before.decisions
    assert stack.schedules() == [before.timer.schedule_name]


def test_a_closed_cart_is_not_rearmed(stack: Stack) -> None:
    email = new_email()
    stack.cart_activity("bought", email, START)
    stack.order("bought", email, START + timedelta(minutes=30))
    timer = stack.cart("bought").timer
    assert timer is not None  # ordering does not touch the scheduler; the firing would have stopped the flow
    stack.delete_schedule(timer.schedule_name)
    stack.clock.advance((STEP1_DELAY + GRACE + timedelta(minutes=1)).total_seconds())

    result = stack.run_sweep()

    assert (result["rearmed"], result["cleared"]) == (0, 1)
    assert stack.schedules() == []
    assert stack.cart("bought").timer is None  # and so it is not looked at again
    assert stack.run_sweep()["examined"] == 0
    stack.advance(timedelta(days=10))
    assert stack.sent_to(email) == []


def test_each_run_is_bounded_and_the_next_one_continues(stack: Stack) -> None:
    for index in range(3):
        stack.cart_activity(f"lost-{index}", new_email(), START + timedelta(minutes=index))
        timer = stack.cart(f"lost-{index}").timer
        assert timer is not None
        stack.delete_schedule(timer.schedule_name)
    stack.clock.advance((STEP1_DELAY + GRACE + timedelta(minutes=5)).total_seconds())
    sweep = ReconcileTimers(stack.services.carts, stack.services.schedules, stack.clock, limit=2)

    first = sweep()
    second = sweep()

    assert (first.rearmed, first.more) == (2, True)
    assert (second.rearmed, second.more) == (1, False)
    assert len(stack.schedules()) == 3


def test_the_local_runner_sweeps_too_so_a_dead_lettered_step_still_goes_out(stack: Stack) -> None:
    """SES refuses every attempt of the firing (say the sender identity was not verified yet); the local
    scheduler gives up after three attempts and dead-letters it, as Lambda's retries would. Once SES is
    fixed, the sweep the runner runs every five virtual minutes re-arms the step and it goes out once."""
    runner = SchedulerRunner(
        stack.admin.client("scheduler"),
        PREFIX,
        stack.clock,
        stack.send.invoke,
        send_function_arn=SEND_ARN,
        sweep=stack.run_sweep,
    )
    stack.runner = runner
    email = new_email()
    stack.cart_activity("refused", email, START)
    for _ in range(3):
        stack.ses.refuse()
    stack.advance(STEP1_DELAY)
    stack.advance(timedelta(minutes=1))
    stack.advance(timedelta(minutes=1))
    assert len(runner.dead_letters) == 1 and stack.schedules() == []
    assert stack.cart("refused").steps == {}  # the claim was released: nothing went out

    stack.advance(GRACE + timedelta(minutes=10))

    assert len(stack.sent_to(email)) == 1
    assert stack.ses.attempts == 4
    assert any(s.get("result", {}).get("rearmed") == 1 for s in runner.sweeps)
    stack.advance(timedelta(hours=12))
    assert len(stack.sent_to(email)) == 1


class Killed(BaseException):
    """The send function's process ends mid-invocation (a timeout): nothing after this point runs."""


def test_a_cart_left_half_updated_by_a_dead_invocation_is_not_parked_forever(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 1's firing comes more than a day late (an outage), so the handler records step 1 as too late and
    moves the timer on to step 2; the invocation dies between the two writes. Every retry and every re-arm
    by the sweep fires step 1 again: each must carry the cart on to step 2, not stop at "step 1 is done"."""
    email = new_email()
    stack.cart_activity("outage", email, START)
    timer = stack.cart("outage").timer
    assert timer is not None
    stack.delete_schedule(timer.schedule_name)  # fired during the outage; every attempt failed
    stack.clock.advance(timedelta(days=2).total_seconds())
    carts = stack.services.carts
    update = carts.update_progress

    def dies_before_moving_the_timer(*args: Any, **kwargs: Any) -> bool:
        if kwargs.get("timer") not in (None, False):
            monkeypatch.setattr(carts, "update_progress", update)
            raise Killed
        return update(*args, **kwargs)

    monkeypatch.setattr(carts, "update_progress", dies_before_moving_the_timer)
    with pytest.raises(Killed):
        stack.deliver_again("outage")
    parked = stack.cart("outage")
    assert parked.steps["cart_recovery#1"].reason == "too_late" and parked.timer == timer

    stack.deliver_again("outage")  # Lambda's retry
    stack.clock.advance((GRACE + timedelta(minutes=5)).total_seconds())
    stack.run_sweep()
    stack.advance(timedelta(days=1, hours=1))

    cart = stack.cart("outage")
    assert cart.steps["cart_recovery#2"].status == "sent"  # step 2 went out on time, 3 days after activity
    assert cart.steps["cart_recovery#1"].reason == "too_late"
    assert len(stack.sent_to(email)) == 1
