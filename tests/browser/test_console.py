"""The local console (``GET /_local/``, CONTRACT §3) as a person uses it: advance the clock with a button,
find the email in the outbox, open it, emulate an open, see the report and the cart's decision log."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def _report_total(page: Any, column: str) -> int:
    """The report table's total for ``column``, read as a person reads it."""
    report = page.locator("table").first
    headers = [h.strip() for h in report.locator("tr").first.locator("th").all_inner_texts()]
    totals = report.locator("tr", has=page.locator("th", has_text="total"))
    cells = totals.locator("th").all_inner_texts()
    # The total row's first cell spans flow, step and variant.
    return int(cells[headers.index(column) - 2])


def test_console_shows_the_outbox_and_opens_a_sent_email(local_stack: Any, tab: Any) -> None:
    stack, page = local_stack, tab.page
    stack.advance_to_local_time(10)  # the three hours the button adds stay clear of quiet hours
    cart_id, email = stack.new_id(), stack.unique_email("hanako")
    status, body = stack.post_event(stack.cart_event(cart_id, email, stack.now(), name="佐藤 花子"))
    assert status == 202, body

    page.goto(stack.base_url + "/_local/")
    assert page.title() == "cartrecovery local console"
    cart = page.locator("details", has_text=cart_id)
    assert cart.is_visible()
    assert "open" in cart.locator("summary").inner_text()
    assert page.locator("tr", has_text=email).count() == 0  # nothing sent yet

    # "+3h" advances the virtual clock, sends what fell due and reloads the page.
    with page.expect_navigation():
        page.get_by_role("button", name="+3h").click()
    row = page.locator("tr", has_text=email)
    assert row.count() == 1
    [message] = stack.outbox(to=email)
    assert message["subject"] in row.inner_text()
    assert message["message_id"] in row.inner_text()
    step_one = page.locator("details", has_text=cart_id)
    assert "cart_recovery#1: sent" in step_one.locator("summary + p").inner_text()
    assert "sent" in step_one.locator("table").inner_text()

    # "view" opens the email as the shopper would see it, in a new tab.
    with tab.context.expect_page() as popup_info:
        row.get_by_role("link", name="view").click()
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.url == f"{stack.base_url}/_local/outbox/{message['message_id']}.html"
    assert "佐藤 花子さま" in popup.locator("body").inner_text()
    assert popup.get_by_text("抹茶ラテ", exact=True).is_visible()
    assert popup.get_by_role("img", name="抹茶ラテ").evaluate("img => img.complete && img.naturalWidth > 0")
    assert popup.get_by_role("link", name="カートを見る").get_attribute("href") == (
        f"https://shop.example.jp/cart/restore?cart={cart_id}"
    )
    popup.close()

    # Emulating an open (the row's "open" button) shows up in the report.
    opened_before = _report_total(page, "opened")
    with page.expect_navigation():
        row.get_by_role("button", name="open", exact=True).click()
    assert _report_total(page, "opened") == opened_before + 1
    assert page.locator("#status").inner_text() == ""  # no error message from the button

    assert tab.errors == []
    assert tab.external_requests(stack.base_url) == [
        u for u in tab.requests if u.startswith("https://shop.example.jp/img/")
    ], "only the email's product images leave the stack"
