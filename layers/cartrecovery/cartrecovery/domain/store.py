"""A store's settings: who sends, the legal display items, time zone, quiet hours and the flows' steps.

Settings are plain data kept in the stores table; ``StoreSettings.from_dict`` fills every default so a store
created with only a name and a sender already runs the default cart-recovery flow.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from cartrecovery.domain.events import (
    NOT_CURRENCY,
    NOT_EMAIL,
    NOT_HTTP_URL,
    NOT_LANGUAGE_TAG,
    NOT_TIME_ZONE,
    has_control_characters,
    is_currency_code,
    is_email_address,
    is_http_url,
    is_language_tag,
    is_time_zone,
    split_url,
)

STORE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}\Z")
_HH_MM = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
_QUIET_HOURS = re.compile(rf"\s*(?P<start>{_HH_MM})\s*-\s*(?P<end>{_HH_MM})\s*")
CART_RECOVERY = "cart_recovery"
NOT_ONE_LINE = "must be one line of text, without line breaks or control characters"


# An A/B test's variant names: they become part of counter keys and unsubscribe links.
VARIANT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,15}\Z")
DEFAULT_VARIANTS = ("a",)
MAX_VARIANTS = 4


@dataclass(frozen=True)
class FlowStep:
    step: int
    delay_seconds: int
    # The step's A/B variants: each shopper gets one, drawn from the address (domain/measurement.py), and
    # the templates tell them apart by ``email_variant``; the report counts each in its own row.
    variants: tuple[str, ...] = DEFAULT_VARIANTS


@dataclass(frozen=True)
class Flow:
    name: str
    steps: tuple[FlowStep, ...]
    enabled: bool = True

    def get(self, step: int) -> FlowStep | None:
        return next((s for s in self.steps if s.step == step), None)

    def after(self, step: int) -> FlowStep | None:
        return next((s for s in self.steps if s.step > step), None)


DEFAULT_CART_RECOVERY = Flow(
    name=CART_RECOVERY,
    steps=(FlowStep(1, 2 * 3600), FlowStep(2, 3 * 86400), FlowStep(3, 7 * 86400)),
)


@dataclass(frozen=True)
class QuietHours:
    """A daily window (local time of the recipient) in which nothing is sent; may cross midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        # Exactly HH:MM-HH:MM: time.fromisoformat also takes "21" and "21:00:30", which were shown back as
        # something else ("21:00", the seconds dropped).
        match = _QUIET_HOURS.fullmatch(text)
        if match is None:
            raise ValueError(f"quiet_hours must be two times of day as HH:MM-HH:MM, got {text[:40]!r}")
        return cls(time.fromisoformat(match["start"]), time.fromisoformat(match["end"]))

    def __str__(self) -> str:
        return f"{self.start.strftime('%H:%M')}-{self.end.strftime('%H:%M')}"

    def window_end(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """If ``moment`` falls inside the window, the instant it ends (aware); otherwise None."""
        if self.start == self.end:
            return None
        local = moment.astimezone(zone)
        now = local.time()
        crosses_midnight = self.start > self.end
        inside = (now >= self.start or now < self.end) if crosses_midnight else self.start <= now < self.end
        if not inside:
            return None
        end_day = local.date()
        if crosses_midnight and now >= self.start:
            end_day = end_day + timedelta(days=1)
        return first_instant_at(datetime.combine(end_day, self.end), zone, after=moment)


def first_instant_at(wall: datetime, zone: ZoneInfo, *, after: datetime) -> datetime:
    """The first instant (in UTC) after ``after`` at which the clocks of ``zone`` show ``wall`` or later.

    Around a clock change a wall time is not one instant: in the hour repeated when clocks go back it is two
    (the first one may have passed already), and in the hour skipped when they go forward it is none, so
    the clocks first show a time past it at the change itself."""
    first, second = (wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))
    if first.astimezone(zone).replace(tzinfo=None) == wall:  # the wall time exists: once, or twice
        # In UTC: an instant in a repeated hour (fold=1) is never == to one in another zone (PEP 495).
        return next((t for t in sorted({first, second}) if t > after), max(first, second))
    # Skipped: fold 0 reads it with the offset before the change (the later instant), fold 1 with the one
    # after (the earlier). The change lies between, on a whole second: find it.
    low, high = int(min(first, second).timestamp()), int(max(first, second).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


@dataclass(frozen=True)
class Legal:
    """特定電子メール法 display items shown in every marketing email."""

    sender_name: str
    address: str
    contact: str


# The step whose email carries the store's coupon.
COUPON_STEP = 2
SHARED_COUPON = "shared"  # every shopper gets ``code``
POOL_COUPON = "pool"  # each cart gets a single-use code from the store's uploaded pool; ``code`` is the fallback


@dataclass(frozen=True)
class Coupon:
    code: str
    description: str
    terms: str = ""
    valid_days: int | None = 7
    kind: str = SHARED_COUPON
    # A link that applies the code in the shop, e.g. ``https://shop.example.jp/discount/{code}?redirect=/cart``.
    apply_url: str = ""
    # Send the coupon step only to shoppers who did not click an earlier email of the flow.
    only_if_not_clicked: bool = False

    def __post_init__(self) -> None:
        if self.kind not in (SHARED_COUPON, POOL_COUPON):
            raise ValueError(f"coupon kind must be {SHARED_COUPON!r} or {POOL_COUPON!r}, got {self.kind!r}")
        if self.kind == SHARED_COUPON and not self.code:
            raise ValueError("a shared coupon needs a code")
        if self.apply_url:
            check_apply_url(self.apply_url)

    def apply_link(self, code: str) -> str | None:
        """The auto-apply link for ``code`` (URL-encoded into the pattern), or None without a pattern."""
        return self.apply_url.replace("{code}", quote(code, safe="")) if self.apply_url else None


def check_apply_url(pattern: str) -> None:
    """An auto-apply pattern is an absolute https URL with ``{code}`` in its path or query."""
    if "{code}" not in pattern:
        raise ValueError("coupon apply_url must contain {code}")
    parts = split_url(pattern.replace("{code}", "CODE"))
    if parts is None or parts.scheme != "https" or not parts.hostname or "{code}" in urlsplit(pattern).netloc:
        raise ValueError(f"coupon apply_url must be an absolute https URL with {{code}} after the host: {pattern!r}")


@dataclass(frozen=True)
class Product:
    name: str
    url: str
    image_url: str | None = None
    price: str | None = None


@dataclass(frozen=True)
class Reassurance:
    """Texts that answer a hesitating shopper's doubts, each shown only where it helps and never when empty:
    warranty and returns for a cart whose total reaches ``high_value_threshold`` (in the store's currency),
    returns and size exchange for a shopper's first purchase."""

    warranty: str = ""
    returns: str = ""
    size_exchange: str = ""
    high_value_threshold: Decimal | None = None


@dataclass(frozen=True)
class StoreSettings:
    store_id: str
    name: str
    sender_email: str
    legal: Legal
    url: str = ""
    sender_name: str = ""
    locale: str = "ja"
    timezone: str = "Asia/Tokyo"
    currency: str = "JPY"
    quiet_hours: QuietHours = field(default_factory=lambda: QuietHours(time(21, 0), time(8, 0)))
    flows: dict[str, Flow] = field(default_factory=lambda: {CART_RECOVERY: DEFAULT_CART_RECOVERY})
    coupon: Coupon | None = None
    recommendations: tuple[Product, ...] = ()
    help: dict[str, str | None] = field(default_factory=dict)
    late_limit_seconds: int = 86400
    # Defer (never drop) a step that falls on a Japanese public holiday or 29 Dec-3 Jan.
    skip_closed_days: bool = False
    # At most one marketing email per shopper and store in this many hours, across flows (0: no cap).
    frequency_cap_hours: int = 16
    reassurance: Reassurance = field(default_factory=Reassurance)
    # Shipping is free from this order total, in ``currency``: below it, emails say how much is missing.
    free_shipping_threshold: Decimal | None = None
    # Leave out-of-stock items out of the emails (else they are shown marked); never all of a cart's items.
    hide_out_of_stock: bool = False
    # This share (percent) of the shoppers who enter a flow get none of its emails: the holdout group the
    # report measures the flow's lift against (domain/measurement.py). 0: no holdout, nothing recorded.
    holdout_percent: int = 0

    def __post_init__(self) -> None:
        if self.frequency_cap_hours < 0:
            raise ValueError("frequency_cap_hours must be 0 (no cap) or more")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["quiet_hours"] = str(self.quiet_hours)
        data["flows"] = {
            name: {
                "enabled": flow.enabled,
                "steps": [
                    {"step": s.step, "delay_seconds": s.delay_seconds}
                    | ({"variants": list(s.variants)} if s.variants != DEFAULT_VARIANTS else {})
                    for s in flow.steps
                ],
            }
            for name, flow in self.flows.items()
        }
        data["recommendations"] = [asdict(p) for p in self.recommendations]
        # Amounts as decimal strings: exact in DynamoDB and printable as JSON.
        data["reassurance"]["high_value_threshold"] = _amount_text(self.reassurance.high_value_threshold)
        data["free_shipping_threshold"] = _amount_text(self.free_shipping_threshold)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoreSettings:
        flows = {
            name: Flow(
                name=name,
                enabled=bool(raw.get("enabled", True)),
                steps=tuple(
                    FlowStep(int(s["step"]), int(s["delay_seconds"]), tuple(s.get("variants") or DEFAULT_VARIANTS))
                    for s in raw["steps"]
                ),
            )
            for name, raw in (data.get("flows") or {}).items()
        } or {CART_RECOVERY: DEFAULT_CART_RECOVERY}
        coupon = data.get("coupon")
        legal = data.get("legal") or {}
        reassurance = data.get("reassurance") or {}
        return cls(
            store_id=str(data["store_id"]),
            name=str(data["name"]),
            sender_email=str(data["sender_email"]),
            sender_name=str(data.get("sender_name") or data["name"]),
            url=str(data.get("url") or ""),
            legal=Legal(
                sender_name=str(legal.get("sender_name") or data["name"]),
                address=str(legal.get("address") or ""),
                contact=str(legal.get("contact") or ""),
            ),
            locale=str(data.get("locale") or "ja"),
            timezone=str(data.get("timezone") or "Asia/Tokyo"),
            currency=str(data.get("currency") or "JPY"),
            quiet_hours=QuietHours.parse(str(data.get("quiet_hours") or "21:00-08:00")),
            flows=flows,
            coupon=Coupon(
                code=str(coupon.get("code") or ""),
                description=str(coupon.get("description") or ""),
                terms=str(coupon.get("terms") or ""),
                valid_days=int(coupon["valid_days"]) if coupon.get("valid_days") is not None else None,
                kind=str(coupon.get("kind") or SHARED_COUPON),
                apply_url=str(coupon.get("apply_url") or ""),
                only_if_not_clicked=bool(coupon.get("only_if_not_clicked", False)),
            )
            if coupon
            else None,
            recommendations=tuple(
                Product(name=str(p["name"]), url=str(p["url"]), image_url=p.get("image_url"), price=p.get("price"))
                for p in data.get("recommendations") or ()
            ),
            help={k: (str(v) if v else None) for k, v in (data.get("help") or {}).items()},
            late_limit_seconds=int(data.get("late_limit_seconds") or 86400),
            skip_closed_days=bool(data.get("skip_closed_days", False)),
            frequency_cap_hours=int(data["frequency_cap_hours"] if data.get("frequency_cap_hours") is not None else 16),
            reassurance=Reassurance(
                warranty=str(reassurance.get("warranty") or "").strip(),
                returns=str(reassurance.get("returns") or "").strip(),
                size_exchange=str(reassurance.get("size_exchange") or "").strip(),
                high_value_threshold=_amount(reassurance.get("high_value_threshold"), "high_value_threshold"),
            ),
            free_shipping_threshold=_amount(data.get("free_shipping_threshold"), "free_shipping_threshold"),
            hide_out_of_stock=bool(data.get("hide_out_of_stock", False)),
            holdout_percent=int(data.get("holdout_percent") or 0),
        )


# The help links every email may show, by the name templates know them by.
HELP_KEYS = ("shipping_url", "payment_url", "faq_url", "contact_url")


@functools.cache  # on first use, not at import: ingest imports this module and never checks settings
def _known_keys() -> dict[str, tuple[str, ...]]:
    """The keys each part of the settings' JSON form may have (``flows.*`` and ``steps[]`` by shape)."""
    return {
        "": tuple(f.name for f in fields(StoreSettings)),
        "legal": tuple(f.name for f in fields(Legal)),
        "coupon": tuple(f.name for f in fields(Coupon)),
        "reassurance": tuple(f.name for f in fields(Reassurance)),
        "help": HELP_KEYS,
        "flow": ("enabled", "steps"),
        "step": tuple(f.name for f in fields(FlowStep)),
        "recommendation": tuple(f.name for f in fields(Product)),
    }


def _unknown_key(data: dict[str, Any], part: str, path: str) -> str | None:
    """A key of ``data`` that the settings do not have: read by nothing, it would be a setting silently lost
    (``quite_hours``), so it is named, with the nearest known key when one is close."""
    known = _known_keys()[part]
    for key in data:
        if key not in known:
            import difflib  # here: only operators' mistakes need it, and ingest imports this module

            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f"; known: {', '.join(known)}"
            return f"{path}{key!r} is not a setting{hint}"
    return None


def settings_shape_problem(data: dict[str, Any]) -> str | None:
    """What in hand-written settings has the wrong JSON shape (``flows.x must be an object``), checked before
    ``StoreSettings.from_dict`` reads it; None when every part is shaped as that reader expects. Settings read
    back from the store table were written by ``to_dict`` and are not checked again.

    Switches must be JSON booleans and counts whole numbers: the reader's ``bool("false")`` is true, so a
    flow "disabled" with a string would go on sending, and ``int(1.5)`` would quietly drop the half."""
    problem = _unknown_key(data, "", "")
    if problem:
        return problem
    for part in ("legal", "coupon", "reassurance", "help"):
        if data.get(part) is None:
            continue
        if not isinstance(data[part], dict):
            return f"{part} must be an object"
        # ``help`` is all links: every key of it is text.
        problem = _unknown_key(data[part], part, f"{part}.")
        problem = problem or _texts(data[part], f"{part}.", TEXT_KEYS.get(part, tuple(data[part])))
        if problem:
            return problem
    problem = _typed(data, "", booleans=("skip_closed_days", "hide_out_of_stock"))
    problem = problem or _typed(data, "", numbers=("late_limit_seconds", "frequency_cap_hours", "holdout_percent"))
    problem = problem or _texts(data, "", TEXT_KEYS[""])
    if problem:
        return problem
    coupon = data.get("coupon")
    if coupon is not None:
        problem = _typed(coupon, "coupon.", booleans=("only_if_not_clicked",), numbers=("valid_days",))
        if problem:
            return problem
    flows = data.get("flows")
    if flows is not None:
        if not isinstance(flows, dict):
            return "flows must be an object of flows by name"
        for name, flow in flows.items():
            if not isinstance(flow, dict):
                return f"flows.{name} must be an object"
            problem = _unknown_key(flow, "flow", f"flows.{name}.")
            problem = problem or _typed(flow, f"flows.{name}.", booleans=("enabled",))
            problem = problem or _objects(flow.get("steps"), f"flows.{name}.steps")
            if problem:
                return problem
            for index, step in enumerate(flow["steps"]):
                where = f"flows.{name}.steps[{index}]."
                missing = [key for key in ("step", "delay_seconds") if step.get(key) is None]
                if missing:
                    return f"{where}{missing[0]} is required"
                problem = _unknown_key(step, "step", where) or _typed(step, where, numbers=("step", "delay_seconds"))
                problem = problem or _variants_problem(step.get("variants"), f"{where}variants")
                if problem:
                    return problem
    recommendations = data.get("recommendations")
    if recommendations is not None:
        problem = _objects(recommendations, "recommendations")
        if problem:
            return problem
        for index, product in enumerate(recommendations):
            where = f"recommendations[{index}]."
            problem = _unknown_key(product, "recommendation", where)
            problem = problem or _texts(product, where, TEXT_KEYS["recommendation"])
            if problem:
                return problem
    return None


# The settings that are text (and every key of ``help``; a recommendation's price may also be a number).
# The reader takes ``str()`` of each: a list given for the postal address became "['a', 'b']" in every
# email's legal footer.
TEXT_KEYS = {
    "": ("store_id", "name", "sender_email", "sender_name", "url", "locale", "timezone", "currency", "quiet_hours"),
    "legal": ("sender_name", "address", "contact"),
    "coupon": ("code", "description", "terms", "kind", "apply_url"),
    "reassurance": ("warranty", "returns", "size_exchange"),
    "recommendation": ("name", "url", "image_url"),
}


def _texts(data: dict[str, Any], prefix: str, keys: tuple[str, ...]) -> str | None:
    """The first of ``keys`` that is set but not a JSON string."""
    for key in keys:
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{prefix}{key} must be text, got {data[key]!r}"[:200]
    return None


# The range of each whole-number setting. Beyond them a setting was taken and then failed every event or
# email of the store (a delay of 1e18 s overflows the due time: ingest answered 503 to every cart event) or
# silently stopped the flow (a negative late limit skipped every step as too late).
DAY_SECONDS = 86400
NUMBER_RANGES = {
    "step": (1, 999),
    "delay_seconds": (0, 365 * DAY_SECONDS),
    # 0 is the default. Below ten minutes the limit would skip steps the system itself set late: a timer is
    # set at least a minute ahead, Scheduler fires within a minute, and the sweep re-arms a lost one after ten.
    "late_limit_seconds": (600, 30 * DAY_SECONDS),
    "frequency_cap_hours": (0, 365 * 24),
    "valid_days": (1, 3650),
    # Beyond half, the flow's emails would be the exception and the holdout the rule.
    "holdout_percent": (0, 50),
}

ZERO_IS_DEFAULT = {"late_limit_seconds"}


def _typed(
    data: dict[str, Any], prefix: str, *, booleans: tuple[str, ...] = (), numbers: tuple[str, ...] = ()
) -> str | None:
    """The first of ``booleans`` that is set but not true/false, or of ``numbers`` not a whole number in
    its ``NUMBER_RANGES`` range."""
    for key in booleans:
        if data.get(key) is not None and not isinstance(data[key], bool):
            return f"{prefix}{key} must be true or false, got {data[key]!r}"
    for key in numbers:
        value = data.get(key)
        if value is None:
            continue
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole:
            return f"{prefix}{key} must be a whole number, got {value!r}"
        low, high = NUMBER_RANGES[key]
        if key in ZERO_IS_DEFAULT and value == 0:
            continue
        if not low <= value <= high:
            default = "0 (the default) or " if key in ZERO_IS_DEFAULT else ""
            return f"{prefix}{key} must be {default}from {low} to {high}, got {value!r}"
    return None


def settings_value_problem(settings: StoreSettings) -> str | None:
    """What in new settings would fail every email later (SES refuses the sender, the timer cannot find the
    time zone), said now; None when there is nothing. Stores already saved are not checked again on read."""
    checks = [
        ("sender_email", settings.sender_email, is_email_address, f"{NOT_EMAIL} (a verified SES identity)"),
        # The From header's name (the store's name unless set): SES cannot be given a header with a line break.
        ("sender_name", settings.sender_name, _is_header_text, f"{NOT_ONE_LINE} (it defaults to the store's name)"),
        ("timezone", settings.timezone, is_time_zone, NOT_TIME_ZONE),
        ("locale", settings.locale, is_language_tag, NOT_LANGUAGE_TAG),
        ("currency", settings.currency, is_currency_code, NOT_CURRENCY),
    ]
    for name, value, valid, message in checks:
        if not valid(value):
            return f"{name} {message}, got {value[:60]!r}"
    # Links shown in emails: anything but http(s) (a javascript: link) is refused, as it is in events.
    links = [("url", settings.url)] + [(f"help.{k}", v or "") for k, v in settings.help.items()]
    for index, product in enumerate(settings.recommendations):
        links += [(f"recommendations[{index}].url", product.url)]
        links += [(f"recommendations[{index}].image_url", product.image_url or "")]
    for name, link in links:
        if link and not is_http_url(link):
            return f"{name} {NOT_HTTP_URL}, got {link[:60]!r}"
    for flow in settings.flows.values():  # each step's number and delay are in range (settings_shape_problem)
        numbers = [s.step for s in flow.steps]
        if numbers != sorted(set(numbers)):
            # A flow walks its steps in the listed order: the next step is the first listed after the last one.
            return f"flows.{flow.name}: list each step once, in increasing order, got steps {numbers}"
    return None


def _is_header_text(text: str) -> bool:
    return not has_control_characters(text)


def _variants_problem(value: Any, path: str) -> str | None:
    """A step's ``variants``: 1 to MAX_VARIANTS distinct names (lower-case letters, digits, ``_``, ``-``)."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_VARIANTS:
        return f'{path} must be a list of 1 to {MAX_VARIANTS} variant names, e.g. ["a", "b"]'
    for name in value:
        if not isinstance(name, str) or not VARIANT_NAME.match(name):
            return f"{path}: {name!r} is not a variant name (a lower-case letter, then up to 15 a-z, 0-9, _ or -)"
    if len(set(value)) != len(value):
        return f"{path} lists a variant twice: {value}"
    return None


def _objects(value: Any, path: str) -> str | None:
    if not isinstance(value, list):
        return f"{path} must be a list"
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            return f"{path}[{index}] must be an object"
    return None


def _amount(value: Any, name: str) -> Decimal | None:
    """A threshold from settings (a number or its text, in the store's currency); None when not set."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an amount such as 5000")
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        raise ValueError(f"{name} must be an amount such as 5000, got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"{name} must be more than 0, got {value!r}")
    return amount


def _amount_text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


@dataclass(frozen=True)
class SecretEntry:
    secret: str
    created_at: str
    expires_at: str | None = None  # set when rotated out: the old secret stays valid until then

    def in_force(self, now: datetime) -> bool:
        return self.expires_at is None or datetime.fromisoformat(self.expires_at) > now


@dataclass(frozen=True)
class Store:
    """Settings plus the keys that only the store's own requests and links can prove knowledge of."""

    settings: StoreSettings
    webhook_secrets: tuple[SecretEntry, ...]
    shopify_secrets: tuple[SecretEntry, ...]
    token_key: str  # signs unsubscribe links
    salt: str  # salts address hashes

    @property
    def store_id(self) -> str:
        return self.settings.store_id

    def webhook_secrets_in_force(self, now: datetime) -> list[str]:
        return [s.secret for s in self.webhook_secrets if s.in_force(now)]

    def shopify_secrets_in_force(self, now: datetime) -> list[str]:
        return [s.secret for s in self.shopify_secrets if s.in_force(now)]
