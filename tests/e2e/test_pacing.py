"""The per-shopper frequency cap in local mode: a second cart of the same shopper is rescheduled, not dropped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.e2e

LocalStack = Any


def test_second_cart_waits_sixteen_hours_after_the_first_email(local_stack: LocalStack) -> None:
    stack = local_stack
    stack.advance_to_local_time(9)
    email = stack.unique_email("paced")
    first, second = stack.new_id(), stack.new_id()
    customer = stack.new_id("u")
    assert stack.post_event(stack.cart_event(first, email, stack.now(), customer_id=customer))[0] == 202
    stack.advance(3600)
    assert stack.post_event(stack.cart_event(second, email, stack.now(), customer_id=customer))[0] == 202

    stack.advance(3 * 3600)  # 12:00: both carts' step 1 are due by now
    mine = stack.outbox(to=email)
    assert len(mine) == 1, "the second cart's reminder must wait for the cap"
    assert first in mine[0]["html"]

    stack.advance(24 * 3600)
    mine = stack.outbox(to=email)
    assert len(mine) == 2, "rescheduled, not dropped"
    gap = stack.sent_at(mine[1]) - stack.sent_at(mine[0])
    assert gap >= timedelta(hours=16)
    assert 8 <= stack.sent_at(mine[1]).astimezone(ZoneInfo("Asia/Tokyo")).hour < 21  # and still outside quiet hours
    assert second in mine[1]["html"]
    explained = stack.cart(second)
    assert explained is not None
    reasons = [d.get("reason") for d in explained.get("decisions", [])]
    assert "frequency_cap" in reasons, explained
