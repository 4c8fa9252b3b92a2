"""A/B variants of a step: which shopper gets which, what the email and its records carry, the settings, and
how the template checks and previews render each variant."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from cartrecovery.domain.measurement import variant_for
from cartrecovery.domain.store import DEFAULT_CART_RECOVERY, FlowStep, StoreSettings, settings_shape_problem
from cartrecovery.email.overrides import check_overrides
from cartrecovery.identity import email_hash
from cartrecovery.tokens import verify
from cartrecovery.usecases.report import build_report
from cartrecovery.usecases.run_step import StepOutcome
from cartrecovery.usecases.templates import UnknownVariant, preview_email, step_variants, unsendable_step
from tests.fakes import World, cart_updated, order_placed, shared_renderer, store_settings

START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
ABANDONED = "2026-12-01T10:00:00+09:00"
FLOW = "cart_recovery"


def ab_world(variants: tuple[str, ...] = ("a", "b")) -> World:
    steps = (dataclasses.replace(DEFAULT_CART_RECOVERY.steps[0], variants=variants), *DEFAULT_CART_RECOVERY.steps[1:])
    flow = dataclasses.replace(DEFAULT_CART_RECOVERY, steps=steps)
    return World.create(START, store_settings(flows={FLOW: flow}))


def abandon_and_fire_step_one(world: World, emails: list[str]) -> list[StepOutcome]:
    """Each address abandons its own cart (``c-<n>``), and step 1 falls due for all of them."""
    for n, email in enumerate(emails):
        world.send(cart_updated(ABANDONED, cart_id=f"c-{n}", email=email))
    world.advance_to(START + timedelta(hours=2))
    return world.fire_due()


def step_one_variant(world: World, email: str) -> str:
    """The variant of step 1 (listed as a and b) the store's salt draws for ``email``."""
    return variant_for(email_hash(world.store.salt, email), FLOW, 1, ("a", "b"))


def test_variants_are_drawn_evenly_per_address_and_step() -> None:
    hashes = [email_hash("salt", f"s{n}@example.jp") for n in range(9000)]
    drawn = Counter(variant_for(h, FLOW, 1, ("a", "b", "c")) for h in hashes)
    assert set(drawn) == {"a", "b", "c"}
    assert all(2820 <= n <= 3180 for n in drawn.values())  # 3,000 each within four standard deviations (45)
    # The draw is pinned: changing it would switch running shoppers' variants.
    assert "".join(variant_for(h, FLOW, 1, ("a", "b")) for h in hashes[:8]) == "babaaaba"
    assert [variant_for(h, FLOW, 1, ("a", "b")) for h in hashes[:100]] != [
        variant_for(h, FLOW, 2, ("a", "b")) for h in hashes[:100]
    ]
    assert {variant_for(h, FLOW, 1, ("a",)) for h in hashes[:100]} == {"a"}


def test_each_shopper_gets_their_variant_in_the_subject_the_tags_the_record_and_the_link() -> None:
    world = ab_world()
    emails = [f"shopper{n}@example.jp" for n in range(12)]
    outcomes = abandon_and_fire_step_one(world, emails)
    assert [o.action for o in outcomes] == ["sent"] * 12

    subjects = {
        "a": "【Matcha Shop】カートに商品が残っています",
        "b": "【Matcha Shop】お買い忘れはありませんか？カートの商品をお取り置き中です",
    }
    for email in world.mailer.sent:
        expected = step_one_variant(world, email.to)
        assert email.tags["variant"] == expected
        assert email.subject == subjects[expected]
        token = email.headers["List-Unsubscribe"].strip("<>").rsplit("/u/", 1)[1]
        verified = verify(token, world.store.token_key)
        assert verified is not None and verified.variant == expected
    assert {e.tags["variant"] for e in world.mailer.sent} == {"a", "b"}
    for n, email in enumerate(emails):
        record = world.cart(f"c-{n}").step_record(FLOW, 1)
        assert record is not None
        assert record.variant == step_one_variant(world, email)

    # Step 2 lists no variants: every shopper gets its only one.
    world.advance_to(datetime.fromisoformat(ABANDONED) + timedelta(days=3))
    world.fire_due()
    assert {e.tags["variant"] for e in world.mailer.sent[12:]} == {"a"}


def test_the_report_counts_each_variant_in_its_own_row() -> None:
    world = ab_world()
    emails = [f"buyer{n}@example.jp" for n in range(10)]
    abandon_and_fire_step_one(world, emails)
    world.send(order_placed("2026-12-01T15:00:00+09:00", cart_id="c-0", email=emails[0], total=3000))
    bought = step_one_variant(world, emails[0])

    report = build_report(world.ledger, "shop-1", START.date(), START.date())

    rows = {row["variant"]: row for row in report["rows"]}
    drawn = Counter(step_one_variant(world, e) for e in emails)
    assert {v: rows[v]["sent"] for v in rows} == dict(drawn)
    assert rows[bought]["converted"] == 1 and rows[bought]["revenue"] == 3000
    assert report["totals"]["sent"] == 10


def test_step_variants_are_checked_and_kept() -> None:
    base = {"store_id": "s", "name": "n", "sender_email": "a@example.jp"}

    def flows(variants: object) -> dict[str, object]:
        return {**base, "flows": {FLOW: {"steps": [{"step": 1, "delay_seconds": 7200, "variants": variants}]}}}

    assert settings_shape_problem(flows(["a", "b"])) is None
    assert "1 to 4 variant names" in (settings_shape_problem(flows([])) or "")
    assert "1 to 4 variant names" in (settings_shape_problem(flows(["a", "b", "c", "d", "e"])) or "")
    assert "1 to 4 variant names" in (settings_shape_problem(flows("ab")) or "")
    assert "is not a variant name" in (settings_shape_problem(flows(["a", "B#1"])) or "")
    assert "is not a variant name" in (settings_shape_problem(flows(["a", 2])) or "")
    assert "twice" in (settings_shape_problem(flows(["a", "a"])) or "")

    settings = StoreSettings.from_dict(flows(["a", "subject-2"]))
    assert settings.flows[FLOW].steps[0] == FlowStep(1, 7200, ("a", "subject-2"))
    assert settings.to_dict()["flows"][FLOW]["steps"] == [
        {"step": 1, "delay_seconds": 7200, "variants": ["a", "subject-2"]}
    ]
    assert StoreSettings.from_dict(settings.to_dict()) == settings
    plain = StoreSettings.from_dict(base).to_dict()["flows"][FLOW]["steps"][0]
    assert "variants" not in plain  # a store without a test shows its steps as before


SUBJECT = "ja/cart_recovery/step1.subject.j2"
# Compiles, and variant a renders: only a shopper drawn into b would meet the missing filter, at send time.
BROKEN_B = {SUBJECT: '{% if email_variant == "b" %}{{ shop.name | shout }}{% else %}【{{ shop.name }}】{% endif %}'}


def test_the_template_check_renders_every_variant_a_step_lists_and_names_it() -> None:
    store = ab_world().store

    assert check_overrides(BROKEN_B) == []  # a store without variants never sends b: nothing to report
    [problem] = check_overrides(BROKEN_B, variants=step_variants(store.settings))

    assert str(problem) == f"{SUBJECT}:1: TemplateRuntimeError: No filter named 'shout' found. (variant b)"


def test_a_problem_of_every_variant_names_them_all_and_a_syntax_error_names_none() -> None:
    store = ab_world().store
    broken = {SUBJECT: "{{ shop.slogan }}", "ja/cart_recovery/step1.txt.j2": "{% if cart %}"}

    problems = [str(p) for p in check_overrides(broken, variants=step_variants(store.settings))]

    assert problems == [
        "ja/cart_recovery/step1.txt.j2:1: Unexpected end of template. Jinja was looking for the following tags: "
        "'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.",
        f"{SUBJECT}:1: UndefinedError: 'dict object' has no attribute 'slogan' (variants a, b)",
    ]
    # Without variants, the same report as ever.
    assert [str(p) for p in check_overrides(broken)] == [p.removesuffix(" (variants a, b)") for p in problems]


def test_settings_that_list_a_variant_whose_branch_breaks_are_refused_naming_it() -> None:
    store = ab_world().store

    problem = unsendable_step(store, BROKEN_B, START)

    assert problem is not None
    assert problem.startswith("flows.cart_recovery step 1 variant b cannot be sent (ja): ")
    assert "No filter named 'shout'" in problem
    plain = ab_world(variants=("a",)).store
    assert unsendable_step(plain, BROKEN_B, START) is None


def test_a_preview_shows_the_chosen_variant_and_refuses_one_the_step_does_not_list() -> None:
    store = ab_world().store

    def subject(variant: str | None, step: int = 1) -> str:
        preview = preview_email(
            store,
            None,
            step,
            now=START,
            public_base_url="https://r.example",
            renderer=shared_renderer(),
            variant=variant,
        )
        assert preview.variants == (("a", "b") if step == 1 else ("a",))
        return preview.email.subject

    assert subject(None) == subject("a") == "【Matcha Shop】カートに商品が残っています"
    assert subject("b") == "【Matcha Shop】お買い忘れはありませんか？カートの商品をお取り置き中です"
    with pytest.raises(UnknownVariant, match="cart_recovery step 1 has no variant 'c'; its variants: a, b"):
        subject("c")
    with pytest.raises(UnknownVariant, match="cart_recovery step 2 has no variant 'b'; its variants: a"):
        subject("b", step=2)


def test_a_preview_defaults_to_the_steps_first_variant() -> None:
    """A step listing b and c never sends a: its preview shows b unless told otherwise."""
    store = ab_world(variants=("b", "c")).store

    preview = preview_email(store, None, 1, now=START, public_base_url="https://r.example", renderer=shared_renderer())

    assert preview.variant == "b" and "お取り置き中" in preview.email.subject


def test_a_preview_without_a_store_takes_any_variant_name() -> None:
    def preview(variant: str) -> str:
        shown = preview_email(None, None, 1, now=START, public_base_url="https://r.example", variant=variant)
        return shown.email.subject

    assert "お取り置き中" in preview("b") and "お取り置き中" not in preview("winter-2")
    with pytest.raises(UnknownVariant, match="'B#' is not a variant name"):
        preview("B#")
