"""``cartrecovery store create`` and ``store rotate-secret`` with a hand-written ``--settings`` file and odd
arguments: every mistake is one line on stderr that says what is wrong and where, a non-zero exit, and
nothing is created or changed; nothing ends in a traceback, in a store whose every email would fail later,
or in a secret that is in force but matches no request."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cartrecovery.clock import isoformat
from cartrecovery.domain.store import Store
from cartrecovery.signing import sign
from cartrecovery.usecases.stores import InvalidStore, rotate_secret
from cartrecovery.wiring import Services

CREATE = ("store", "create", "--id", "new-shop", "--name", "新茶屋", "--sender-email", "shop@shincha.example.jp")


def settings_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "settings.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2"),
        ("[1, 2]", "must hold a JSON object of settings, not list"),
        ('{"flows": {"cart_recovery": 1}}', "invalid store settings: flows.cart_recovery must be an object"),
        ('{"flows": {"cart_recovery": {}}}', "invalid store settings: flows.cart_recovery.steps must be a list"),
        ('{"flows": {"cart_recovery": {"steps": [3600]}}}', "flows.cart_recovery.steps[0] must be an object"),
        ('{"flows": {"cart_recovery": {"steps": [{"step": 1}]}}}', "cart_recovery.steps[0].delay_seconds is required"),
        # The reader's bool("false") is true: a flow "disabled" with a string would go on sending.
        ('{"flows": {"cart_recovery": {"enabled": "false", "steps": []}}}', "enabled must be true or false"),
        ('{"flows": {"cart_recovery": {"steps": [{"step": 1, "delay_seconds": 1.5}]}}}', "must be a whole number"),
        (
            '{"flows": {"cart_recovery": {"steps": '
            '[{"step": 2, "delay_seconds": 0}, {"step": 1, "delay_seconds": 9}]}}}',
            "list each step once, in increasing order, got steps [2, 1]",
        ),
        ('{"skip_closed_days": "yes"}', "invalid store settings: skip_closed_days must be true or false, got 'yes'"),
        ('{"coupon": {"code": "X", "valid_days": "7"}}', "coupon.valid_days must be a whole number, got '7'"),
        ('{"quiet_hours": "9pm-8am"}', "quiet_hours must be two times of day as HH:MM-HH:MM, got '9pm-8am'"),
        ('{"quiet_hours": "21-08"}', "quiet_hours must be two times of day as HH:MM-HH:MM, got '21-08'"),
        ('{"quiet_hours": "21:00:30-08:00"}', "quiet_hours must be two times of day as HH:MM-HH:MM, got '21:00:30"),
        ('{"coupon": "WELCOME10"}', "invalid store settings: coupon must be an object"),
        ('{"legal": "株式会社新茶屋"}', "invalid store settings: legal must be an object"),
        ('{"recommendations": ["TEA-001"]}', "invalid store settings: recommendations[0] must be an object"),
        # JSON may escape half of a UTF-16 pair alone; no email could carry the legal name it makes.
        ('{"legal": {"sender_name": "株式会社\\ud83c新茶屋"}}', "legal.sender_name must be valid Unicode"),
    ],
    ids=[
        *("json", "not-object", "flow", "steps", "step", "step-key", "enabled-text", "fraction", "step-order"),
        *("switch-text", "count-text", "quiet-hours", "quiet-hours-short", "quiet-hours-seconds"),
        *("coupon", "legal", "recommendation", "surrogate"),
    ],
)
def test_a_bad_settings_file_is_one_clear_error_and_creates_nothing(
    svc: Services, cli: Any, tmp_path: Path, text: str, expected: str
) -> None:
    code, out, err = cli(*CREATE, "--settings", settings_file(tmp_path, text))

    assert code == 2 and out == ""
    assert err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert svc.stores.get("new-shop") is None


def test_legal_flags_do_not_hide_a_legal_part_of_the_wrong_shape(svc: Services, cli: Any, tmp_path: Path) -> None:
    # The flags are merged into the file's "legal" object: a string there once ended in a TypeError.
    file = settings_file(tmp_path, '{"legal": "株式会社新茶屋"}')
    code, _, err = cli(*CREATE, "--legal-name", "株式会社新茶屋", "--address", "京都市", "--settings", file)
    assert code == 2 and "invalid store settings: legal must be an object" in err, err
    assert svc.stores.get("new-shop") is None


def test_a_missing_settings_file_is_named(svc: Services, cli: Any, tmp_path: Path) -> None:
    code, _, err = cli(*CREATE, "--settings", str(tmp_path / "nowhere.json"))
    assert code == 2 and f"cannot read --settings {tmp_path / 'nowhere.json'}: No such file or directory" in err
    assert svc.stores.get("new-shop") is None


def test_a_good_settings_file_with_a_whole_surrogate_pair_is_kept_as_written(
    svc: Services, cli: Any, tmp_path: Path
) -> None:
    text = json.dumps({"legal": {"sender_name": "株式会社新茶屋 🍵", "address": "京都市", "contact": "03-0000-0000"}})
    assert "\\ud83c\\udf75" in text  # the pair as json.dumps escapes it
    code, out, err = cli(*CREATE, "--settings", settings_file(tmp_path, text))

    assert code == 0, err
    assert "store created: new-shop" in out
    store = svc.stores.get("new-shop")
    assert store is not None and store.settings.legal.sender_name == "株式会社新茶屋 🍵"


def test_an_argument_that_was_not_utf8_on_the_command_line_is_refused_before_any_call(
    svc: Services, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Python keeps each byte of a command line that is not UTF-8 as a lone surrogate (here \xff as \udcff).
    with pytest.raises(SystemExit) as exited:
        cli(*CREATE[:5], "新茶屋\udcff", *CREATE[6:])

    assert exited.value.code == 2
    assert "error: the name argument is not valid UTF-8 text" in capsys.readouterr().err
    assert svc.stores.get("new-shop") is None


@pytest.mark.parametrize(
    ("flags", "in_file", "expected"),
    [
        (("--sender-email", "shop"), {}, "sender_email must be an email address (a verified SES identity), got 'shop'"),
        (("--timezone", "Mars/Olympus"), {}, "timezone must be an IANA time zone such as Asia/Tokyo"),
        (("--locale", "../../etc"), {}, "locale must be a language tag such as ja or en-US"),
        ((), {"currency": "yen"}, "currency must be an ISO 4217 code such as JPY, got 'yen'"),
        (("--url", "shop.example.jp"), {}, "url must be an absolute http(s) URL, got 'shop.example.jp'"),
        (("--url", "https://[shop.example.jp"), {}, "url must be an absolute http(s) URL, got 'https://[shop"),
        (
            (),
            {"flows": {"cart_recovery": {"steps": [{"step": 1, "delay_seconds": -60}]}}},
            "flows.cart_recovery.steps[0].delay_seconds must be from 0 to 31536000, got -60",
        ),
        # Out of range, these were taken and then failed every cart event (503: the due time overflowed),
        # dead-lettered a step, or skipped every step as too late.
        (
            (),
            {"flows": {"cart_recovery": {"steps": [{"step": 1, "delay_seconds": 1e18}]}}},
            "delay_seconds must be from 0 to 31536000, got 1e+18",
        ),
        ((), {"late_limit_seconds": 1e300}, "late_limit_seconds must be 0 (the default) or from 600 to 2592000"),
        ((), {"late_limit_seconds": -5}, "late_limit_seconds must be 0 (the default) or from 600 to 2592000, got -5"),
        # Shorter than the system's own timing slack: a step with no delay was always skipped as too late.
        ((), {"late_limit_seconds": 30}, "late_limit_seconds must be 0 (the default) or from 600 to 2592000, got 30"),
        ((), {"frequency_cap_hours": 1e20}, "frequency_cap_hours must be from 0 to 8760, got 1e+20"),
        ((), {"coupon": {"code": "X", "valid_days": 1e300}}, "coupon.valid_days must be from 1 to 3650, got 1e+300"),
        # Read with str(), these once reached every email: "['a', 'b']" in the legal footer, a javascript: link.
        ((), {"legal": {"address": ["a", "b"]}}, "legal.address must be text, got ['a', 'b']"),
        ((), {"sender_name": {"x": 1}}, "sender_name must be text, got {'x': 1}"),
        # The From header cannot hold a line break: every send of the store failed (the name is the default).
        (("--name", "Matcha\nShop"), {}, "sender_name must be one line of text"),
        ((), {"help": {"faq_url": "javascript:alert(1)"}}, "help.faq_url must be an absolute http(s) URL"),
        (
            (),
            {"recommendations": [{"name": "茶", "url": "javascript:alert(1)"}]},
            "recommendations[0].url must be an absolute http(s) URL",
        ),
        (
            (),
            {"coupon": {"code": "X", "apply_url": "https://[shop.example.jp/discount/{code}"}},
            "coupon apply_url must be an absolute https URL with {code} after the host",
        ),
        (("--shopify-secret", "two words"), {}, "a Shopify secret is the app's key as Shopify shows it"),
        # Read by nothing, a misspelt setting was once dropped without a word: the store kept the default.
        ((), {"frequency_cap_hour": 24}, "'frequency_cap_hour' is not a setting (did you mean 'frequency_cap_hours'?)"),
        ((), {"help": {"returns_url": "https://x.example.jp"}}, "help.'returns_url' is not a setting; known: shipping"),
        # No template has a step 4: its firing would fail on every retry and end in the dead-letter queue.
        (
            (),
            {"flows": {"cart_recovery": {"steps": [{"step": 4, "delay_seconds": 60}]}}},
            "flows.cart_recovery step 4 cannot be sent (en): no templates for flow 'cart_recovery' step 4",
        ),
    ],
    ids=[
        *("sender", "timezone", "locale", "currency", "url", "url-bracket", "delay"),
        *("delay-huge", "late-limit-huge", "late-limit-negative", "late-limit-short"),
        *("frequency-cap-huge", "coupon-days-huge"),
        *("address-list", "sender-name-object", "name-line-break", "help-javascript", "recommendation-javascript"),
        "apply-url-bracket",
        "shopify-secret",
        *("typo", "help-typo", "step-without-templates"),
    ],
)
def test_settings_that_would_fail_every_email_later_are_refused_now(
    svc: Services, cli: Any, tmp_path: Path, flags: tuple[str, ...], in_file: dict[str, Any], expected: str
) -> None:
    # A store with time zone Mars/Olympus once took events and dead-lettered every one of its timers.
    argv = [*CREATE, "--settings", settings_file(tmp_path, json.dumps(in_file))]
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    code, out, err = cli(*argv)

    assert code == 2 and out == "" and expected in err, err
    assert svc.stores.get("new-shop") is None


def _whsec(nbytes: int) -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(nbytes)).decode()


@pytest.mark.parametrize(
    "value",
    ["short", _whsec(8), _whsec(65), "whsec_not base64!", base64.b64encode(secrets.token_bytes(32)).decode(), ""],
    ids=["plain", "8-bytes", "65-bytes", "not-base64", "no-prefix", "empty"],
)
def test_a_webhook_secret_that_cannot_sign_is_refused_and_the_store_keeps_its_secrets(
    svc: Services, store: Store, cli: Any, value: str
) -> None:
    code, out, err = cli("store", "rotate-secret", "--id", store.store_id, "--value", value)

    assert code == 1 and "new webhook secret" not in out
    assert "a webhook secret is whsec_ followed by the base64 of 24-64 random bytes" in err, err
    assert svc.stores.get(store.store_id) == store


def test_a_webhook_secret_made_elsewhere_is_taken_and_signs(svc: Services, store: Store, cli: Any) -> None:
    value = _whsec(32)
    code, out, err = cli("store", "rotate-secret", "--id", store.store_id, "--value", value)

    assert code == 0, err
    assert f"new webhook secret: {value}" in out
    rotated = svc.stores.get(store.store_id)
    assert rotated is not None and rotated.webhook_secrets[-1].secret == value
    assert sign(value, "msg-1", 1, b"{}").startswith("v1,")


@pytest.mark.parametrize("hours", ["-5", "nan", "1e20", "inf", "a day"])
def test_an_overlap_outside_zero_to_a_year_is_a_usage_error(
    svc: Services, store: Store, cli: Any, capsys: pytest.CaptureFixture[str], hours: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("store", "rotate-secret", "--id", store.store_id, "--overlap-hours", hours)

    assert exited.value.code == 2
    assert "argument --overlap-hours:" in capsys.readouterr().err
    assert svc.stores.get(store.store_id) == store


def test_the_use_case_refuses_a_negative_overlap_too(svc: Services, store: Store) -> None:
    # The CLI's --overlap-hours never passes one; any other caller of rotate_secret meets the same rule.
    with pytest.raises(InvalidStore, match="the overlap must be 0 hours or more"):
        rotate_secret(svc.stores, store.store_id, svc.clock, overlap=timedelta(hours=-1))
    assert svc.stores.get(store.store_id) == store


def test_a_rotation_without_overlap_stops_every_earlier_secret_even_one_still_in_its_overlap(
    svc: Services, store: Store, cli: Any
) -> None:
    # After a routine rotation (24 h overlap) the secret is found leaked: rotating with no overlap must stop
    # both the first secret (still in its 24 h) and the second, at once.
    first = store.webhook_secrets[-1].secret
    code, _, err = cli("store", "rotate-secret", "--id", store.store_id)
    assert code == 0, err
    code, _, err = cli("store", "rotate-secret", "--id", store.store_id, "--overlap-hours", "0")
    assert code == 0, err

    rotated = svc.stores.get(store.store_id)
    assert rotated is not None
    now = svc.clock.now()
    in_force = [s.secret for s in rotated.webhook_secrets if s.in_force(now + timedelta(seconds=1))]
    assert first not in in_force and len(in_force) == 1

    # A shorter overlap never lengthens one already ending sooner.
    assert cli("store", "rotate-secret", "--id", store.store_id, "--overlap-hours", "1")[0] == 0
    assert cli("store", "rotate-secret", "--id", store.store_id, "--overlap-hours", "48")[0] == 0
    again = svc.stores.get(store.store_id)
    assert again is not None
    ends = sorted(s.expires_at for s in again.webhook_secrets if s.expires_at and s.in_force(now))
    assert ends[0] == isoformat(now + timedelta(hours=1))
