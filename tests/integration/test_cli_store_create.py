"""``cartrecovery store create`` with a hand-written ``--settings`` file and odd arguments: every mistake is one
line on stderr that says what is wrong and where, exit code 2, and no store is created; nothing ends in a
traceback or in a store whose emails could not be sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
        ('{"flows": {"cart_recovery": {"steps": [{"step": 1}]}}}', "store settings: 'delay_seconds' is required"),
        ('{"coupon": "WELCOME10"}', "invalid store settings: coupon must be an object"),
        ('{"recommendations": ["TEA-001"]}', "invalid store settings: recommendations[0] must be an object"),
        # JSON may escape half of a UTF-16 pair alone; no email could carry the legal name it makes.
        ('{"legal": {"sender_name": "株式会社\\ud83c新茶屋"}}', "legal.sender_name must be valid Unicode"),
    ],
    ids=["json", "not-object", "flow", "steps", "step", "step-key", "coupon", "recommendation", "surrogate"],
)
def test_a_bad_settings_file_is_one_clear_error_and_creates_nothing(
    svc: Services, cli: Any, tmp_path: Path, text: str, expected: str
) -> None:
    code, out, err = cli(*CREATE, "--settings", settings_file(tmp_path, text))

    assert code == 2 and out == ""
    assert err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
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
