"""Stores are sealed from each other (REFERENCE: "Store data per store, used only for that store"): a store's
secret opens only its own URL, the URL alone chooses the store, and an unsubscribe link of one store can
never be bent to act in another. Over HTTP on the local stack, with a second store created by the CLI."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def other(new_store: Callable[[], Any]) -> Any:
    """A second store beside the demo store."""
    return new_store()


def test_a_body_signed_for_one_store_is_401_at_another(local_stack: Any, other: Any) -> None:
    stack = local_stack
    event = stack.cart_event(stack.new_id(), stack.unique_email(), stack.now(), consent=False)

    status, answer = stack.post_event(event, secret=stack.secret, store=other.store_id)
    assert status == 401, answer
    status, answer = stack.post_event(event, secret=other.secret, store="demo")
    assert status == 401, answer
    # The same delivery, authentic, is accepted where it belongs: only the key/URL pairing failed.
    assert stack.post_event(event, secret=other.secret, store=other.store_id)[0] == 202
    # Shopify secrets are per store too.
    assert stack.post_shopify({"id": 1}, "checkouts/create", store=other.store_id)[0] == 401


def test_webhook_ids_are_remembered_per_store(local_stack: Any, other: Any) -> None:
    """An id used in one store is no "duplicate" in another: dedupe neither leaks nor swallows across stores."""
    stack = local_stack
    event = stack.cart_event(stack.new_id(), stack.unique_email(), stack.now(), consent=False)
    event_id = stack.new_id("evt")
    assert stack.post_event(event, event_id=event_id)[0] == 202
    assert stack.post_event(event, event_id=event_id, secret=other.secret, store=other.store_id) == (
        202,
        {"status": "accepted", "event_id": event_id},
    )


def test_fields_in_the_body_never_choose_the_store(local_stack: Any, other: Any) -> None:
    stack = local_stack
    cart_id = stack.new_id()
    event = stack.cart_event(cart_id, stack.unique_email(), stack.now(), consent=False)
    # Everything a confused or hostile sender might try to redirect the event with.
    event.update({"store_id": "demo", "store": "demo", "tenant": "demo"})
    event["cart"]["store_id"] = "demo"
    event["customer"]["store_id"] = "demo"

    status, answer = stack.post_event(event, secret=other.secret, store=other.store_id)
    assert status == 202, answer
    assert stack.cart(cart_id, store=other.store_id) is not None
    assert stack.cart(cart_id, store="demo") is None


def _retarget(token: str, store_id: str) -> str:
    """The same token with its store part rewritten (the MAC left as it was)."""
    payload, mac = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert body["s"] == "demo", body  # the part being tampered with really is the store
    body["s"] = store_id
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + mac


def test_an_unsubscribe_token_of_one_store_cannot_unsubscribe_in_another(local_stack: Any, other: Any) -> None:
    stack = local_stack
    stack.advance_to_local_time(10)
    email = stack.unique_email("both")  # one shopper with a cart in each store
    for store, secret in (("demo", stack.secret), (other.store_id, other.secret)):
        event = stack.cart_event(stack.new_id(), email, stack.now())
        assert stack.post_event(event, secret=secret, store=store)[0] == 202
    stack.advance(3 * 3600)
    by_store = {m["from"].rsplit("@", 1)[-1].rstrip(">"): m for m in stack.outbox(to=email)}
    assert len(by_store) == 2, by_store.keys()
    demo_message = next(m for domain, m in by_store.items() if other.store_id not in domain)
    url = stack.unsubscribe_url(demo_message)
    token = url.rsplit("/u/", 1)[1]
    one_click = {"content-type": "application/x-www-form-urlencoded"}

    forged = _retarget(token, other.store_id)
    for method in ("GET", "POST"):
        answer = stack.request(method, f"/u/{forged}", b"List-Unsubscribe=One-Click", one_click)
        assert answer.status == 404, (method, answer.status, answer.text)
        assert "text/html" in answer.headers.get("content-type", "")

    # The genuine token works, in its own store only.
    assert stack.request("POST", f"/u/{token}", b"List-Unsubscribe=One-Click", one_click).status == 200

    # Three days on, step 2 reaches the shopper from the other store only.
    stack.advance(3 * 86400)
    senders = [m["from"] for m in stack.outbox(to=email)]
    assert len(senders) == 3, senders
    assert other.store_id in senders[-1]
