"""The unsubscribe page a shopper reaches from an email's link (CONTRACT §1, RFC 8058), in Chromium."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

STORE_NAME = "抹茶堂 オンラインストア"
DAY = 86400
EMBEDDED = "document.querySelectorAll('script, link, img, iframe, object, embed, video, audio').length"


def test_unsubscribe_from_the_email_link(local_stack: Any, phone_tab: Any, send_step_one: Any) -> None:
    stack, page = local_stack, phone_tab.page
    sent = send_step_one()
    url = stack.unsubscribe_url(sent.message)
    assert url in sent.message["html"], "the List-Unsubscribe URL is also in the body"
    report_before = stack.report()

    # Following the link only asks: a confirmation in Japanese with one button.
    response = page.goto(url)
    assert response is not None and response.status == 200
    assert page.evaluate("document.documentElement.lang") == "ja"
    assert page.evaluate("document.characterSet") == "UTF-8"
    assert page.title() == "配信停止の確認"
    assert page.locator("h1").inner_text() == "配信停止の確認"
    assert STORE_NAME in page.locator("body").inner_text()
    button = page.get_by_role("button", name="配信を停止する")
    assert button.is_visible()
    assert page.evaluate(EMBEDDED) == 0, "no script, stylesheet or image to fetch from anywhere"
    # Readable on a phone: nothing wider than the screen, and the button is on it.
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375

    # The GET changed nothing (link scanners follow GETs): the next step is still armed, nothing counted.
    cart = stack.cart(sent.cart_id)
    assert cart is not None and cart["timer"] is not None and cart["timer"]["step"] == 2
    assert stack.report_delta(report_before, stack.report())["unsubscribed"] == 0

    # Pressing the button unsubscribes, on the same URL (no redirect), and says so.
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        button.click()
    answer = posted.value
    assert answer.status == 200
    assert answer.url == url
    assert answer.request.redirected_from is None
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "配信を停止しました"
    assert f"{STORE_NAME} からのお知らせメールは今後お送りしません" in page.locator("body").inner_text()
    assert page.get_by_role("button").count() == 0
    assert stack.report_delta(report_before, stack.report())["unsubscribed"] == 1

    # Steps 2 (three days) and 3 (seven days) are never sent.
    stack.advance(3 * DAY + 3600)
    stack.advance(4 * DAY + 3600)
    assert [m["subject"] for m in stack.outbox(to=sent.email)] == [sent.message["subject"]]

    # Both pages were self-contained and error-free.
    assert phone_tab.external_requests(stack.base_url) == []
    assert page.evaluate(EMBEDDED) == 0
    assert phone_tab.errors == []


def test_a_tampered_link_shows_a_not_found_page(local_stack: Any, tab: Any, send_step_one: Any) -> None:
    sent = send_step_one()
    url = local_stack.unsubscribe_url(sent.message)
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")

    response = tab.page.goto(tampered)

    assert response is not None and response.status == 404
    assert tab.page.locator("h1").inner_text() == "ページが見つかりません"
    assert "無効" in tab.page.locator("body").inner_text()
    assert tab.page.get_by_role("button").count() == 0
    # The shopper is still subscribed: the real link still offers the button.
    assert tab.page.goto(url) is not None
    assert tab.page.get_by_role("button", name="配信を停止する").is_visible()
    assert tab.external_requests(local_stack.base_url) == []
