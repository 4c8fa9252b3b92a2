"""A/B variants of a step: which shopper gets which, what the email and its records carry, the settings, and
how the template checks and previews render each variant."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from cartrecovery.domain.measurement import Z_95, family_z, variant_for
from cartrecovery.domain.store import DEFAULT_CART_RECOVERY, FlowStep, StoreSettings, settings_shape_problem
from cartrecovery.email.overrides import check_overrides
from cartrecovery.identity import email_hash
from cartrecovery.tokens import verify
from cartrecovery.usecases.report import ab_summary, build_report
from cartrecovery.usecases.run_step import StepOutcome
from cartrecovery.usecases.templates import UnknownVariant, preview_email, step_variants, unsendable_step
from tests.fakes import FakeLedger, World, cart_updated, order_placed, shared_renderer, store_settings

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


def counted(rows: dict[tuple[str, int, str], dict[str, object]], days: tuple[str, ...] = ("2026-12-01",)) -> FakeLedger:
    """A ledger whose counters hold ``rows`` ((flow, step, variant) -> counts), split evenly over ``days``."""
    ledger = FakeLedger()
    for (flow, step, variant), counts in rows.items():
        for day in days:
            ledger.counters[("shop-1", day, flow, step, variant)] = {
                k: v // len(days)
                for k, v in counts.items()  # type: ignore[operator]
            }
    return ledger


def ab_tests(ledger: FakeLedger) -> list[dict[str, object]]:
    return build_report(ledger, "shop-1", START.date(), START.date() + timedelta(days=1))["ab_tests"]  # type: ignore[no-any-return]


def adjusted_interval(hits: int, sent: int, base_hits: int, base_sent: int, z: float) -> tuple[float, float]:
    """Agresti and Caffo's interval, written out here apart from the code under test."""
    p, q = (hits + 1) / (sent + 2), (base_hits + 1) / (base_sent + 2)
    spread = (p * (1 - p) / (sent + 2) + q * (1 - q) / (base_sent + 2)) ** 0.5
    return p - q - z * spread, p - q + z * spread


def test_the_report_sets_each_variant_of_a_step_against_the_control() -> None:
    a = {"sent": 1000, "opened": 400, "clicked": 50, "converted": 10, "revenue": 41600}
    b = {"sent": 1000, "opened": 420, "clicked": 90, "converted": 14, "revenue": 58240}
    ledger = counted({(FLOW, 1, "a"): a, (FLOW, 1, "b"): b, (FLOW, 2, "a"): a}, days=("2026-12-01", "2026-12-02"))

    (test,) = ab_tests(ledger)  # step 2 sent one variant: nothing to compare

    assert (test["flow"], test["step"], test["control"]) == (FLOW, 1, "a")
    assert test["variants"] == [
        {
            "variant": "a",
            **a,
            "open_rate": 0.4,
            "click_rate": 0.05,
            "conversion_rate": 0.01,
            "revenue_per_email": 41.6,
        },
        {
            "variant": "b",
            **b,
            "open_rate": 0.42,
            "click_rate": 0.09,
            "conversion_rate": 0.014,
            "revenue_per_email": 58.24,
        },
    ]
    (comparison,) = test["comparisons"]  # type: ignore[misc]
    assert comparison["variant"] == "b"
    clicks, conversions = comparison["click_rate"], comparison["conversion_rate"]
    assert clicks["difference"] == 0.04
    assert clicks["interval_95"] == [round(x, 4) for x in adjusted_interval(90, 1000, 50, 1000, Z_95)]
    assert clicks["significant"] is True  # 9% against 5% of a thousand emails each
    assert conversions["difference"] == 0.004
    assert conversions["significant"] is False  # 14 orders against 10 could be chance
    lines = ab_summary(test)
    assert lines[0] == "A/B test, cart_recovery step 1 (against a):"
    assert lines[2] == "         b: 1000 sent, 90 clicked (9.0%), 14 converted (1.4%), revenue 58240"
    assert lines[3] == (
        "  b against a: clicks +4.0 points (95% interval +1.8 to +6.2, significant);"
        " conversions +0.4 points (95% interval -0.6 to +1.4, not significant)"
    )


def test_more_variants_widen_each_interval_so_the_set_holds_at_95_percent() -> None:
    counts = {"sent": 500, "opened": 0, "clicked": 40, "converted": 5, "revenue": 0}
    better = {**counts, "clicked": 62}
    two = ab_tests(counted({(FLOW, 1, "a"): counts, (FLOW, 1, "b"): better}))
    four = ab_tests(counted({(FLOW, 1, v): better if v == "b" else counts for v in ("a", "b", "c", "d")}))

    (b_of_two,) = two[0]["comparisons"]  # type: ignore[index]
    b_of_four = four[0]["comparisons"][0]  # type: ignore[index]
    assert [c["variant"] for c in four[0]["comparisons"]] == ["b", "c", "d"]  # type: ignore[index]
    assert family_z(1) == Z_95 and 2.39 < family_z(3) < 2.40  # 0.05 / 3 on each comparison
    assert b_of_two["click_rate"]["interval_95"] == [round(x, 4) for x in adjusted_interval(62, 500, 40, 500, Z_95)]
    assert b_of_four["click_rate"]["interval_95"] == [
        round(x, 4) for x in adjusted_interval(62, 500, 40, 500, family_z(3))
    ]
    # 12.4% against 8% clears the bar of one comparison, not the wider bar of three at once.
    assert b_of_two["click_rate"]["significant"] is True
    assert b_of_four["click_rate"]["significant"] is False


def test_without_an_a_variant_the_first_by_name_is_the_control() -> None:
    counts = {"sent": 10, "opened": 1, "clicked": 1, "converted": 0, "revenue": 0}
    (test,) = ab_tests(counted({(FLOW, 1, "long"): counts, (FLOW, 1, "short"): counts}))

    assert test["control"] == "long"
    assert [c["variant"] for c in test["comparisons"]] == ["short"]  # type: ignore[attr-defined]


def test_a_variant_that_sent_nothing_in_the_days_is_not_compared() -> None:
    counts = {"sent": 10, "opened": 1, "clicked": 1, "converted": 0, "revenue": 0}
    late = {"sent": 0, "opened": 1, "clicked": 0, "converted": 0, "revenue": 0}  # an open of an earlier email

    (test,) = ab_tests(counted({(FLOW, 1, "a"): counts, (FLOW, 1, "b"): late}))

    assert test["variants"][1]["click_rate"] is None  # type: ignore[index]
    assert test["comparisons"][0]["click_rate"] is None  # type: ignore[index]
    assert ab_summary(test)[-1] == (
        "  b against a: clicks not measured until both have sent; conversions not measured until both have sent"
    )


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
