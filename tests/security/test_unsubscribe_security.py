"""The unsubscribe link (CONTRACT §1, RFC 8058): only a genuine token acts; GET shows a page and changes
nothing (link scanners follow GETs); POST with the one-click body unsubscribes at once, urlencoded or
multipart, with no cookie and no redirect. Over HTTP on the local stack."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ONE_CLICK = b"List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class Shopper:
    email: str
    token: str


@pytest.fixture(scope="module")
def shoppers(local_stack: Any) -> dict[str, Shopper]:
    """Shoppers of the demo store, each with the step-1 email in hand."""
    stack = local_stack
    stack.advance_to_local_time(10)
    roles = ("scanned", "urlencoded", "multipart", "button", "hostile", "crlf")
    emails = {role: stack.unique_email(role) for role in roles}
    for email in emails.values():
        assert stack.post_event(stack.cart_event(stack.new_id(), email, stack.now()))[0] == 202
    stack.advance(3 * 3600)
    found = {}
    for role, email in emails.items():
        (message,) = stack.outbox(to=email)
        url = stack.unsubscribe_url(message)
        assert url.startswith(stack.base_url + "/u/"), url  # the local stack's public base URL
        found[role] = Shopper(email, url.rsplit("/u/", 1)[1])
    return found


def _assert_page(answer: Any, status: int) -> None:
    assert answer.status == status, (answer.status, answer.text[:500])
    assert answer.headers.get("content-type", "").startswith("text/html")
    assert "Traceback" not in answer.text
    assert "set-cookie" not in answer.headers
    assert "location" not in answer.headers


def _flip(token: str, index: int) -> str:
    """The token with one character changed to another of the same alphabet."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    char = token[index]
    if char not in alphabet:
        return token[:index] + "A" + token[index + 1 :]
    replacement = alphabet[(alphabet.index(char) + 1) % len(alphabet)]
    return token[:index] + replacement + token[index + 1 :]


def test_tampered_and_unknown_tokens_are_a_404_page(local_stack: Any, shoppers: dict[str, Shopper]) -> None:
    stack = local_stack
    token = shoppers["scanned"].token
    payload_end = token.index(".")
    positions = sorted({0, 1, payload_end // 2, payload_end - 1, payload_end + 1, len(token) // 2, len(token) - 1})
    forged = [_flip(token, i) for i in positions if i != payload_end]
    forged += [
        token[:-1],  # truncated MAC
        token + "A",
        token.replace(".", ""),
        token.split(".")[0] + ".",
        "." + token.split(".")[1],
        token + "." + token.split(".")[1],
        "A" * 700,
        "x",
        uuid.uuid4().hex,
        "%2e%2e",
        "eyJzIjoiZGVtbyJ9.AAAAAAAAAAAAAAAAAAAAAA",  # {"s":"demo"}: the right store, the rest missing
    ]
    for text in forged:
        assert text != token
        for method in ("GET", "POST"):
            answer = stack.request(
                method, f"/u/{text}", ONE_CLICK, {"content-type": "application/x-www-form-urlencoded"}
            )
            assert 400 <= answer.status < 500, (text, method, answer.status)
            _assert_page(answer, 404)
    # None of that unsubscribed anyone: the genuine token still shows the confirmation.
    assert "List-Unsubscribe" in stack.get(f"/u/{token}").text


def test_get_shows_a_page_and_changes_nothing_post_unsubscribes(local_stack: Any, shoppers: dict[str, Shopper]) -> None:
    stack = local_stack
    report_before = stack.report()

    # A link scanner (and the shopper looking twice) follows the GET; a POST without the one-click body is
    # refused: neither unsubscribes.
    scanned = shoppers["scanned"].token
    for _ in range(3):
        page = stack.get(f"/u/{scanned}")
        _assert_page(page, 200)
    _assert_page(stack.post(f"/u/{scanned}", b"", {"content-type": "application/x-www-form-urlencoded"}), 400)
    _assert_page(stack.post(f"/u/{scanned}", b'{"List-Unsubscribe": "One-Click"}'), 400)

    # RFC 8058 one-click, as a mail provider posts it: urlencoded ...
    answer = stack.post(
        f"/u/{shoppers['urlencoded'].token}",
        ONE_CLICK,
        {"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    _assert_page(answer, 200)
    # ... or multipart/form-data.
    boundary = uuid.uuid4().hex
    multipart = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        "One-Click\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    answer = stack.post(
        f"/u/{shoppers['multipart'].token}", multipart, {"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    _assert_page(answer, 200)
    # The confirmation page's own button, submitted as a browser would.
    page = stack.get(f"/u/{shoppers['button'].token}").text
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page, re.S)
    assert form is not None, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(2)))
    assert fields == {"List-Unsubscribe": "One-Click"}
    action = unescape(form.group(1))
    target = action if action.startswith("/") else f"/u/{action}"
    answer = stack.post(target, ONE_CLICK, {"content-type": "application/x-www-form-urlencoded"})
    _assert_page(answer, 200)

    unsubscribed = stack.report_delta(report_before, stack.report())["unsubscribed"]
    assert unsubscribed == 3
    # Posting again is harmless and counted once.
    _assert_page(stack.post(f"/u/{shoppers['urlencoded'].token}", ONE_CLICK), 200)
    assert stack.report_delta(report_before, stack.report())["unsubscribed"] == 3

    # Three days on, step 2 goes to the shopper whose link was only looked at, and to no one else.
    stack.advance(3 * 86400)
    assert len(stack.outbox(to=shoppers["scanned"].email)) == 2
    for role in ("urlencoded", "multipart", "button"):
        assert len(stack.outbox(to=shoppers[role].email)) == 1, role


def _nested_multipart(depth: int) -> tuple[bytes, str]:
    """A multipart body of ``depth`` parts each nested in the one before: (body, content type)."""
    body = b"x"
    for level in range(depth, 0, -1):
        boundary = f"b{level}"
        kind = "multipart/form-data" if level == 1 else "multipart/mixed"
        body = (
            f"--{boundary}\r\nContent-Type: multipart/mixed; boundary=b{level + 1}\r\n\r\n".encode()
            + body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        top = f"{kind}; boundary={boundary}"
    return body, top


def test_hostile_one_click_bodies_get_a_page_never_a_5xx_and_unsubscribe_nobody(
    local_stack: Any, shoppers: dict[str, Shopper]
) -> None:
    """Bodies that once answered 503: parts nested a thousand deep (the email parser's RecursionError), and
    megabytes of small parts parsed before the token was looked at (seconds of CPU for anyone, no token
    needed). The token is now checked first and a body larger than any one-click is not parsed."""
    stack = local_stack
    token = shoppers["hostile"].token
    nested, nested_type = _nested_multipart(1000)
    boundary = uuid.uuid4().hex
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n'.encode()
    many = (
        part * 12_000
        + (  # some 800 KB, under the local server's 1 MiB (API Gateway takes 10 MB)
            f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n'
            f"--{boundary}--\r\n"
        ).encode()
    )
    many_type = f"multipart/form-data; boundary={boundary}"
    report_before = stack.report()
    for body, content_type in ((nested, nested_type), (many, many_type), (ONE_CLICK + b" " * 20_000, "")):
        _assert_page(stack.post(f"/u/{_flip(token, 0)}", body, {"content-type": content_type}), 404)
        _assert_page(stack.post(f"/u/{token}", body, {"content-type": content_type}), 400)
    assert stack.report_delta(report_before, stack.report())["unsubscribed"] == 0
    assert "List-Unsubscribe" in stack.get(f"/u/{token}").text  # still subscribed: the page offers the button


def test_a_one_click_body_ending_in_a_line_break_unsubscribes(local_stack: Any, shoppers: dict[str, Shopper]) -> None:
    stack = local_stack
    report_before = stack.report()
    answer = stack.post(
        f"/u/{shoppers['crlf'].token}", ONE_CLICK + b"\r\n", {"content-type": "application/x-www-form-urlencoded"}
    )
    _assert_page(answer, 200)
    assert stack.report_delta(report_before, stack.report())["unsubscribed"] == 1


def test_the_pages_a_link_opens_speak_the_language_of_its_email(local_stack: Any) -> None:
    """An English-speaking shopper of the Japanese demo store gets an English email; its link's pages (the
    confirmation, a refused body, the result) are in English too, not in the store's language."""
    stack = local_stack
    stack.advance_to_local_time(10)
    email = stack.unique_email("english")
    event = stack.cart_event(stack.new_id(), email, stack.now(), locale="en", name="Jane Doe")
    assert stack.post_event(event)[0] == 202
    stack.advance(3 * 3600)
    (message,) = stack.outbox(to=email)
    assert "Unsubscribe" in message["text"] or "unsubscribe" in message["text"]
    path = "/u/" + stack.unsubscribe_url(message).rsplit("/u/", 1)[1]

    pages = [stack.get(path), stack.post(path, b"nope", {"content-type": "application/x-www-form-urlencoded"})]
    pages.append(stack.post(path, ONE_CLICK, {"content-type": "application/x-www-form-urlencoded"}))
    for page, status in zip(pages, (200, 400, 200), strict=True):
        _assert_page(page, status)
        assert '<html lang="en"' in page.text, page.text[:300]
        text = page.text.replace(stack.store_settings()["name"], "")  # the shop's own name stays as it is
        assert not re.search(r"[\u3040-\u30ff]", text), text  # no kana: nothing left in Japanese
