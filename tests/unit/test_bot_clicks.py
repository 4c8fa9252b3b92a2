"""Telling a shopper's click from a machine's (a mail security scanner, a link preview, a script), and what
tracking does with each: a machine's click is counted apart and never takes the message's ``clicked``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cartrecovery.clock import ManualClock
from cartrecovery.domain.bot_clicks import (
    AUTOMATED_USER_AGENT,
    HUMAN_CLICK_MIN_DELAY,
    NO_USER_AGENT,
    TOO_SOON,
    machine_click_reason,
)
from cartrecovery.ports import MessageRecord
from cartrecovery.usecases.track import RecordSesEvent, RecordSesEvents
from tests.fakes import FakeContacts, FakeLedger

SENT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
LATER = SENT + timedelta(minutes=7)

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "

# Real user agents of people reading email: browsers, phones and the in-app browsers mail and chat apps open.
HUMAN = {
    "iPhone Safari": IPHONE + "Version/17.5 Mobile/15E148 Safari/604.1",
    "iPhone Gmail app (web view)": IPHONE + "Mobile/15E148",
    "iPhone Google app": IPHONE + "GSA/322.0.648915268 Mobile/15E148 Safari/604.1",
    "Android Chrome": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.6422.165 Mobile Safari/537.36",
    "Android Gmail app (WebView)": "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240605.024; wv) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36",
    "Samsung Internet": "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "a CUBOT phone": "Mozilla/5.0 (Linux; Android 11; CUBOT X30 Build/RP1A.200720.011; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/96.0.4664.45 Mobile Safari/537.36",
    "LINE in-app": IPHONE + "Mobile/15E148 Safari Line/14.8.0",
    "Yahoo! JAPAN app": IPHONE + "Mobile/15E148 YJApp-IOS jp.co.yahoo.ipn.appli/4.61.0",
    "Facebook in-app": IPHONE
    + "Mobile/15E148 [FBAN/FBIOS;FBAV/466.0.0.35.108;FBBV/605431375;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS]",
    "desktop Chrome": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36",
    "desktop Firefox": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mac Firefox": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:126.0) Gecko/20100101 Firefox/126.0",
    "desktop Edge": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.85",
    "Mac Safari": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
}

MACHINE = {
    "Googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Baiduspider": "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Slack link expansion": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Telegram preview": "TelegramBot (like TwitterBot)",
    "Facebook preview": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Outlook.com preview": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "BingPreview/1.0b",
    "python-requests": "python-requests/2.32.3",
    "urllib": "Python-urllib/3.12",
    "aiohttp": "Python/3.12 aiohttp/3.9.5",
    "curl": "curl/8.5.0",
    "wget": "Wget/1.21.4",
    "Go": "Go-http-client/1.1",
    "Java": "Java/1.8.0_392",
    "Apache HttpClient": "Apache-HttpClient/4.5.14 (Java/17.0.9)",
    "OkHttp": "okhttp/4.12.0",
    "Android's HTTP client": "Dalvik/2.1.0 (Linux; U; Android 13; SM-A536E Build/TP1A.220624.014)",
    "node-fetch": "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "axios": "axios/1.7.2",
    "headless Chrome": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/125.0.6422.60 Safari/537.36",
    "Office's link check": "Microsoft Office Existence Discovery",
    "Office 16": "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
    "Barracuda": "Mozilla/5.0 (compatible; Barracuda Link Protection)",
    "Proofpoint": "Proofpoint URL Defense",
    "Mimecast": "Mimecast URL Protect",
}


@pytest.mark.parametrize("user_agent", HUMAN.values(), ids=HUMAN.keys())
def test_a_person_clicking_in_a_browser_or_mail_app_is_counted_as_a_click(user_agent: str) -> None:
    assert machine_click_reason(user_agent, LATER, SENT) is None


@pytest.mark.parametrize("user_agent", MACHINE.values(), ids=MACHINE.keys())
def test_crawlers_http_libraries_link_previews_and_scanners_are_machines(user_agent: str) -> None:
    assert machine_click_reason(user_agent, LATER, SENT) == AUTOMATED_USER_AGENT


@pytest.mark.parametrize("user_agent", [None, "", "   "])
def test_a_click_without_a_user_agent_is_a_machines(user_agent: str | None) -> None:
    assert machine_click_reason(user_agent, LATER, SENT) == NO_USER_AGENT


def test_a_browser_click_within_seconds_of_the_send_is_a_scanner_that_poses_as_a_browser() -> None:
    # Gateways that fetch the links before delivering the email often show an ordinary browser's user agent.
    edge = HUMAN["desktop Edge"]
    assert machine_click_reason(edge, SENT + timedelta(seconds=2), SENT) == TOO_SOON
    assert machine_click_reason(edge, SENT + HUMAN_CLICK_MIN_DELAY - timedelta(milliseconds=1), SENT) == TOO_SOON
    assert machine_click_reason(edge, SENT - timedelta(seconds=1), SENT) == TOO_SOON  # before the send
    assert machine_click_reason(edge, SENT + HUMAN_CLICK_MIN_DELAY, SENT) is None
    assert machine_click_reason(edge, SENT + timedelta(days=3), SENT) is None


def test_a_missing_time_proves_nothing() -> None:
    phone = HUMAN["iPhone Safari"]
    assert machine_click_reason(phone, None, SENT) is None
    assert machine_click_reason(phone, LATER, None) is None


# --- tracking ---------------------------------------------------------------------------------------------


def click(message_id: str, user_agent: str | None, seconds_after_send: float = 420) -> dict[str, Any]:
    """An SES Click event record, as EventBridge's ``detail`` carries it."""
    at = SENT + timedelta(seconds=seconds_after_send)
    block: dict[str, Any] = {
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "link": "https://shop.example.jp/cart",
        "ipAddress": "198.51.100.7",
    }
    if user_agent is not None:
        block["userAgent"] = user_agent
    return {
        "eventType": "Click",
        "mail": {"timestamp": SENT.isoformat().replace("+00:00", "Z"), "messageId": message_id, "tags": {}},
        "click": block,
    }


def ledger_with(*message_ids: str) -> FakeLedger:
    ledger = FakeLedger()
    for message_id in message_ids:
        ledger.record_sent(
            MessageRecord(message_id, "shop-1", "c-" + message_id, "cart_recovery", 1, "a", "2026-12-01", "h", SENT)
        )
    return ledger


def counts(ledger: FakeLedger) -> dict[str, Any]:
    (row,) = ledger.counters.values()
    return row


def test_a_scanners_click_is_counted_apart_and_the_shoppers_click_after_it_still_counts() -> None:
    ledger = ledger_with("m-1")
    track = RecordSesEvent(ledger, FakeContacts(), ManualClock(LATER))

    scanner = track(click("m-1", HUMAN["desktop Edge"], seconds_after_send=3))
    again = track(click("m-1", MACHINE["python-requests"]))  # every link, or SQS delivering it again
    shopper = track(click("m-1", HUMAN["iPhone Safari"]))

    assert (scanner.kind, scanner.result) == ("bot_clicked", "new")
    assert (again.kind, again.result) == ("bot_clicked", "again")
    assert (shopper.kind, shopper.result) == ("clicked", "new")
    assert counts(ledger) == {"sent": 1, "bot_clicked": 1, "clicked": 1}


def test_a_batch_tells_machine_clicks_from_the_shoppers_as_one_record_at_a_time_does() -> None:
    ledger = ledger_with("m-1", "m-2")
    records = [
        click("m-1", None),
        click("m-1", HUMAN["Android Chrome"]),
        click("m-2", HUMAN["Android Chrome"], seconds_after_send=1),
    ]

    results = RecordSesEvents(ledger, ManualClock(LATER))(records)

    assert results == ["new", "new", "new"]
    assert set(ledger.messages["m-1"].marks) == {"bot_clicked", "clicked"}
    assert set(ledger.messages["m-2"].marks) == {"bot_clicked"}
    assert counts(ledger) == {"sent": 2, "bot_clicked": 2, "clicked": 1}
