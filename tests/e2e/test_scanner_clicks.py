"""Machine clicks end to end over real HTTP: a mail security scanner and a script follow an email's links, the
shopper clicks it too, and the report (JSON, the CLI's table, the console) counts the shopper's click as
``clicked`` and the machines' as ``bot_clicked``, one per message."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

LocalStack = Any  # the fixture's class lives in conftest.py; tests reach everything through the fixture

# A gateway that fetches the links before delivering the email, posing as Edge.
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 "
    "Edg/125.0.2535.85"
)


def test_a_scanners_clicks_are_reported_apart_and_the_shoppers_click_right_after_the_send_still_counts(
    local_stack: LocalStack,
) -> None:
    stack = local_stack
    cart_id, email, _ = stack.start_cart()
    timer = stack.cart_view(cart_id)["timer"]
    # To the step's due time and no further: the shopper's click below comes within a second of the send.
    stack.advance_until(datetime.fromisoformat(timer["due_at"].replace("Z", "+00:00")))
    (message,) = stack.outbox(to=email)
    message_id, link = message["message_id"], f"https://shop.example.jp/cart/restore?cart={cart_id}"
    before = stack.report()

    scanner = stack.ses(message_id, "click", url=link, user_agent=EDGE, seconds_after_send=2)
    script = stack.ses(message_id, "click", url="https://shop.example.jp/", user_agent="python-requests/2.32.3")
    shopper = stack.ses(message_id, "click", url=link)  # a phone's browser, dated as a person reads

    assert (scanner.status, script.status, shopper.status) == (200, 200, 200), shopper.text
    delta = stack.report_delta(before, stack.report())
    assert (delta["clicked"], delta["bot_clicked"]) == (1, 1)
    assert delta["sent"] == delta["opened"] == 0
    row = next(r for r in stack.report()["rows"] if (r["flow"], r["step"]) == ("cart_recovery", 1))
    assert row["bot_clicked"] >= 1
    table = stack.cli("report", "--store", stack.store_id)
    assert table.returncode == 0 and "bot_clicked" in table.stdout.splitlines()[1], table.stderr
    assert "<th>bot_clicked</th>" in stack.get("/_local/").text


def test_a_click_emulation_with_a_malformed_machine_field_is_refused(local_stack: LocalStack) -> None:
    stack = local_stack
    _, email, _ = stack.start_cart()
    stack.advance(2 * 3600 + 60)
    (message,) = stack.outbox(to=email)

    wrong_agent = stack.ses(message["message_id"], "click", user_agent=["curl/8.5.0"])
    negative = stack.ses(message["message_id"], "click", seconds_after_send=-1)

    assert (wrong_agent.status, negative.status) == (400, 400)
    assert wrong_agent.json()["errors"][0]["path"] == "user_agent"
    assert negative.json()["errors"][0]["path"] == "seconds_after_send"
