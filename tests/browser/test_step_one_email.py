"""The step-1 email's HTML as a mail client shows it: the sent message from the outbox, loaded into Chromium
with ``page.set_content`` (no base URL, so only absolute links work)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

ITEMS = [
    {
        "sku": "TEA-001",
        "name": "抹茶ラテ",
        "url": "https://shop.example.jp/products/tea-001",
        "image_url": "https://shop.example.jp/img/tea-001.jpg",
        "unit_price": 1280,
        "quantity": 2,
    },
    {
        "sku": "CUP-014",
        "name": "有田焼 マグカップ",
        "url": "https://shop.example.jp/products/cup-014?variant=blue&ref=cart",
        "image_url": "https://shop.example.jp/img/cup-014.jpg?w=160&h=160",
        "unit_price": 1600,
        "quantity": 1,
    },
    {
        "sku": "SET-<3>",
        "name": "Tea & <Cake> セット",
        "url": "https://shop.example.jp/products/set-3",
        "image_url": "https://shop.example.jp/img/set-3.png",
        "unit_price": 2400,
        "quantity": 1,
    },
]


def test_step_one_email_renders_items_links_images_and_unsubscribe(
    local_stack: Any, phone_tab: Any, send_step_one: Any
) -> None:
    sent = send_step_one(items=ITEMS)
    page = phone_tab.page
    page.set_content(sent.message["html"], wait_until="load")

    for item in ITEMS:
        # The name is shown as written (escaped, not interpreted), and links to the product page.
        name = page.get_by_text(item["name"], exact=True)
        assert name.is_visible(), item["name"]
        assert name.evaluate("e => e.closest('a') && e.closest('a').getAttribute('href')") == item["url"]
        image = page.get_by_role("img", name=item["name"])
        assert image.get_attribute("src") == item["image_url"]
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), f"{item['image_url']} did not load"
    assert page.locator("cake").count() == 0, "an item name was interpreted as HTML"

    # Every link works from a mail client: absolute, and https except the local stack's own unsubscribe URL.
    unsubscribe = local_stack.unsubscribe_url(sent.message)
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
    assert hrefs, "the email has links"
    for href in hrefs:
        assert href.startswith("https://") or href == unsubscribe, href
    product_links = [h for h in hrefs if "/products/" in h]
    assert sorted(set(product_links)) == sorted(i["url"] for i in ITEMS)

    # Every image says what it shows.
    alts = page.eval_on_selector_all("img", "images => images.map(i => i.getAttribute('alt'))")
    assert len(alts) >= len(ITEMS)
    assert all(alt and alt.strip() for alt in alts), alts

    # The unsubscribe link (the List-Unsubscribe URL) is visible in the body and legible.
    link = page.locator(f'a[href="{unsubscribe}"]')
    assert link.count() >= 1
    link.first.scroll_into_view_if_needed()
    assert link.first.is_visible()
    assert unsubscribe in link.first.inner_text() or "配信停止" in link.first.inner_text()
    style = link.first.evaluate(
        "a => { const s = getComputedStyle(a); return {size: parseFloat(s.fontSize), color: s.color,"
        " background: getComputedStyle(a.closest('td')).backgroundColor}; }"
    )
    assert style["size"] >= 11, style
    assert style["color"] != style["background"], style
    assert "配信停止" in page.locator("body").inner_text()

    # On a phone, nothing forces sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert phone_tab.errors == []
    assert sorted(phone_tab.external_requests(local_stack.base_url)) == sorted(i["image_url"] for i in ITEMS)
