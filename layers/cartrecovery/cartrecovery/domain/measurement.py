"""Attribution, A/B variants and holdout groups: how an order is credited, and how a flow's effect is measured.

An order is credited to the email it followed (within ``ATTRIBUTION_WINDOW`` when matched by address).
That says which email an order came after, not whether the email caused it: some shoppers come back anyway.
A store that sets ``holdout_percent`` has that share of the shoppers who enter a flow get none of its
emails. Every entry (a cart that reached the flow's first step and would have been sent it) is recorded
with its group, and each group's carts are credited with the orders placed within the same window after
entry, by the same rules. The difference between the groups' conversion rates is the flow's lift.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the tracking function imports this module and needs no store settings
    from cartrecovery.domain.store import Flow

# An order matched by address (no cart named) is credited to an email sent at most this long before it.
ATTRIBUTION_WINDOW = timedelta(days=7)

TREATED = "treated"
HOLDOUT = "holdout"
# Entries are counted in report rows of their own, apart from the emails' steps (which start at 1).
ENTRY_STEP = 0
ENTERED = "entered"  # the counter of carts that entered a flow (an entry row's "sent")
ENTRY_PREFIX = "entry#"
Z_95 = 1.959964


def group_for(email_hash: str, flow: str, percent: int) -> str:
    """The shopper's group in this flow. Drawn from the salted address hash, so one shopper stays in the same
    group for every cart (a held-out shopper never gets the flow's emails, and a treated one always does),
    and apart per flow. ``percent`` of 100 buckets are held out."""
    if percent <= 0:
        return TREATED
    bucket = int.from_bytes(hashlib.sha256(f"{email_hash}|{flow}".encode()).digest()[:8], "big") % 100
    return HOLDOUT if bucket < percent else TREATED


def variant_for(email_hash: str, flow: str, step: int, variants: tuple[str, ...]) -> str:
    """The A/B variant of a step this shopper gets: evenly drawn from the address, so one shopper sees the same
    variant of the step for every cart, and apart from the holdout draw and per step."""
    if len(variants) == 1:
        return variants[0]
    digest = hashlib.sha256(f"{email_hash}|{flow}|{step}|variant".encode()).digest()
    return variants[int.from_bytes(digest[:8], "big") % len(variants)]


def entry_id(store_id: str, flow: str, cart_id: str) -> str:
    """The ledger key of a cart's entry into a flow: one per cart and flow, so recording it again is a no-op.
    Hashed, so that no cart id (chosen by the shop) can make two entries' keys meet."""
    digest = hashlib.sha256(f"{store_id}|{flow}|{cart_id}".encode()).hexdigest()[:40]
    return f"{ENTRY_PREFIX}{store_id}#{digest}"


def is_entry(message_id: str) -> bool:
    return message_id.startswith(ENTRY_PREFIX)


def order_once(message_id: str, order_id: str) -> str:
    """What makes an order credit a single email, and apart from that a single entry: an order converts
    both the email it followed and its cart's entry, each once."""
    return f"entry:{order_id}" if is_entry(message_id) else order_id


def measurement_window(flow: Flow) -> timedelta:
    """How long after entry an order counts for the entry's group: the flow's emails span (first step to
    last) plus the attribution window, so a treated cart's last email gets the same window as any email."""
    delays = [step.delay_seconds for step in flow.steps] or [0]
    return timedelta(seconds=max(delays) - min(delays)) + ATTRIBUTION_WINDOW


@dataclass(frozen=True)
class GroupFigures:
    carts: int
    converted: int
    revenue: Decimal

    @property
    def rate(self) -> float | None:
        return self.converted / self.carts if self.carts else None

    @property
    def revenue_per_cart(self) -> Decimal | None:
        return self.revenue / self.carts if self.carts else None


@dataclass(frozen=True)
class Difference:
    """One rate minus another, with a confidence interval; ``significant`` when the interval leaves out zero."""

    points: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def rate_difference(hits: int, trials: int, base_hits: int, base_trials: int, z: float = Z_95) -> Difference | None:
    """``hits / trials`` minus ``base_hits / base_trials``, and its interval at ``z`` (1.96: 95%). None until both
    sides have trials. The interval is Agresti and Caffo's: the normal approximation of the difference of two
    proportions after adding one success and one failure to each side. The plain (Wald) interval counts a side
    with no conversions as certain: 5 of 50 against 0 of 10 reads "significant", which ten carts cannot show;
    the adjusted one stays honest for small groups and rates near 0, as an email's are."""
    if not trials or not base_trials:
        return None
    adjusted, base = (hits + 1) / (trials + 2), (base_hits + 1) / (base_trials + 2)
    spread = math.sqrt(adjusted * (1 - adjusted) / (trials + 2) + base * (1 - base) / (base_trials + 2))
    centre = adjusted - base
    return Difference(hits / trials - base_hits / base_trials, centre - z * spread, centre + z * spread)


def family_z(comparisons: int) -> float:
    """The ``z`` of 95% intervals that hold together over ``comparisons`` (Bonferroni): with three variants
    set against a control, each at 95%, one of the three would read "significant" by chance far more often
    than one time in twenty."""
    if comparisons <= 1:
        return Z_95
    from statistics import NormalDist  # the report needs it, not the functions that import this module

    return NormalDist().inv_cdf(1 - 0.05 / (2 * comparisons))


@dataclass(frozen=True)
class Lift(Difference):
    """Treated minus held-out conversion rate (``rate_difference``), and the revenue that made."""

    incremental_revenue: Decimal  # (treated - held-out revenue per cart) x treated carts


def lift(treated: GroupFigures, holdout: GroupFigures) -> Lift | None:
    """None until both groups have carts: with one side empty there is nothing to compare."""
    measured = rate_difference(treated.converted, treated.carts, holdout.converted, holdout.carts)
    if measured is None:
        return None
    assert treated.revenue_per_cart is not None and holdout.revenue_per_cart is not None
    incremental = (treated.revenue_per_cart - holdout.revenue_per_cart) * treated.carts
    return Lift(measured.points, measured.low, measured.high, incremental)
