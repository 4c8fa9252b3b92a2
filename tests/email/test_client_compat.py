"""What mail clients need from the HTML, checked on every shipped step in every locale: Gmail and Yahoo!メール
drop or rewrite <style> blocks and clip messages over 102 KB, Outlook for Windows renders with Word (tables
and inline styles only, image sizes from attributes, no flex, grid or positioning), and every client blocks
scripts, forms and external stylesheets. The <style> block may only add the phone-width media query: the
email must already look right without it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from cartrecovery.domain.cart import CartState
from cartrecovery.domain.events import Customer, Item
from cartrecovery.email.context import build_context
from cartrecovery.email.overrides import flow_steps
from cartrecovery.email.render import EmailRenderer, default_templates_dir
from cartrecovery.email.samples import sample_context
from tests.fakes import store_settings

RENDERER = EmailRenderer()
STEPS = flow_steps(default_templates_dir())
EVERY_EMAIL = [(locale, flow, step) for locale in RENDERER.available_locales() for flow, step in STEPS]
FORBIDDEN_TAGS = {"script", "form", "input", "button", "iframe", "video", "audio", "object", "embed", "link"}
FORBIDDEN_CSS = re.compile(r"display\s*:\s*(flex|grid|inline-flex)|position\s*:|float\s*:|@import", re.I)


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.style_blocks: list[str] = []
        self.text_links: list[dict[str, str | None]] = []  # links showing text (not only an image)
        self._in_style = False
        self._link: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"
        if tag == "a":
            self._link = dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False
        if tag == "a":
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style_blocks.append(data)
        if self._link is not None and data.strip() and self._link not in self.text_links:
            self.text_links.append(self._link)


@pytest.mark.parametrize(("locale", "flow", "step"), EVERY_EMAIL)
def test_the_html_uses_only_what_every_mail_client_renders(locale: str, flow: str, step: int) -> None:
    email = RENDERER.render(flow, step, locale, sample_context(flow, step, locale))
    parsed = Elements()
    parsed.feed(email.html)

    assert len(email.html.encode("utf-8")) < 100_000  # Gmail clips at 102 KB
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & FORBIDDEN_TAGS, tags & FORBIDDEN_TAGS
    assert "table" in tags  # the layout is tables, which Outlook's Word engine lays out
    for block in parsed.style_blocks:  # only the phone-width enhancement lives outside the elements
        outside_media = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", block).strip()
        assert outside_media == "", f"style rules outside the media query: {outside_media!r}"
    for tag, attrs in parsed.tags:
        style = attrs.get("style") or ""
        assert not FORBIDDEN_CSS.search(style), (tag, style)
        if tag == "img":
            assert attrs.get("alt"), attrs  # images are often blocked: the alt text stands in
            assert attrs.get("width") and attrs.get("height"), attrs  # Outlook ignores CSS sizes on images
            assert (attrs.get("src") or "").startswith("https://"), attrs
        if tag == "a":
            assert (attrs.get("href") or "").startswith(("https://", "mailto:")), attrs
    for link in parsed.text_links:  # otherwise each client picks its own link colour
        assert "color" in (link.get("style") or ""), link
    visible_styled = [attrs for tag, attrs in parsed.tags if tag in ("td", "p", "a") and attrs.get("class")]
    assert all(attrs.get("style") for attrs in visible_styled), "an element styled by class only"


@pytest.mark.parametrize("locale", ["ja", "en"])
@pytest.mark.parametrize("step", [1, 2, 3])
def test_a_full_cart_stays_under_gmails_clip_with_its_unsubscribe_link_and_legal_footer(locale: str, step: int) -> None:
    """100 items (the most an event may carry) with a shop's usual product and image URLs came to 117 KB:
    Gmail hid everything past 102 KB, the unsubscribe link and the 特定電子メール法 footer included."""
    cdn = "https://cdn.shopify.com/s/files/1/0123/4567/8901/products/"
    items = tuple(
        Item(
            sku=f"SKU-{n:03d}",
            name=f"宇治抹茶 特選 {n} / Uji matcha ceremonial grade {n}",
            url=f"https://shop.example.jp/products/uji-matcha-ceremonial-grade-{n}?variant=4412345678{n:03d}",
            unit_price=Decimal("3240"),
            quantity=1,
            image_url=f"{cdn}matcha-{n}_1024x1024.jpg?v=1699999999",
            variant="30g缶 / 30 g tin",
        )
        for n in range(100)
    )
    cart = CartState(
        "shop-1",
        "c-1",
        items=items,
        recovery_url="https://shop.example.jp/cart/restore?token=" + "t" * 64,
        customer=Customer(email="taro@example.jp", name="山田 太郎"),
    )
    settings = store_settings(locale=locale)
    unsubscribe = "https://api.example.jp/u/" + "u" * 200
    context = build_context(settings, cart, "cart_recovery", step, locale, unsubscribe, datetime.now(UTC))
    email = RENDERER.render("cart_recovery", step, locale, context)

    assert len(email.html.encode("utf-8")) < 100_000
    assert unsubscribe in email.html and settings.legal.address in email.html
    assert "SKU" not in email.text and items[9].url in email.text and items[10].url not in email.text
    assert ("ほか90点" if locale == "ja" else "90 more items are in your cart") in email.text
