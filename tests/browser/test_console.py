"""The local console (``GET /_local/``, CONTRACT §3) as a person uses it: advance the clock with a button,
find the email in the outbox, open it, emulate an open, see the report and the cart's decision log, and open
the preview of each A/B variant of a step."""

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


def _other_currency(page: Any, currency: str) -> float:
    """The console's revenue in ``currency`` of orders in another currency than the store's (0 if none)."""
    line = page.locator("#other-currencies")
    if line.count() == 0:
        return 0.0
    text = line.inner_text()
    amounts = {part.split()[0]: float(part.split()[1]) for part in text.split(":", 1)[1].split(",")}
    return amounts.get(currency, 0.0)


def test_the_console_shows_revenue_in_other_currencies_beside_the_report(local_stack: Any, tab: Any) -> None:
    """A dollar order on a yen store is kept out of ``revenue``; the console must still show it, as the CLI
    and the report JSON do, or a marketer reading the console sees nothing recovered."""
    stack, page = local_stack, tab.page
    cart_id, email, _ = stack.start_cart()
    stack.advance(2 * 3600 + 60)
    assert len(stack.outbox(to=email)) == 1
    page.goto(stack.base_url + "/_local/")
    before = _other_currency(page, "USD")

    order = stack.order_event(cart_id, email, stack.now(), total=49.99, currency="USD")
    assert stack.post_event(order)[0] == 202
    page.goto(stack.base_url + "/_local/")

    assert page.locator("#other-currencies").is_visible()
    assert round(_other_currency(page, "USD") - before, 2) == 49.99


def test_the_console_compares_a_holdout_stores_groups(local_stack: Any, tab: Any) -> None:
    """A store holding shoppers out: the console shows each group's carts and conversions, and the lift."""
    stack, page = local_stack, tab.page
    store_id, secret = stack.new_store({"holdout_percent": 50})
    stack.advance_to_local_time(10)
    shoppers = {stack.new_id(): stack.unique_email("console-holdout") for _ in range(12)}
    for cart_id, email in shoppers.items():
        assert stack.post_event(stack.cart_event(cart_id, email, stack.now()), secret=secret, store=store_id)[0] == 202
    stack.advance(2 * 3600 + 60)
    emailed = [cart_id for cart_id, email in shoppers.items() if stack.outbox(to=email)]
    held = len(shoppers) - len(emailed)
    assert emailed and held
    order = stack.order_event(emailed[0], shoppers[emailed[0]], stack.now(), total=3000)
    assert stack.post_event(order, secret=secret, store=store_id)[0] == 202

    page.goto(f"{stack.base_url}/_local/?store={store_id}")

    assert page.get_by_role("heading", name="Holdout: cart_recovery").is_visible()
    table = page.locator("table.holdout")
    cells = {
        row.locator("td").first.inner_text(): row.locator("td").all_inner_texts()
        for row in table.locator("tr", has=page.locator("td")).all()
    }
    assert cells["emailed"][1:3] == [str(len(emailed)), "1"]
    assert cells["held out"][1:3] == [str(held), "0"]
    rate = 100 / len(emailed)
    assert page.locator("p.lift").inner_text().startswith(f"Lift: {rate:+.1f} points")


def test_the_console_sets_a_steps_variants_against_each_other(local_stack: Any, tab: Any) -> None:
    """A store testing two subject lines on step 1: the console shows each variant's sends, clicks and orders,
    and b against a."""
    stack, page = local_stack, tab.page
    steps = [{"step": 1, "delay_seconds": 2 * 3600, "variants": ["a", "b"]}]
    store_id, secret = stack.new_store({"flows": {"cart_recovery": {"steps": steps}}})
    stack.advance_to_local_time(10)
    shoppers = {stack.new_id(): stack.unique_email("console-ab") for _ in range(12)}
    for cart_id, email in shoppers.items():
        assert stack.post_event(stack.cart_event(cart_id, email, stack.now()), secret=secret, store=store_id)[0] == 202
    stack.advance(2 * 3600 + 60)
    variants = {c: stack.cart_view(c, store=store_id)["steps"]["cart_recovery#1"]["variant"] for c in shoppers}
    sent = {v: sum(1 for drawn in variants.values() if drawn == v) for v in ("a", "b")}
    assert sent["a"] and sent["b"], "12 shoppers all drew one variant"
    bought = next(c for c, v in variants.items() if v == "b")
    order = stack.order_event(bought, shoppers[bought], stack.now(), total=3000)
    assert stack.post_event(order, secret=secret, store=store_id)[0] == 202

    page.goto(f"{stack.base_url}/_local/?store={store_id}")

    assert page.get_by_role("heading", name="A/B test: cart_recovery step 1").is_visible()
    rows = page.locator("table.ab-test").locator("tr", has=page.locator("td")).all()
    cells = {row.locator("td").first.inner_text().split()[0]: row.locator("td").all_inner_texts() for row in rows}
    assert cells["a"][0] == "a (control)"
    assert (cells["a"][1], cells["a"][5]) == (str(sent["a"]), "0")
    assert (cells["b"][1], cells["b"][5], cells["b"][7]) == (str(sent["b"]), "1", "3000")
    comparison = page.locator("p.ab-comparison").inner_text()
    assert comparison.startswith("b against a: clicks +0.0 points")
    assert f"conversions {100 / sent['b']:+.1f} points" in comparison
    assert comparison.endswith("not significant)")


def test_the_console_links_the_preview_of_each_variant_of_an_ab_step(local_stack: Any, tab: Any) -> None:
    """A marketer testing two subject lines opens each one's preview from the console's preview list."""
    stack, page = local_stack, tab.page
    steps = [
        {"step": 1, "delay_seconds": 7200, "variants": ["a", "b"]},
        {"step": 2, "delay_seconds": 259200},
        {"step": 3, "delay_seconds": 604800},
    ]
    store_id, _ = stack.new_store({"flows": {"cart_recovery": {"steps": steps}}})

    page.goto(f"{stack.base_url}/_local/?store={store_id}")

    lines = page.locator("#previews li")
    assert [text.split(":")[0] for text in lines.all_inner_texts()] == [
        "cart_recovery step 1 variant a",
        "cart_recovery step 1 variant b",
        "cart_recovery step 2",
        "cart_recovery step 3",
    ]
    subjects = {}
    for variant in ("a", "b"):
        line = lines.filter(has_text=f"step 1 variant {variant}")
        with tab.context.expect_page() as popup_info:
            line.locator('a[href*="locale=ja"]', has_text="subject").click()
        popup = popup_info.value
        popup.wait_for_load_state()
        assert f"variant={variant}" in popup.url
        subjects[variant] = popup.locator("body").inner_text().strip()
        popup.close()
    assert subjects == {
        "a": "【新茶屋】カートに商品が残っています",
        "b": "【新茶屋】お買い忘れはありませんか？カートの商品をお取り置き中です",
    }
    assert tab.errors == []
