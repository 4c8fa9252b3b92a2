"""A store's own email templates: upload (checked first, all or nothing), show, reset; and previews.

An upload replaces the store's whole set of overrides with the folder's files; what the folder does not
contain comes from the shipped templates. Nothing is stored unless every step of every flow in every
locale the folder touches renders with the sample data, as every A/B variant the store lists for the step
(``email/overrides.py``).

A preview renders one step the way a send would (the store's settings and overrides, the shopper's locale
with the same fallback, one of the step's variants) for a sample cart and shopper.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cartrecovery.clock import Clock, isoformat
from cartrecovery.domain.store import (
    CART_RECOVERY,
    DEFAULT_VARIANTS,
    POOL_COUPON,
    VARIANT_NAME,
    Store,
    StoreSettings,
)
from cartrecovery.email.context import build_context, choose_locale
from cartrecovery.email.overrides import (
    TEMPLATE_NAME,
    InvalidOverrides,
    check_overrides,
    override_bytes,
)
from cartrecovery.email.render import EmailRenderer, RenderedEmail, TemplateError
from cartrecovery.email.samples import SAMPLE_POOL_CODE, sample_cart, sample_context
from cartrecovery.ports import StoreRepository, TemplateOverrides, UnknownStore

PREVIEW_UNSUBSCRIBE_PATH = "/u/PREVIEW"  # stands in for a shopper's signed unsubscribe link
CHECK_BASE_URL = "https://cartrecovery.invalid"  # links of a render that is only checked, never sent


@dataclass(frozen=True)
class Uploaded:
    names: list[str]
    size: int  # bytes stored
    warnings: list[str]  # files stored that no send uses (a flow or step the store does not have)


@dataclass(frozen=True)
class Preview:
    flow: str
    step: int
    locale: str  # the templates' locale actually used (after fallback)
    email: RenderedEmail
    variant: str  # the A/B variant shown (``email_variant``)
    variants: tuple[str, ...]  # every variant the step lists (``("a",)`` for a step without an A/B test)


class UnknownVariant(ValueError):
    """A preview asked for a variant the step does not list; the message names the ones it does."""


def upload_templates(
    stores: StoreRepository,
    templates: TemplateOverrides,
    store_id: str,
    overrides: Mapping[str, str],
    clock: Clock,
    templates_dir: Path | None = None,
) -> Uploaded:
    """Check ``overrides`` and, when every render passes, make them the store's templates.

    Raises ``UnknownStore``, or ``InvalidOverrides`` (each problem with file and line) with nothing stored."""
    store = stores.get(store_id)
    if store is None:
        raise UnknownStore(store_id)
    problems = check_overrides(overrides, templates_dir, step_variants(store.settings))
    if problems:
        raise InvalidOverrides(problems)
    templates.save_templates(store_id, dict(overrides), isoformat(clock.now()))
    return Uploaded(sorted(overrides), override_bytes(overrides), unused_files(overrides, store.settings))


def step_variants(settings: StoreSettings) -> dict[tuple[str, int], tuple[str, ...]]:
    """The A/B variants of each (flow, step) of the store that lists its own; every other step sends ``a``."""
    return {
        (flow.name, step.step): step.variants
        for flow in settings.flows.values()
        for step in flow.steps
        if step.variants != DEFAULT_VARIANTS
    }


def listed_variants(store: Store | None, flow: str, step: int) -> tuple[str, ...]:
    """The variants a shopper may get at ``flow`` step ``step`` of ``store``: ``("a",)`` for a step that
    lists none, a step the store does not send, or no store (the sample shop)."""
    found = store.settings.flows.get(flow) if store else None
    listed = found.get(step) if found else None
    return listed.variants if listed else DEFAULT_VARIANTS


def unused_files(overrides: Mapping[str, str], settings: StoreSettings) -> list[str]:
    """A warning for each step file of a flow or step the store does not send (often a typo in the folder)."""
    warnings = []
    for name in sorted(overrides):
        match = TEMPLATE_NAME.match(name)
        if not match or not match["flow"]:
            continue
        flow = settings.flows.get(match["flow"])
        if flow is None:
            known = ", ".join(sorted(settings.flows)) or "none"
            warnings.append(f"{name}: the store has no flow {match['flow']!r} (its flows: {known}); not used")
        elif flow.get(int(match["step"])) is None:
            steps = ", ".join(str(s.step) for s in flow.steps)
            warnings.append(f"{name}: flow {flow.name!r} has no step {match['step']} (its steps: {steps}); not used")
    return warnings


def preview_email(
    store: Store | None,
    overrides: Mapping[str, str] | None,
    step: int,
    *,
    flow: str = CART_RECOVERY,
    locale: str | None = None,
    now: datetime,
    public_base_url: str,
    renderer: EmailRenderer | None = None,
    variant: str | None = None,
) -> Preview:
    """``flow`` step ``step`` as a shopper with ``locale`` (default: the store's) would get it, for a sample
    cart. With ``store``, its settings (name, legal items, coupon, recommendations, help links) fill the
    context as on a send; without, the sample shop does.

    ``variant``: the A/B variant to show (default: the step's first, ``a`` unless it lists others). With a
    store it must be one the step lists; without, any variant name will do (the sample shop lists none, and a
    marketer may draft a variant before listing it). Raises ``UnknownVariant`` or ``TemplateError``."""
    listed = listed_variants(store, flow, step)
    if variant is None:
        variant = listed[0]
    elif store is not None and variant not in listed:
        raise UnknownVariant(f"{flow} step {step} has no variant {variant!r}; its variants: {', '.join(listed)}")
    elif store is None and not VARIANT_NAME.match(variant):
        raise UnknownVariant(f"{variant!r} is not a variant name (a lower-case letter, then up to 15 a-z, 0-9, _ or -)")
    renderer = (renderer or EmailRenderer()).with_overrides(overrides)
    unsubscribe_url = public_base_url.rstrip("/") + PREVIEW_UNSUBSCRIBE_PATH
    if store is None:
        chosen = choose_locale(locale, renderer.available_locales(), "ja")
        context = sample_context(flow, step, chosen)
        context["unsubscribe_url"] = unsubscribe_url
        context["email_variant"] = variant
    else:
        settings = store.settings
        chosen = choose_locale(locale or settings.locale, renderer.available_locales(), settings.locale)
        cart = sample_cart(store.store_id, chosen)
        # A pool store's shoppers each get a code of their own: show one like it (the pool is not touched).
        pool = settings.coupon is not None and settings.coupon.kind == POOL_COUPON
        context = build_context(
            settings,
            cart,
            flow,
            step,
            chosen,
            unsubscribe_url,
            now,
            coupon_code=SAMPLE_POOL_CODE if pool else None,
            first_purchase=True,  # the sample shopper has no order yet: show what a new shopper sees
            email_variant=variant,
        )
    return Preview(flow, step, chosen, renderer.render(flow, step, chosen, context), variant, listed)


def unsendable_step(
    store: Store, overrides: Mapping[str, str] | None, now: datetime, renderer: EmailRenderer | None = None
) -> str | None:
    """Why a step of the store's cart-recovery flow could not be sent with these settings (a step number
    with no templates, a template that needs a setting the store has not got, a variant whose branch of a
    template breaks), for a sample cart in every locale the templates have and every variant the step lists;
    None when every step renders. A send that cannot render fails on every retry and ends in the dead-letter
    queue, so settings are checked before they are saved."""
    flow = store.settings.flows.get(CART_RECOVERY)
    if flow is None or not flow.enabled:
        return None
    renderer = (renderer or EmailRenderer()).with_overrides(overrides)
    for locale in renderer.available_locales():
        for step in flow.steps:
            for variant in step.variants:
                try:
                    preview_email(
                        store,
                        None,
                        step.step,
                        locale=locale,
                        now=now,
                        public_base_url=CHECK_BASE_URL,
                        renderer=renderer,
                        variant=variant,
                    )
                except TemplateError as exc:
                    # Named only for a step that lists variants: every other step reads as it always did.
                    which = f" variant {variant}" if step.variants != DEFAULT_VARIANTS else ""
                    return f"flows.{CART_RECOVERY} step {step.step}{which} cannot be sent ({locale}): {exc}"
    return None
