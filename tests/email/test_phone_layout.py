"""The shipped emails on a phone: each step, in Japanese and English, rendered with the sample data and
opened in headless Chromium at 375 px wide, fits the screen (no sideways scrolling), with a screenshot
kept for a person to look at (``--basetemp`` to keep them)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from cartrecovery.email.render import EmailRenderer
from cartrecovery.email.samples import sample_context

pytestmark = pytest.mark.browser

WIDTH = 375
PNG = base64.b64decode(  # a 1x1 opaque PNG stands in for the product photos
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
SAMPLE_IMAGES = ("https://shop.example.jp/images/", "https://shop.example.com/images/")
RENDERER = EmailRenderer()
LONG_NAME = {
    "ja": "【数量限定】京都宇治産・特選一番摘み抹茶「翠嶺（すいれい）」缶入り30g×3本セット＋専用茶筅・茶杓付き",
    "en": "Limited-edition-hand-whisked-ceremonial-grade-Uji-matcha-gift-set-with-bamboo-whisk-and-scoop",
}


def open_on_a_phone(browser: Any, html: str, screenshot: Path, item_name: str) -> dict[str, Any]:
    """Load ``html`` as a mail client on a 375 px phone would (only the sample images load), screenshot it."""
    context = browser.new_context(
        viewport={"width": WIDTH, "height": 667}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    try:

        def route(route: Any) -> None:
            if route.request.url.startswith(SAMPLE_IMAGES):
                route.fulfill(status=200, content_type="image/png", body=PNG)
            else:
                route.abort("blockedbyclient")  # an email page loads nothing else

        context.route("**/*", route)
        page = context.new_page()
        page.set_content(html, wait_until="load")
        page.screenshot(path=str(screenshot), full_page=True)
        return {
            "scroll_width": page.evaluate("document.documentElement.scrollWidth"),
            "item_visible": page.get_by_text(item_name, exact=True).first.is_visible(),
        }
    finally:
        context.close()


@pytest.mark.parametrize("locale", ["ja", "en"])
@pytest.mark.parametrize("step", [1, 2, 3])
@pytest.mark.parametrize("cart", ["sample", "long-names", "unbroken-words"])
def test_each_step_fits_a_375px_phone_screen(chromium: Any, tmp_path: Path, locale: str, step: int, cart: str) -> None:
    context = sample_context("cart_recovery", step, locale, items=3 if cart == "sample" else 5)
    if cart == "long-names":
        context["cart"]["items"][1]["name"] = LONG_NAME[locale]
        context["cart"]["items"][2]["variant"] = LONG_NAME[locale]
        context["cart"]["recovery_url"] += "&token=" + "x" * 120
    if cart == "unbroken-words":  # no space or hyphen to break at: it once widened the column to 1,300 px
        context["customer"]["name"] = "Z" * 180
        context["cart"]["items"][1]["name"] = "W" * 180
        context["cart"]["items"][2]["variant"] = "V" * 180
    email = RENDERER.render("cart_recovery", step, locale, context)
    shot = tmp_path / f"step{step}.{locale}.{cart}.png"

    seen = chromium.run(open_on_a_phone, email.html, shot, context["cart"]["items"][0]["name"])

    assert seen["scroll_width"] <= WIDTH, f"{shot}: the page is {seen['scroll_width']} px wide on a {WIDTH} px screen"
    assert shot.stat().st_size > 5_000  # a real rendering, not a blank page
    assert seen["item_visible"]
