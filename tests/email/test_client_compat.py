"""What mail clients need from the HTML, checked on every shipped step in every locale: Gmail and Yahoo!メール
drop or rewrite <style> blocks and clip messages over 102 KB, Outlook for Windows renders with Word (tables
and inline styles only, image sizes from attributes, no flex, grid or positioning), and every client blocks
scripts, forms and external stylesheets. The <style> block may only add the phone-width media query: the
email must already look right without it."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from cartrecovery.email.overrides import flow_steps
from cartrecovery.email.render import EmailRenderer, default_templates_dir
from cartrecovery.email.samples import sample_context

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
