"""Smoke tests of the local stack (CONTRACT §3) over real HTTP: it starts, ingests, sends, counts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

LocalStack = Any  # the fixture's class lives in conftest.py; tests reach everything through the fixture


def test_health(local_stack: LocalStack) -> None:
    response = local_stack.get("/_local/health")
    assert response.status == 200
    assert response.json() == {"status": "ok"}


def test_signed_event_is_accepted_once_then_duplicate(local_stack: LocalStack) -> None:
    # No consent: stored, never emailed, so this test sends nothing that others would see.
    stack = local_stack
    event = stack.cart_event(stack.new_id(), stack.unique_email(), stack.now(), consent=False)
    event_id = stack.new_id("evt")

    status, body = local_stack.post_event(event, event_id=event_id)
    assert status == 202, body
    assert body == {"status": "accepted", "event_id": event_id}

    status, body = local_stack.post_event(event, event_id=event_id)
    assert status == 200, body
    assert body == {"status": "duplicate"}


def test_step_one_is_sent_three_hours_later_and_counted(local_stack: LocalStack) -> None:
    local_stack.advance_to_local_time(10)  # clear of quiet hours (21:00-08:00 Tokyo) for the next 3 h
    email = local_stack.unique_email("taro")
    event = local_stack.cart_event(local_stack.new_id(), email, local_stack.now())
    status, body = local_stack.post_event(event)
    assert status == 202, body
    assert local_stack.outbox(to=email) == []
    outbox_before = len(local_stack.outbox())
    report_before = local_stack.report()

    result = local_stack.advance(3 * 3600)

    assert result["fired"] >= 1
    mine = local_stack.outbox(to=email.upper())  # ?to= matches case-insensitively
    assert len(mine) == 1
    message = mine[0]
    assert message["to"] == [email]
    assert message["subject"]
    assert message["html"] and message["text"]
    assert message["headers"]["List-Unsubscribe"].startswith("<http")
    assert message["headers"]["List-Unsubscribe"].endswith(">")
    assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert datetime.fromisoformat(message["sent_at"].replace("Z", "+00:00")).tzinfo is not None

    # The report is shared by every test of the session: count what was sent during this advance.
    new_messages = len(local_stack.outbox()) - outbox_before
    delta = local_stack.report_delta(report_before, local_stack.report())
    assert delta["sent"] == new_messages >= 1
    assert delta["delivered"] == new_messages


def test_demo_store_settings_have_the_contract_keys(local_stack: LocalStack) -> None:
    response = local_stack.get("/_local/stores/demo")
    assert response.status == 200
    settings = response.json()
    for key in ("name", "locale", "timezone", "quiet_hours", "flows", "legal"):
        assert settings.get(key), key
    for key in ("sender_name", "address", "contact"):
        assert settings["legal"].get(key), f"legal.{key}"
    assert "secret" not in response.text.lower()
    assert local_stack.secret not in response.text


def test_the_cli_report_is_the_contract_json_and_refuses_what_it_cannot_answer(local_stack: LocalStack) -> None:
    stack = local_stack
    stack.advance_to_local_time(10)
    email = stack.unique_email("report")
    assert stack.post_event(stack.cart_event(stack.new_id(), email, stack.now()))[0] == 202
    stack.advance(3 * 3600)
    (sent,) = stack.outbox(to=email)
    day = sent["sent_at"][:10]  # a Tokyo morning is the same day in UTC

    for argv in ((), ("--from", day, "--to", day)):  # the default days are /_local/report's
        answer = stack.cli("report", "--store", "demo", "--json", *argv)
        assert answer.returncode == 0, answer.stderr
        report = json.loads(answer.stdout)
        assert report == stack.report(day_from=argv[1] if argv else None, day_to=argv[3] if argv else None)
    assert set(report) >= {"store", "from", "to", "rows", "totals"}
    assert report["from"] == report["to"] == day
    row = next(r for r in report["rows"] if (r["flow"], r["step"]) == ("cart_recovery", 1))
    assert row["sent"] >= 1 and report["totals"]["sent"] >= row["sent"]

    table = stack.cli("report", "--store", "demo", "--from", day, "--to", day)
    assert table.returncode == 0 and f"demo  {day} .. {day}" in table.stdout
    assert table.stdout.splitlines()[-1].split()[:2] == ["total", str(report["totals"]["sent"])]

    refused = {
        ("--store", "no-such-store"): (1, "error: no store 'no-such-store'"),
        ("--store", "demo", "--from", "2026-13-01"): (2, "argument --from: must be a day as YYYY-MM-DD"),
        ("--store", "demo", "--from", "2026-12-10", "--to", "2026-12-01"): (2, "2026-12-10 is after the last day"),
    }
    for argv, (code, message) in refused.items():
        answer = stack.cli("report", *argv)
        assert (answer.returncode, answer.stdout) == (code, ""), answer
        assert message in answer.stderr and "Traceback" not in answer.stderr, answer.stderr
