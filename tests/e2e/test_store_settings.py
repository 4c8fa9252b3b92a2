"""An operator changes a store's settings with ``cartrecovery --local store update`` while carts wait, over
the local stack's real HTTP: the pending steps follow the new settings when they fire (a longer delay holds
step 1 back; a disabled flow ends the timer without an email)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

LocalStack = Any  # the fixture's class lives in conftest.py

HOUR = 3600


def update(stack: LocalStack, store_id: str, patch: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "patch.json"
    path.write_text(json.dumps(patch), encoding="utf-8")
    answer = stack.cli("store", "update", "--id", store_id, "--settings", str(path))
    assert answer.returncode == 0, answer.stderr
    return str(answer.stdout)


def test_pending_steps_follow_a_settings_update(local_stack: LocalStack, tmp_path: Path) -> None:
    stack = local_stack
    store_id, secret = stack.new_store()
    stack.advance_to_local_time(10)
    cart_id, email = stack.new_id(), stack.unique_email("update")
    status, body = stack.post_event(stack.cart_event(cart_id, email, stack.now()), secret=secret, store=store_id)
    assert status == 202, body

    # Step 1 was armed for two hours after the cart's activity; the store now waits four.
    steps = [{"step": 1, "delay_seconds": 4 * HOUR}, {"step": 2, "delay_seconds": 72 * HOUR}]
    out = update(stack, store_id, {"flows": {"cart_recovery": {"steps": steps}}}, tmp_path)
    assert f"store {store_id} updated: flows.cart_recovery.steps" in out
    stack.advance(2 * HOUR + 60)
    assert stack.outbox(to=email) == []
    stack.advance(2 * HOUR)
    assert len(stack.outbox(to=email)) == 1  # step 1, four hours after the activity

    # With the flow disabled, step 2's firing ends the flow and sends nothing.
    out = update(stack, store_id, {"flows": {"cart_recovery": {"enabled": False}}}, tmp_path)
    assert "updated: flows.cart_recovery.enabled" in out
    stack.advance(72 * HOUR)
    assert len(stack.outbox(to=email)) == 1
    cart = stack.cart_view(cart_id, store_id)
    assert cart["timer"] is None
    last = cart["decisions"][-1]
    assert (last["action"], last["reason"]) == ("skipped", "flow_disabled"), cart["decisions"]

    shown = json.loads(stack.cli("store", "show", "--id", store_id).stdout)
    assert shown["flows"]["cart_recovery"] == {"enabled": False, "steps": steps}
    assert shown["legal"]["address"] == "京都府京都市下京区 1-2-3"  # what the updates did not name is kept
