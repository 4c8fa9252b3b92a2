"""Every shipped template, in every locale, for every step, renders with the sample data; undefined names
fail loudly with file and line; shopper- and store-supplied text cannot inject markup or template code."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from cartrecovery.email.overrides import flow_steps
from cartrecovery.email.render import EmailRenderer, TemplateError, default_templates_dir
from cartrecovery.email.samples import sample_context, sparse_context

TEMPLATES = default_templates_dir()
RENDERER = EmailRenderer()
LOCALES = RENDERER.available_locales()
STEPS = flow_steps(TEMPLATES)
EVERY_EMAIL = [(locale, flow, step) for locale in LOCALES for flow, step in STEPS]


def test_the_shipped_set_is_what_the_docs_promise() -> None:
    assert {"ja", "en"} <= set(LOCALES)
    assert {("cart_recovery", 1), ("cart_recovery", 2), ("cart_recovery", 3)} <= set(STEPS)
    for locale in LOCALES:  # every locale has its own three parts of every step (no silent fallback)
        for flow, step in STEPS:
            for part in ("subject", "html", "txt"):
                assert (TEMPLATES / locale / flow / f"step{step}.{part}.j2").is_file(), (locale, flow, step, part)


@pytest.mark.parametrize("name", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.j2")))
def test_every_template_file_compiles(name: str) -> None:
    RENDERER.compile(name)


@pytest.mark.parametrize(("locale", "flow", "step"), EVERY_EMAIL)
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
def test_every_step_renders_in_every_locale(locale: str, flow: str, step: int, sparse: bool) -> None:
    context = (sparse_context if sparse else sample_context)(flow, step, locale)

    email = RENDERER.render(flow, step, locale, context)

    assert context["shop"]["name"] in email.subject
    for part in (email.html, email.text):
        assert context["unsubscribe_url"] in part
        for value in context["legal"].values():
            assert html.escape(value, quote=False) in part or value in part
        for item in context["cart"]["items"]:
            assert html.escape(item["name"], quote=False) in part or item["name"] in part
        assert "None" not in part, "an empty optional value was printed"
    if context["coupon"]:
        assert context["coupon"]["code"] in email.html and context["coupon"]["code"] in email.text
    html_lang = re.search(r'<html lang="([^"]+)"', email.html)
    assert html_lang is not None and html_lang.group(1) == locale


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("{{ shop.name }}\n{{ shop.nickname }}", 2),  # an unknown attribute of a known variable
        ("line one\nline two\n{{ discount_code }}", 3),  # an unknown variable
        ("{% for item in cart['items'] %}\n{{ item.colour }}\n{% endfor %}", 2),  # inside a loop
    ],
)
def test_an_unknown_variable_fails_the_render_naming_file_and_line(source: str, line: int) -> None:
    name = "ja/cart_recovery/step1.txt.j2"
    renderer = EmailRenderer(overrides={name: source})

    with pytest.raises(TemplateError) as caught:
        renderer.render("cart_recovery", 1, "ja", sample_context("cart_recovery", 1, "ja"))

    assert caught.value.template == name and caught.value.line == line
    assert str(caught.value).startswith(f"{name}:{line}: UndefinedError")


def test_an_unknown_variable_in_a_partial_names_the_partial() -> None:
    renderer = EmailRenderer(overrides={"en/_footer.txt.j2": "{{ legal.sender_name }}\n{{ legal.phone }}\n"})

    with pytest.raises(TemplateError) as caught:
        renderer.render("cart_recovery", 2, "en", sample_context("cart_recovery", 2, "en"))

    assert (caught.value.template, caught.value.line) == ("en/_footer.txt.j2", 2)
    assert "phone" in str(caught.value) and "rendering en/cart_recovery/step2.txt.j2" in str(caught.value)


HOSTILE = [
    "<script>alert('x')</script>",
    "\"'><img src=x onerror=alert(1)>",
    "{{ 7 * 7 }}{% raw %}{{ cart }}",
    "Taro\r\nBcc: victim@example.com",
]


class _Page(HTMLParser):
    """The elements, attributes and visible text of an HTML document, as a browser would parse it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("locale", "flow", "step"), EVERY_EMAIL)
@pytest.mark.parametrize("hostile", HOSTILE, ids=["script", "quotes", "jinja", "header"])
def test_hostile_names_are_escaped_in_html_and_inert_in_text_and_subject(
    locale: str, flow: str, step: int, hostile: str
) -> None:
    context = sample_context(flow, step, locale)
    context["shop"]["name"] = hostile
    context["customer"]["name"] = hostile
    context["cart"]["items"][0]["name"] = hostile
    context["legal"]["sender_name"] = hostile
    if context["coupon"]:
        context["coupon"]["code"] = hostile
    for product in context["recommendations"]:
        product["name"] = hostile

    email = RENDERER.render(flow, step, locale, context)

    page = _Page()
    page.feed(email.html)
    assert "script" not in page.tags and "onerror" not in page.attributes  # no markup came from the value
    assert squash(hostile) in squash("".join(page.text))  # it is shown as written
    # In text and subject the value is literal: never evaluated as template code, never a header break.
    assert squash(hostile) in squash(email.text)
    assert squash(hostile) in email.subject
    assert "\r" not in email.subject and "\n" not in email.subject
