"""The shipped cart-recovery emails: content rules, escaping, strictness, overrides, and money formatting."""

from __future__ import annotations

import html
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from cartrecovery.email.money import format_money, minor_units
from cartrecovery.email.render import EmailRenderer, RenderedEmail, TemplateError, default_templates_dir
from cartrecovery.email.samples import sample_context

FLOW = "cart_recovery"
LOCALES = ("ja", "en")
STEPS = (1, 2, 3)
EVERY_EMAIL = [(locale, step) for locale in LOCALES for step in STEPS]

OPT_OUT_SENTENCE = {
    "ja": "配信停止をご希望の方は、以下のURLから手続きいただけます。",
    "en": "You can unsubscribe from these emails at any time:",
}
ALREADY_BOUGHT = {"ja": "すでにご購入済みの場合は", "en": "If you've already completed your purchase"}
OUT_OF_STOCK = {"ja": "在庫切れ", "en": "Out of stock"}
GENERIC_GREETING = {"ja": "お客さま", "en": "Hello,"}

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=1>']


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


def esc(value: str) -> str:
    """What Jinja's autoescape makes of ``value``."""
    return str(escape(value))


def render(renderer: EmailRenderer, locale: str, step: int, context: dict) -> RenderedEmail:
    return renderer.render(FLOW, step, locale, context)


def both_parts(email: RenderedEmail) -> list[str]:
    return [email.html, email.text]


# --- every shipped email ----------------------------------------------------------------------------------


def test_the_shipped_templates_are_found_for_both_locales(renderer: EmailRenderer) -> None:
    assert {"ja", "en"} <= set(renderer.available_locales())
    assert (default_templates_dir() / "ja" / FLOW / "step1.subject.j2").is_file()


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_subject_names_the_shop_on_one_line(renderer: EmailRenderer, locale: str, step: int) -> None:
    context = sample_context(FLOW, step, locale)

    email = render(renderer, locale, step, context)

    assert context["shop"]["name"] in email.subject
    assert "\n" not in email.subject and "\r" not in email.subject
    assert email.subject == email.subject.strip()


def test_japanese_subjects_follow_the_house_wording(renderer: EmailRenderer) -> None:
    subjects = [render(renderer, "ja", step, sample_context(FLOW, step, "ja")).subject for step in STEPS]

    assert subjects == [
        "【ことのは商店】カートに商品が残っています",
        "【ことのは商店】お買い物に使えるクーポンをお届けします",
        "【ことのは商店】こちらの商品もおすすめです",
    ]


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_legal_items_and_opt_out_appear_in_both_parts(renderer: EmailRenderer, locale: str, step: int) -> None:
    context = sample_context(FLOW, step, locale)

    email = render(renderer, locale, step, context)

    for part in both_parts(email):
        for value in context["legal"].values():
            assert esc(value) in part or value in part
        assert context["unsubscribe_url"] in part
        assert OPT_OUT_SENTENCE[locale] in part
        # the sentence sits by the URL it speaks of
        assert part.index(OPT_OUT_SENTENCE[locale]) < part.index(context["unsubscribe_url"])
    assert f'href="{context["unsubscribe_url"]}"' in email.html


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_already_bought_line_and_help_links_in_both_parts(renderer: EmailRenderer, locale: str, step: int) -> None:
    context = sample_context(FLOW, step, locale)

    email = render(renderer, locale, step, context)

    for part in both_parts(email):
        assert ALREADY_BOUGHT[locale] in html.unescape(part)
        for url in context["help"].values():
            assert url in part


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_every_item_links_to_its_product_page_in_both_parts(renderer: EmailRenderer, locale: str, step: int) -> None:
    context = sample_context(FLOW, step, locale, items=5)

    email = render(renderer, locale, step, context)

    for item in context["cart"]["items"]:
        assert f'href="{esc(item["url"])}"' in email.html
        assert f'alt="{esc(item["name"])}"' in email.html
        assert item["url"] in email.text
        for part in both_parts(email):
            assert item["name"] in part
            assert item["line_total"] in part
            assert str(item["quantity"]) in part
            if item["variant"]:
                assert item["variant"] in part


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_html_is_a_single_600px_column_with_a_hidden_preheader(renderer: EmailRenderer, locale: str, step: int) -> None:
    email = render(renderer, locale, step, sample_context(FLOW, step, locale))

    assert email.html.startswith("<!DOCTYPE html>")
    assert "max-width:600px" in email.html
    assert "display:none" in email.html.split("<table", 1)[0]  # the preheader comes before the layout
    assert f'<html lang="{locale}">' in email.html


class _TagBalance(HTMLParser):
    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.mismatched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.mismatched.append(tag)


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
@pytest.mark.parametrize("sparse", [False, True])
def test_html_tags_are_balanced(renderer: EmailRenderer, locale: str, step: int, sparse: bool) -> None:
    context = sample_context(FLOW, step, locale, items=5)
    if sparse:
        context.update(coupon=None, recommendations=[], customer=None)
        context["cart"]["recovery_url"] = None
    checker = _TagBalance()

    checker.feed(render(renderer, locale, step, context).html)

    assert checker.mismatched == [] and checker.open == []


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_html_stays_under_100_kb_with_five_items(renderer: EmailRenderer, locale: str, step: int) -> None:
    email = render(renderer, locale, step, sample_context(FLOW, step, locale, items=5))

    assert len(email.html.encode("utf-8")) < 100_000


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_links_are_absolute(renderer: EmailRenderer, locale: str, step: int) -> None:
    email = render(renderer, locale, step, sample_context(FLOW, step, locale, items=5))

    hrefs = email.html.split('href="')[1:]
    assert hrefs
    for href in hrefs:
        assert href.startswith("https://")


# --- cart link, coupon, recommendations, stock ----------------------------------------------------------------


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_cart_link_shown_when_given(renderer: EmailRenderer, locale: str, step: int) -> None:
    context = sample_context(FLOW, step, locale)
    url = context["cart"]["recovery_url"]

    email = render(renderer, locale, step, context)

    assert f'href="{esc(url)}"' in email.html
    assert url in email.text


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_cart_link_absent_when_none(renderer: EmailRenderer, locale: str, step: int) -> None:
    context = sample_context(FLOW, step, locale)
    url = context["cart"]["recovery_url"]
    context["cart"]["recovery_url"] = None

    email = render(renderer, locale, step, context)

    for part in both_parts(email):
        assert url not in part and esc(url) not in part
        assert "None" not in part


@pytest.mark.parametrize("locale", LOCALES)
def test_step_two_shows_the_coupon(renderer: EmailRenderer, locale: str) -> None:
    context = sample_context(FLOW, 2, locale)
    coupon = context["coupon"]

    email = render(renderer, locale, 2, context)

    for part in both_parts(email):
        assert coupon["code"] in part
        assert esc(coupon["description"]) in part or coupon["description"] in part
        assert esc(coupon["terms"]) in part or coupon["terms"] in part
        assert coupon["expires_at"] in part


@pytest.mark.parametrize("locale", LOCALES)
def test_step_two_without_coupon_promises_none(renderer: EmailRenderer, locale: str) -> None:
    context = sample_context(FLOW, 2, locale)
    code = context["coupon"]["code"]
    context["coupon"] = None

    email = render(renderer, locale, 2, context)

    assert "クーポン" not in email.subject and "coupon" not in email.subject.lower()
    for part in both_parts(email):
        assert code not in part


@pytest.mark.parametrize("locale", LOCALES)
def test_step_three_shows_up_to_three_recommendations_and_the_cart(renderer: EmailRenderer, locale: str) -> None:
    context = sample_context(FLOW, 3, locale)
    extra = {"name": "Fourth pick", "url": "https://shop.example.net/products/fourth", "image_url": None, "price": None}
    context["recommendations"].append(extra)

    email = render(renderer, locale, 3, context)

    for part in both_parts(email):
        for product in context["recommendations"][:3]:
            assert product["name"] in part
            assert product["url"] in part
            assert product["price"] in part
        assert extra["url"] not in part
        for item in context["cart"]["items"]:
            assert item["url"] in part


@pytest.mark.parametrize("locale", LOCALES)
def test_step_three_without_recommendations_still_shows_the_cart(renderer: EmailRenderer, locale: str) -> None:
    context = sample_context(FLOW, 3, locale)
    context["recommendations"] = []

    email = render(renderer, locale, 3, context)

    assert "おすすめ" not in email.subject and "like" not in email.subject
    for item in context["cart"]["items"]:
        assert item["url"] in email.text


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_out_of_stock_items_are_marked_not_dropped(renderer: EmailRenderer, locale: str, step: int) -> None:
    context = sample_context(FLOW, step, locale, items=5)
    sold_out = [item for item in context["cart"]["items"] if item["out_of_stock"]]
    assert sold_out

    email = render(renderer, locale, step, context)

    for part in both_parts(email):
        assert OUT_OF_STOCK[locale] in part
        for item in sold_out:
            assert item["name"] in part
    assert email.text.count(OUT_OF_STOCK[locale]) == len(sold_out)


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
def test_in_stock_cart_shows_no_stock_warning(renderer: EmailRenderer, locale: str, step: int) -> None:
    context = sample_context(FLOW, step, locale, items=3)
    context["cart"]["hidden_count"] = 0  # no out-of-stock item left out either

    email = render(renderer, locale, step, context)

    for part in both_parts(email):
        assert OUT_OF_STOCK[locale] not in part


# --- greeting and optional values -------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_named_customer_is_greeted_by_name(renderer: EmailRenderer, locale: str) -> None:
    context = sample_context(FLOW, 1, locale)

    email = render(renderer, locale, 1, context)

    expected = f"{context['customer']['name']}さま" if locale == "ja" else f"Hello {context['customer']['name']},"
    assert email.text.startswith(expected)
    assert expected in email.html


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("customer", [None, {"name": None}, {"name": ""}])
def test_anonymous_customer_is_greeted_generically(renderer: EmailRenderer, locale: str, customer: object) -> None:
    context = sample_context(FLOW, 1, locale)
    context["customer"] = customer

    email = render(renderer, locale, 1, context)

    assert email.text.startswith(GENERIC_GREETING[locale])
    assert "None" not in email.text and "None" not in email.html


@pytest.mark.parametrize("locale", LOCALES)
def test_missing_optional_values_leave_no_trace(renderer: EmailRenderer, locale: str) -> None:
    context = sample_context(FLOW, 2, locale)
    for item in context["cart"]["items"]:
        item["image_url"] = None
        item["variant"] = None
    context["cart"]["total"] = None
    context["coupon"]["terms"] = None
    context["coupon"]["expires_at"] = None
    context["shop"]["url"] = None
    context["help"] = {
        "shipping_url": "https://shop.example.net/shipping",
        "payment_url": None,
        "faq_url": None,
        "contact_url": None,
    }

    email = render(renderer, locale, 2, context)

    for part in both_parts(email):
        assert "None" not in part
        assert "https://shop.example.net/shipping" in part
    assert "<img" not in email.html
    assert "\n\n\n" not in email.text


# --- escaping -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_values_are_escaped_in_html_and_literal_in_text(
    renderer: EmailRenderer, locale: str, step: int, hostile: str
) -> None:
    context = sample_context(FLOW, step, locale)
    context["customer"]["name"] = hostile
    context["shop"]["name"] = hostile
    context["cart"]["items"][0]["name"] = hostile
    context["cart"]["items"][0]["variant"] = hostile
    context["legal"]["address"] = hostile
    hostile_url = "https://shop.example.jp/p?a=1&b=" + hostile
    context["cart"]["items"][0]["url"] = hostile_url
    context["cart"]["recovery_url"] = hostile_url + "&cart=1"
    if step == 2:
        context["coupon"]["description"] = hostile
    if step == 3:
        context["recommendations"][0]["name"] = hostile

    email = render(renderer, locale, step, context)

    assert hostile not in email.html
    assert "<script>" not in email.html and "<img src=x" not in email.html
    assert esc(hostile) in email.html
    assert f'href="{esc(hostile_url)}"' in email.html
    assert hostile in email.text
    assert hostile_url in email.text
    assert hostile in email.subject  # the subject is plain text, escaped by the MIME layer, not here


def test_subject_collapses_whitespace(renderer: EmailRenderer) -> None:
    context = sample_context(FLOW, 1, "ja")
    context["shop"]["name"] = "ことのは\r\n  商店\t"

    email = render(renderer, "ja", 1, context)

    assert email.subject == "【ことのは 商店 】カートに商品が残っています"


# --- strictness ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("locale", "step"), EVERY_EMAIL)
@pytest.mark.parametrize("key", ["shop", "customer", "cart", "help", "legal", "unsubscribe_url"])
def test_a_missing_context_key_is_a_template_error(renderer: EmailRenderer, locale: str, step: int, key: str) -> None:
    context = sample_context(FLOW, step, locale)
    del context[key]

    with pytest.raises(TemplateError):
        render(renderer, locale, step, context)


@pytest.mark.parametrize(("step", "key"), [(2, "coupon"), (3, "recommendations")])
def test_the_step_specific_key_is_required(renderer: EmailRenderer, step: int, key: str) -> None:
    context = sample_context(FLOW, step, "ja")
    del context[key]

    with pytest.raises(TemplateError):
        render(renderer, "ja", step, context)


@pytest.mark.parametrize("key", ["variant", "out_of_stock", "image_url", "line_total", "url"])
def test_a_missing_item_key_is_a_template_error(renderer: EmailRenderer, key: str) -> None:
    context = sample_context(FLOW, 1, "en")
    del context["cart"]["items"][0][key]

    with pytest.raises(TemplateError):
        render(renderer, "en", 1, context)


def test_an_unknown_flow_or_step_is_a_template_error(renderer: EmailRenderer) -> None:
    with pytest.raises(TemplateError):
        renderer.render("no_such_flow", 1, "ja", sample_context(FLOW, 1, "ja"))
    with pytest.raises(TemplateError):
        renderer.render(FLOW, 9, "ja", sample_context(FLOW, 1, "ja"))
    with pytest.raises(TemplateError):
        renderer.render("../ja", 1, "ja", sample_context(FLOW, 1, "ja"))


def test_an_empty_templates_dir_is_a_template_error(tmp_path: Path) -> None:
    renderer = EmailRenderer(templates_dir=tmp_path)

    assert renderer.available_locales() == []
    with pytest.raises(TemplateError):
        renderer.render(FLOW, 1, "ja", sample_context(FLOW, 1, "ja"))


# --- locales ------------------------------------------------------------------------------------------------------


def test_locale_falls_back_to_the_language_then_japanese(renderer: EmailRenderer) -> None:
    context = sample_context(FLOW, 1, "ja")
    japanese = render(renderer, "ja", 1, context)

    assert render(renderer, "ja-JP", 1, context) == japanese
    assert render(renderer, "ja_JP", 1, context) == japanese
    assert render(renderer, "fr", 1, context) == japanese
    assert render(renderer, "../../etc", 1, context) == japanese


def test_english_is_the_last_fallback(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    renderer = EmailRenderer(
        templates_dir=tmp_path,
        overrides={
            f"en/{FLOW}/step1.subject.j2": "{{ shop.name }}",
            f"en/{FLOW}/step1.html.j2": "<p>{{ shop.name }}</p>",
            f"en/{FLOW}/step1.txt.j2": "{{ shop.name }}",
        },
    )

    email = renderer.render(FLOW, 1, "fr", sample_context(FLOW, 1, "en"))

    assert email.subject == "Northwind Goods"
    assert renderer.available_locales() == ["en"]


# --- overrides ----------------------------------------------------------------------------------------------------


def test_an_override_takes_precedence_and_the_rest_falls_back_to_files() -> None:
    renderer = EmailRenderer(
        overrides={
            f"ja/{FLOW}/step1.subject.j2": "【{{ shop.name }}】お買い忘れはありませんか",
            f"ja/{FLOW}/step1.html.j2": (
                '{% extends "ja/_layout.html.j2" %}{% block content %}<p class="custom">{{ shop.name }}</p>'
                "{% endblock %}"
            ),
        }
    )
    context = sample_context(FLOW, 1, "ja")

    email = renderer.render(FLOW, 1, "ja", context)

    assert email.subject == "【ことのは商店】お買い忘れはありませんか"
    assert '<p class="custom">ことのは商店</p>' in email.html
    assert OPT_OUT_SENTENCE["ja"] in email.html  # the file layout and footer still apply
    assert email.text == EmailRenderer().render(FLOW, 1, "ja", context).text  # no override: the file
    assert renderer.render(FLOW, 2, "ja", sample_context(FLOW, 2, "ja")).subject.startswith("【ことのは商店】")


def test_overrides_are_autoescaped_by_name() -> None:
    renderer = EmailRenderer(overrides={f"en/{FLOW}/step1.html.j2": "<p>{{ customer.name }}</p>"})
    context = sample_context(FLOW, 1, "en")
    context["customer"]["name"] = HOSTILE[0]

    email = renderer.render(FLOW, 1, "en", context)

    assert email.html == f"<p>{esc(HOSTILE[0])}</p>"
    assert HOSTILE[0] in email.text


def test_an_override_for_a_new_locale_makes_it_available() -> None:
    renderer = EmailRenderer(
        overrides={
            f"fr/{FLOW}/step1.subject.j2": "Votre panier chez {{ shop.name }}",
            f"fr/{FLOW}/step1.html.j2": "<p>Bonjour</p>",
            f"fr/{FLOW}/step1.txt.j2": "Bonjour",
        }
    )

    email = renderer.render(FLOW, 1, "fr", sample_context(FLOW, 1, "en"))

    assert "fr" in renderer.available_locales()
    assert email.subject == "Votre panier chez Northwind Goods"
    assert email.text == "Bonjour\n"


@pytest.mark.parametrize(
    "source",
    [
        "{% if %}",  # does not compile
        "{{ nope }}",  # undefined
        "{{ ''.__class__.__mro__ }}",  # reaches for Python internals: the sandbox refuses
        '{% include "ja/_missing.html.j2" %}',  # a missing partial
        "{{ shop.name | no_such_filter }}",
    ],
)
def test_a_broken_override_is_a_template_error(source: str) -> None:
    renderer = EmailRenderer(overrides={f"ja/{FLOW}/step1.html.j2": source})

    with pytest.raises(TemplateError):
        renderer.render(FLOW, 1, "ja", sample_context(FLOW, 1, "ja"))


def test_an_empty_subject_is_a_template_error() -> None:
    renderer = EmailRenderer(overrides={f"ja/{FLOW}/step1.subject.j2": "  \n"})

    with pytest.raises(TemplateError):
        renderer.render(FLOW, 1, "ja", sample_context(FLOW, 1, "ja"))


def test_money_filter_is_available_to_templates() -> None:
    renderer = EmailRenderer(overrides={f"ja/{FLOW}/step1.txt.j2": "{{ '1280' | money('JPY', 'ja') }}"})

    email = renderer.render(FLOW, 1, "ja", sample_context(FLOW, 1, "ja"))

    assert email.text == "1,280円\n"


def test_templates_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CARTRECOVERY_TEMPLATES_DIR", str(tmp_path))

    assert default_templates_dir() == tmp_path
    assert EmailRenderer().templates_dir == tmp_path


def test_the_renderer_is_reusable_across_many_renders(renderer: EmailRenderer) -> None:
    first = render(renderer, "ja", 1, sample_context(FLOW, 1, "ja"))
    for _ in range(20):
        render(renderer, "en", 2, sample_context(FLOW, 2, "en"))

    assert render(renderer, "ja", 1, sample_context(FLOW, 1, "ja")) == first


# --- samples ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("items", [1, 5, 8])
def test_samples_have_every_key_and_the_requested_items(items: int) -> None:
    context = sample_context(FLOW, 1, "ja", items=items)

    assert set(context) == {
        "shop",
        "customer",
        "cart",
        "coupon",
        "recommendations",
        "reassurance",
        "free_shipping",
        "help",
        "legal",
        "unsubscribe_url",
        "flow",
        "step",
        "email_variant",
    }
    assert len(context["cart"]["items"]) == items
    assert len({item["sku"] for item in context["cart"]["items"]}) == items
    assert context["coupon"] is None and context["recommendations"] == []


def test_samples_are_fresh_copies() -> None:
    first = sample_context(FLOW, 2, "en")
    first["coupon"]["code"] = "CHANGED"
    first["legal"]["sender_name"] = "CHANGED"

    second = sample_context(FLOW, 2, "en")

    assert second["coupon"]["code"] != "CHANGED"
    assert second["legal"]["sender_name"] != "CHANGED"


# --- money --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (Decimal(2560), "JPY", "ja", "2,560円"),
        (Decimal(2560), "JPY", "en", "¥2,560"),
        (Decimal(2560), "JPY", "ja-JP", "2,560円"),
        (Decimal("1280.5"), "JPY", "ja", "1,281円"),  # half up
        (Decimal("1279.4"), "JPY", "ja", "1,279円"),
        (Decimal(0), "JPY", "ja", "0円"),
        (Decimal(1234567), "JPY", "ja", "1,234,567円"),
        (Decimal("12.5"), "USD", "en", "$12.50"),
        (Decimal("12.5"), "EUR", "en", "€12.50"),
        (Decimal("12.5"), "GBP", "en", "£12.50"),
        (Decimal("12.5"), "usd", "en", "$12.50"),
        (Decimal("12.5"), "USD", "ja", "$12.50"),
        (Decimal("12.345"), "USD", "en", "$12.35"),  # half up, not banker's
        (Decimal("12.344"), "USD", "en", "$12.34"),
        (Decimal("0.125"), "USD", "en", "$0.13"),
        (Decimal("1234.5"), "USD", "en", "$1,234.50"),
        (Decimal("-5"), "USD", "en", "-$5.00"),
        (Decimal("-0.001"), "USD", "en", "$0.00"),
        (Decimal("12.5"), "XXX", "en", "12.50 XXX"),
        (Decimal("12.5"), "CHF", "ja", "12.50 CHF"),
        (Decimal("1.2345"), "KWD", "en", "1.235 KWD"),
        (Decimal("1000"), "KRW", "en", "₩1,000"),
        (12, "USD", "en", "$12.00"),
    ],
)
def test_format_money(amount: Decimal, currency: str, locale: str, expected: str) -> None:
    assert format_money(amount, currency, locale) == expected


def test_format_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        format_money(12.5, "USD", "en")  # type: ignore[arg-type]


@pytest.mark.parametrize(("currency", "units"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3), ("XXX", 2)])
def test_minor_units(currency: str, units: int) -> None:
    assert minor_units(currency) == units
