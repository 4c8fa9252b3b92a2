"""What an email says besides the cart, decided on plain values: which products step 3 recommends (related
SKUs through the catalog, then the store's list, then the catalog), which reassurance texts show and when,
the free-shipping nudge, and which items are listed when the store hides out-of-stock ones. Then the same
rules through the step handler (fakes) and the events and settings that feed them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cartrecovery.domain.catalog import Catalog, CatalogProduct, InvalidCatalog, parse_catalog
from cartrecovery.domain.content import (
    CROSS_SELL,
    PICK,
    UPSELL,
    choose_reassurance,
    free_shipping_gap,
    is_first_purchase,
    recommend,
    shown_items,
)
from cartrecovery.domain.events import MAX_RELATED_SKUS, InvalidEvent, Item, parse_event
from cartrecovery.domain.shopify import to_event_body
from cartrecovery.domain.store import Product, Reassurance, StoreSettings
from cartrecovery.email.context import build_context
from cartrecovery.email.samples import sample_cart
from tests.fakes import World, cart_updated, item_body, order_placed, shared_renderer, store_settings

SHOP = "https://shop.example.jp/products/"


def item(sku: str, price: str, *related: str, in_stock: bool = True) -> Item:
    return Item(
        sku=sku,
        name=f"item {sku}",
        url=SHOP + sku.lower(),
        unit_price=Decimal(price),
        quantity=1,
        in_stock=in_stock,
        related_skus=related,
    )


def product(sku: str, price: str | None = None, *, in_stock: bool = True) -> CatalogProduct:
    return CatalogProduct(
        sku=sku,
        name=f"product {sku}",
        url=SHOP + sku.lower(),
        image_url=f"https://shop.example.jp/img/{sku.lower()}.jpg",
        price=None if price is None else Decimal(price),
        in_stock=in_stock,
    )


def pick(slug: str) -> Product:
    return Product(name=f"pick {slug}", url=SHOP + slug, price="1,000円")


def chosen(recommendations: list[Any]) -> list[tuple[str, str, str | None]]:
    return [(r.name, r.kind, r.related_to) for r in recommendations]


# --- recommendations ------------------------------------------------------------------------------------------


def test_related_skus_resolve_through_the_catalog_in_turns_passing_over_what_cannot_be_recommended() -> None:
    latte = item("TEA-001", "1280", "CUP-014", "UNKNOWN", "WHISK-SOLD-OUT", "WHISK")
    cup = item("CUP-014", "3300", "SAUCER", "CUP-PREMIUM")
    catalog = Catalog(
        (
            product("CUP-014", "3300"),  # in the cart already
            product("WHISK-SOLD-OUT", "2000", in_stock=False),
            product("WHISK", "2750"),
            product("SAUCER", "800"),
            product("CUP-PREMIUM", "5500"),
        )
    )

    result = recommend((latte, cup), catalog)

    # Turn 1: the latte's first (in the cart: passed over), the cup's first; turn 2: the latte's unknown SKU,
    # the cup's second; turn 3: a sold-out one; turn 4: the latte's whisk.
    assert chosen(result) == [
        ("product SAUCER", CROSS_SELL, "item CUP-014"),
        ("product CUP-PREMIUM", UPSELL, "item CUP-014"),
        ("product WHISK", UPSELL, "item TEA-001"),
    ]
    assert result[2].price == Decimal("2750") and result[2].image_url == "https://shop.example.jp/img/whisk.jpg"


@pytest.mark.parametrize(
    ("price", "same_currency", "kind"),
    [
        ("1281", True, UPSELL),  # pricier than the item it relates to
        ("1280", True, CROSS_SELL),  # the same price is no step up
        ("500", True, CROSS_SELL),
        (None, True, CROSS_SELL),  # no price to compare
        ("9000", False, CROSS_SELL),  # a cart in another currency than the catalog's prices
    ],
)
def test_a_related_product_is_an_up_sell_only_when_it_costs_more_than_its_item(
    price: str | None, same_currency: bool, kind: str
) -> None:
    (result,) = recommend(
        (item("TEA-001", "1280", "OTHER"),), Catalog((product("OTHER", price),)), same_currency=same_currency
    )

    assert result.kind == kind


def test_the_store_list_then_the_catalog_fill_up_to_three_without_repeats_or_cart_items() -> None:
    cart = (item("TEA-001", "1280", "WHISK"), item("CUP-014", "3300"))
    catalog = Catalog(
        (
            product("CUP-014"),  # in the cart
            product("WHISK", "2750"),  # already chosen as related
            product("GONE", in_stock=False),
            product("TOWEL", "900"),
            product("LAST", "100"),
        )
    )
    picks = (pick("tea-001"), pick("whisk"), pick("kettle"))  # the cart's item, the related one, a new one

    result = recommend(cart, catalog, picks)

    assert chosen(result) == [
        ("product WHISK", UPSELL, "item TEA-001"),
        ("pick kettle", PICK, None),
        ("product TOWEL", PICK, None),
    ]
    assert result[1].price_text == "1,000円" and result[1].price is None


def test_without_related_skus_or_catalog_the_store_list_is_used_as_before() -> None:
    cart = (item("TEA-001", "1280"),)
    picks = tuple(pick(slug) for slug in ("a", "tea-001", "b", "c", "d"))

    assert [r.name for r in recommend(cart, None, picks)] == ["pick a", "pick b", "pick c"]
    assert recommend(cart, None, ()) == []
    assert recommend((item("TEA-001", "1280", "X"),), Catalog(()), ()) == []


# --- reassurance ------------------------------------------------------------------------------------------------

TEXTS = Reassurance(
    warranty="1-year warranty", returns="8-day returns", size_exchange="free size exchange", high_value_threshold=None
)


def reassure(total: str, *, threshold: str | None = "30000", first: bool = False, same_currency: bool = True) -> Any:
    texts = dataclasses.replace(TEXTS, high_value_threshold=None if threshold is None else Decimal(threshold))
    block = choose_reassurance(texts, Decimal(total), same_currency=same_currency, first_purchase=first)
    return None if block is None else (block.warranty, block.returns, block.size_exchange)


def test_a_high_value_cart_gets_warranty_and_returns_from_the_threshold_on() -> None:
    assert reassure("30000") == ("1-year warranty", "8-day returns", None)
    assert reassure("29999") is None
    assert reassure("50000", threshold=None) is None  # no threshold set: no cart is high-value
    assert reassure("50000", same_currency=False) is None  # the threshold is in the store's currency


def test_a_first_purchase_gets_returns_and_size_exchange_and_both_reasons_combine() -> None:
    assert reassure("1000", first=True) == (None, "8-day returns", "free size exchange")
    assert reassure("40000", first=True) == ("1-year warranty", "8-day returns", "free size exchange")


def test_no_block_for_texts_the_store_did_not_write() -> None:
    only_warranty = Reassurance(warranty="1-year warranty", high_value_threshold=Decimal("100"))

    assert choose_reassurance(only_warranty, Decimal("50"), same_currency=True, first_purchase=True) is None
    block = choose_reassurance(only_warranty, Decimal("500"), same_currency=True, first_purchase=True)
    assert block is not None and (block.warranty, block.returns, block.size_exchange) == ("1-year warranty", None, None)
    assert choose_reassurance(Reassurance(), Decimal("500"), same_currency=True, first_purchase=True) is None


@pytest.mark.parametrize(
    ("orders_count", "last_order_at", "first"),
    [
        (0, None, True),
        (0, datetime(2026, 1, 1, tzinfo=UTC), True),  # the event's count wins over what we saw
        (3, None, False),
        (None, None, True),  # no count: no order seen for the address
        (None, datetime(2026, 1, 1, tzinfo=UTC), False),
    ],
)
def test_first_purchase_from_the_events_count_else_from_the_address_record(
    orders_count: int | None, last_order_at: datetime | None, first: bool
) -> None:
    assert is_first_purchase(orders_count, last_order_at) is first


# --- free shipping and out-of-stock items -------------------------------------------------------------------------


def test_free_shipping_gap_only_below_the_threshold_in_the_stores_currency() -> None:
    assert free_shipping_gap(Decimal("5000"), Decimal("2560"), same_currency=True) == Decimal("2440")
    assert free_shipping_gap(Decimal("5000"), Decimal("5000"), same_currency=True) is None
    assert free_shipping_gap(Decimal("5000"), Decimal("7000"), same_currency=True) is None
    assert free_shipping_gap(Decimal("5000"), Decimal("10"), same_currency=False) is None
    assert free_shipping_gap(None, Decimal("10"), same_currency=True) is None


def test_hiding_out_of_stock_items_never_leaves_an_email_without_items() -> None:
    kept, sold_out = item("A", "100"), item("B", "100", in_stock=False)

    assert shown_items((kept, sold_out), hide_out_of_stock=True) == (kept,)
    assert shown_items((kept, sold_out), hide_out_of_stock=False) == (kept, sold_out)
    assert shown_items((sold_out,), hide_out_of_stock=True) == (sold_out,)  # all sold out: shown, marked


# --- the template context and the rendered email ------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def content_settings(**changes: Any) -> StoreSettings:
    texts = Reassurance(
        warranty="茶器は1年間保証いたします。",
        returns="未開封品は8日以内であれば返品を承ります。",
        size_exchange="容量違いへの交換を1回無料で承ります。",
        high_value_threshold=Decimal("10000"),
    )
    return store_settings(**{"reassurance": texts, "free_shipping_threshold": Decimal("5000"), **changes})


def context_for(settings: StoreSettings, step: int, locale: str = "ja", **options: Any) -> dict[str, Any]:
    cart = sample_cart(settings.store_id, "ja", items=4)  # JPY; the fourth item (急須, 8,800円) is out of stock
    return build_context(settings, cart, "cart_recovery", step, locale, "https://mail.example.jp/u/T", NOW, **options)


def test_a_cart_below_the_threshold_is_told_how_much_more_ships_free_in_every_step() -> None:
    settings = content_settings(free_shipping_threshold=Decimal("20000"))
    for step in (1, 2, 3):
        context = context_for(settings, step)
        assert context["free_shipping"] == {"remaining": "3,690円", "threshold": "20,000円"}  # 16,310円 in the cart
        email = shared_renderer().render("cart_recovery", step, "ja", context)
        assert "あと3,690円のお買い上げで送料無料になります" in email.text
        assert "3,690円" in email.html and "送料無料" in email.html

    english = shared_renderer().render("cart_recovery", 1, "en", context_for(settings, 1, "en"))
    assert "Add ¥3,690 more to your order for free shipping" in english.text

    assert context_for(content_settings(), 1)["free_shipping"] is None  # 16,310円 already reaches 5,000円
    other_currency = dataclasses.replace(sample_cart("shop-1", "en"), currency="USD")
    usd = build_context(settings, other_currency, "cart_recovery", 1, "en", "https://u", NOW)
    assert usd["free_shipping"] is None


def test_reassurance_shows_where_it_helps_and_the_enquiry_contact_is_in_every_email() -> None:
    settings = content_settings()
    high_value = context_for(settings, 1)  # 16,310円 reaches 10,000円
    assert high_value["reassurance"]["warranty"] == "茶器は1年間保証いたします。"
    assert high_value["reassurance"]["size_exchange"] is None

    email = shared_renderer().render("cart_recovery", 1, "ja", context_for(settings, 1, first_purchase=True))
    for part in (email.text, email.html):
        assert "茶器は1年間保証いたします。" in part and "容量違いへの交換を1回無料で承ります。" in part
        assert "support@example.jp" in part

    plain = dataclasses.replace(settings, reassurance=Reassurance())
    email = shared_renderer().render("cart_recovery", 1, "ja", context_for(plain, 1, first_purchase=True))
    assert "安心してお買い物" not in email.text and "はじめてご利用" not in email.text
    assert "お問い合わせ先：support@example.jp" in email.text  # the legal footer always has it


def test_a_store_that_hides_out_of_stock_items_lists_the_others_and_says_one_is_left_out() -> None:
    settings = content_settings(hide_out_of_stock=True)
    context = context_for(settings, 1)

    assert [i["name"] for i in context["cart"]["items"]] == [
        "抹茶ラテ",
        "有田焼 マグカップ",
        "今治タオル フェイスタオル",
    ]
    assert context["cart"]["hidden_count"] == 1
    email = shared_renderer().render("cart_recovery", 1, "ja", context)
    assert "南部鉄器 急須" not in email.text and "在庫切れの商品1点は表示しておりません" in email.text

    shown = context_for(content_settings(), 1)  # the default: listed and marked
    assert "南部鉄器 急須" in [i["name"] for i in shown["cart"]["items"]] and shown["cart"]["hidden_count"] == 0


def test_step_three_groups_cross_sells_and_up_sells_under_their_own_wording() -> None:
    cart = dataclasses.replace(
        sample_cart("shop-1", "ja", items=1),  # 抹茶ラテ at 1,280円
        items=(dataclasses.replace(sample_cart("shop-1", "ja", items=1).items[0], related_skus=("WHISK", "BOWL")),),
    )
    catalog = Catalog((product("WHISK", "880"), product("BOWL", "6600")))
    context = build_context(content_settings(), cart, "cart_recovery", 3, "ja", "https://u", NOW, catalog=catalog)

    assert [(r["name"], r["kind"], r["price"]) for r in context["recommendations"]] == [
        ("product WHISK", CROSS_SELL, "880円"),
        ("product BOWL", UPSELL, "6,600円"),
    ]
    ja = shared_renderer().render("cart_recovery", 3, "ja", context)
    assert "よく一緒に購入されている商品" in ja.html and "ワンランク上のおすすめ" in ja.html
    assert "「抹茶ラテ」をご検討中の方に" in ja.text
    english = build_context(content_settings(), cart, "cart_recovery", 3, "en", "https://u", NOW, catalog=catalog)
    en = shared_renderer().render("cart_recovery", 3, "en", english)
    assert "Often bought together" in en.text and "A step up" in en.text


# --- through the step handler -----------------------------------------------------------------------------------

START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
ABANDONED = "2026-12-01T10:00:00+09:00"


class FakeCatalogs:
    def __init__(self, catalog: Catalog | None) -> None:
        self.catalog = catalog
        self.reads = 0

    def get_catalog(self, store_id: str) -> Catalog | None:
        self.reads += 1
        return self.catalog

    def save_catalog(self, store_id: str, catalog: Catalog) -> int:
        self.catalog = catalog
        return 0


def world_with(catalog: Catalog | None = None) -> tuple[World, FakeCatalogs]:
    world = World.create(START, content_settings())
    catalogs = FakeCatalogs(catalog)
    world.run_step.catalogs = catalogs
    return world, catalogs


def run_flow(world: World, days: int = 8) -> list[Any]:
    for hours in range(1, days * 24, 3):
        world.advance_to(START + timedelta(hours=hours))
        world.fire_due()
    return world.mailer.sent


def test_step_three_recommends_the_catalog_products_the_cart_items_name_and_reads_the_catalog_only_then() -> None:
    world, catalogs = world_with(Catalog((product("WHISK", "880"), product("BOWL", "6600"))))
    body = cart_updated(ABANDONED, items=[{**item_body(), "related_skus": ["WHISK", "BOWL", "NOT-IN-CATALOG"]}])
    world.send(body)

    first, _, third = run_flow(world)

    assert "product WHISK" in third.text and "product BOWL" in third.text and "6,600円" in third.html
    assert "よく一緒に購入されている商品" in third.text and "ワンランク上のおすすめ" in third.text
    assert "product WHISK" not in first.text
    assert catalogs.reads == 1  # steps 1 and 2 recommend nothing, so they never read it


def test_the_first_purchase_block_follows_the_events_count_else_the_addresss_orders() -> None:
    size_exchange = "容量違いへの交換を1回無料で承ります。"
    world, _ = world_with()
    world.send(cart_updated(ABANDONED, "c-new", "new@example.jp"))
    world.send(order_placed("2026-11-01T10:00:00+09:00", "c-old", "known@example.jp"))
    world.send(cart_updated(ABANDONED, "c-known", "known@example.jp"))
    counted = cart_updated(ABANDONED, "c-counted", "counted@example.jp")
    counted["customer"]["orders_count"] = 2
    world.send(counted)

    world.advance_to(START + timedelta(hours=3))
    world.fire_due()

    by_address = {email.to: email for email in world.mailer.sent}
    assert size_exchange in by_address["new@example.jp"].text  # no order seen for the address
    assert size_exchange not in by_address["known@example.jp"].text  # it ordered before
    assert size_exchange not in by_address["counted@example.jp"].text  # the shop says it has two orders


# --- what feeds the rules: events, settings, the catalog file ------------------------------------------------------


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(body)
    return {e.path: e.message for e in caught.value.errors}


def test_related_skus_and_orders_count_are_validated_naming_the_path() -> None:
    good = cart_updated(ABANDONED, items=[{**item_body(), "related_skus": ["A", "B", "A"]}, item_body("X")])
    good["customer"]["orders_count"] = 0
    event = parse_event(good)
    assert event.cart is not None and event.cart.items[0].related_skus == ("A", "B")  # repeats dropped
    assert event.cart.items[1].related_skus == ()
    assert event.customer is not None and event.customer.orders_count == 0

    bad = cart_updated(
        ABANDONED,
        items=[
            {**item_body(), "related_skus": "A"},
            {**item_body("B"), "related_skus": ["ok", "", 7]},
            {**item_body("C"), "related_skus": [f"S{i}" for i in range(MAX_RELATED_SKUS + 1)]},
        ],
    )
    bad["customer"]["orders_count"] = -1
    assert errors_of(bad) == {
        "cart.items[0].related_skus": "must be an array of SKU strings",
        "cart.items[1].related_skus[1]": "must be a non-empty string",
        "cart.items[1].related_skus[2]": "must be a non-empty string",
        "cart.items[2].related_skus": f"must have at most {MAX_RELATED_SKUS} SKUs",
        "customer.orders_count": "must be an integer from 0 to 1,000,000",
    }
    for wrong in ("3", True, 1.5):
        body = cart_updated(ABANDONED)
        body["customer"]["orders_count"] = wrong
        assert list(errors_of(body)) == ["customer.orders_count"]


def test_stores_saved_before_these_settings_keep_working_and_new_ones_round_trip() -> None:
    old = {"store_id": "old-shop", "name": "Old", "sender_email": "a@example.jp"}
    settings = StoreSettings.from_dict(old)
    assert settings.reassurance == Reassurance() and settings.free_shipping_threshold is None
    assert settings.hide_out_of_stock is False

    new = StoreSettings.from_dict(
        {
            **old,
            "reassurance": {"warranty": " 1 year ", "high_value_threshold": "30,000"},
            "free_shipping_threshold": 49.5,
            "hide_out_of_stock": True,
        }
    )
    assert new.reassurance.warranty == "1 year" and new.reassurance.high_value_threshold == Decimal("30000")
    assert new.free_shipping_threshold == Decimal("49.5") and new.hide_out_of_stock
    assert StoreSettings.from_dict(new.to_dict()) == new
    for bad in ("free", -5, 0, True):
        with pytest.raises(ValueError, match="free_shipping_threshold"):
            StoreSettings.from_dict({**old, "free_shipping_threshold": bad})


def test_a_catalog_file_is_read_from_csv_or_json_and_every_bad_row_is_named() -> None:
    csv_text = (
        "\ufeffSKU,name,url,image_url,price,in_stock,vendor\n"
        'WHISK,"茶筅, 百本立",https://shop.example.jp/p/whisk,,"2,750",yes,Kyoto\n'
        "\n"
        "BOWL,抹茶碗,https://shop.example.jp/p/bowl,https://shop.example.jp/i/bowl.jpg,6600,false,Arita\n"
    )
    whisk, bowl = parse_catalog(csv_text.encode("utf-8"), "catalog.csv")
    assert (whisk.sku, whisk.name, whisk.price, whisk.image_url, whisk.in_stock) == (
        "WHISK",
        "茶筅, 百本立",
        Decimal("2750"),
        None,
        True,
    )
    assert bowl.in_stock is False and bowl.price == Decimal("6600")

    (from_json,) = parse_catalog(b'[{"sku": 123, "name": "n", "url": "https://s.example/p", "price": 12.50}]', "x")
    assert from_json.sku == "123" and from_json.price == Decimal("12.50")

    bad_csv = (
        "sku,name,url,price\n"
        "A,ok,https://s.example/a,100\n"
        "B,plain http,http://s.example/b,100\n"
        "A,again,https://s.example/a2,100\n"
        ",no sku,https://s.example/c,ten\n"
    )
    with pytest.raises(InvalidCatalog) as caught:
        parse_catalog(bad_csv.encode(), "catalog.csv")
    assert caught.value.problems == [
        "row 3 (sku B): url must be an absolute https URL, got 'http://s.example/b'",
        "row 4 (sku A): sku 'A' is already on row 2",
        "row 5: sku is required",
        "row 5: price must be a number such as 3240 or 12.50, got 'ten'",
    ]
    with pytest.raises(InvalidCatalog, match=r"\[1\] \(sku B\): name is required"):
        parse_catalog(
            b'[{"sku": "A", "name": "a", "url": "https://s.example/a"}, {"sku": "B", "url": "https://s.example/b"}]'
        )
    with pytest.raises(InvalidCatalog, match="row 1: the header has no url column"):
        parse_catalog(b"sku,name\nA,a\n", "catalog.csv")


def test_a_shopify_checkout_tells_a_first_purchase_by_its_customers_orders_count() -> None:
    checkout = {
        "token": "tok-1",
        "updated_at": "2026-12-01T10:00:00+09:00",
        "email": "taro@example.jp",
        "currency": "JPY",
        "total_price": "1280",
        "abandoned_checkout_url": "https://shop.example.jp/checkouts/tok-1/recover",
        "line_items": [{"title": "抹茶ラテ", "sku": "TEA-001", "price": "1280", "quantity": 1}],
        "customer": {"id": 7, "orders_count": 0},
    }
    first = parse_event(to_event_body("checkouts/update", checkout, "shop.example.jp"))
    assert first.customer is not None and first.customer.orders_count == 0

    for unknown in (None, "3", -1):  # missing (newer API versions) or not a count: not known
        body = to_event_body("checkouts/update", {**checkout, "customer": {"id": 7, "orders_count": unknown}}, None)
        event = parse_event(body)
        assert event.customer is not None and event.customer.orders_count is None
