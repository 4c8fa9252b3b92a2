"""A step never goes out before the cart's last activity plus the step's delay.

The cart keeps one timer, armed at the first activity; later activity does not touch the scheduler. When the
timer fires early because the shopper came back meanwhile, the send handler must notice and wait.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from guarantee_stack import START, STEP1_DELAY, TOKYO, Stack, new_email


@pytest.mark.parametrize(
    "came_back_after",
    [timedelta(minutes=1), timedelta(minutes=119), timedelta(hours=9)],
    ids=["a-minute-after-arming", "just-before-the-timer-fires", "into-quiet-hours"],
)
def test_activity_after_arming_moves_the_step_later(stack: Stack, came_back_after: timedelta) -> None:
    email = new_email()
    stack.cart_activity("browsing", email, START)
    armed = stack.cart("browsing").timer
    assert armed is not None and armed.due_at == START + STEP1_DELAY

    last_activity = START + came_back_after
    stack.clock.advance(came_back_after.total_seconds())
    stack.cart_activity("browsing", email, last_activity)
    earliest = last_activity + STEP1_DELAY

    stack.advance(earliest - stack.clock.now() - timedelta(seconds=1))
    assert stack.sent_to(email) == []  # the original timer fired (or was re-armed) and held back

    stack.advance(timedelta(days=1))
    sent = stack.sent_to(email)
    assert len(sent) == 1
    assert sent[0].sent_at >= earliest
    local = sent[0].sent_at.astimezone(TOKYO)
    assert 8 <= local.hour < 21  # and a wait that ends in quiet hours waits for the morning
    assert stack.cart("browsing").last_activity_at == last_activity


def test_a_late_delivered_older_event_does_not_bring_the_step_forward(stack: Stack) -> None:
    email = new_email()
    stack.cart_activity("reordered", email, START)
    stack.clock.advance(timedelta(minutes=90).total_seconds())
    stack.cart_activity("reordered", email, START + timedelta(minutes=90))
    stack.cart_activity("reordered", email, START + timedelta(minutes=30))  # sent earlier, arrived last

    earliest = START + timedelta(minutes=90) + STEP1_DELAY
    stack.advance(earliest - stack.clock.now() - timedelta(seconds=1))
    assert stack.sent_to(email) == []
    stack.advance(timedelta(minutes=2))
    sent = stack.sent_to(email)
    assert len(sent) == 1 and sent[0].sent_at >= earliest
