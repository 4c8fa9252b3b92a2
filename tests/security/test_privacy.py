"""Personal data stays where it must be and nowhere else: never in logs; suppressions as a salted hash only;
a data subject's erasure removes carts, events, messages and pending schedules but keeps the suppression;
carts expire after the retention period. A full scenario over HTTP on the local stack, in a store of its
own (created by the CLI, so its secrets are printed nowhere but to the operator)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

RETENTION = timedelta(days=90)  # the documented default for carts
BANNER_END = "Press Ctrl+C to stop."


def _items(dynamodb: Any, table: str, store_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "store_id = :s",
        "ExpressionAttributeValues": {":s": {"S": store_id}},
        "ConsistentRead": True,
    }
    while True:
        page = dynamodb.query(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _forms(text: str) -> list[str]:
    """The ways a value could show up in a log line: as is, JSON-escaped, URL-encoded."""
    return [text, json.dumps(text)[1:-1], urllib.parse.quote(text), urllib.parse.quote_plus(text)]


@pytest.fixture(scope="module")
def scenario(local_stack: Any, new_store: Callable[[], Any]) -> dict[str, Any]:
    """A store with two named shoppers: Hanako gets step 1, opens, clicks and orders; Jiro's step 1 bounces,
    and he has a second, newer cart whose step is still pending."""
    stack = local_stack
    store = new_store()
    tag = uuid.uuid4().hex[:8]
    people = {
        "hanako": (stack.unique_email("hanako"), f"秘密 花子 {tag}"),
        "jiro": (stack.unique_email("jiro"), f"Jiro Himitsu-{tag}"),
    }
    stack.advance_to_local_time(10)
    carts = {}
    for who, (email, name) in people.items():
        cart_id = stack.new_id()
        event = stack.cart_event(cart_id, email, stack.now(), name=name)
        assert stack.post_event(event, secret=store.secret, store=store.store_id)[0] == 202
        carts[who] = (cart_id, event["occurred_at"])
    # Personal data in requests that are refused: a 400 (negative quantity) and a 401 (wrong key).
    hanako_email, hanako_name = people["hanako"]
    bad = stack.cart_event(stack.new_id(), hanako_email, stack.now(), name=hanako_name)
    bad["cart"]["items"][0]["quantity"] = -1
    assert stack.post_event(bad, secret=store.secret, store=store.store_id)[0] == 400
    assert stack.post_event(bad, secret=stack.secret, store=store.store_id)[0] == 401

    stack.advance(3 * 3600)
    messages = {}
    for who, (email, _) in people.items():
        (message,) = stack.outbox(to=email)
        messages[who] = message["message_id"]
    for kind in ("open", "click"):
        assert stack.ses(messages["hanako"], kind).status == 200
    order = stack.order_event(carts["hanako"][0], hanako_email, stack.now())
    assert stack.post_event(order, secret=store.secret, store=store.store_id)[0] == 202
    assert stack.ses(messages["jiro"], "bounce").status == 200

    jiro_email, jiro_name = people["jiro"]
    later_cart = stack.new_id()
    event = stack.cart_event(later_cart, jiro_email, stack.now(), name=jiro_name)
    assert stack.post_event(event, secret=store.secret, store=store.store_id)[0] == 202
    return {"store": store, "people": people, "carts": carts, "messages": messages, "jiro_later_cart": later_cart}


def test_a_suppression_is_kept_as_a_salted_hash_only(
    local_stack: Any, scenario: dict[str, Any], dynamodb: Any, tables: dict[str, str]
) -> None:
    store = scenario["store"]
    email, name = scenario["people"]["jiro"]
    contacts = _items(dynamodb, tables["contacts"], store.store_id)
    suppressed = [c for c in contacts if "suppressed" in c]
    assert len(suppressed) == 1, contacts
    (entry,) = suppressed
    key = entry["contact_key"]["S"]
    assert key.startswith("e#")
    digest = key.removeprefix("e#")
    assert len(digest) == 40 and all(c in "0123456789abcdef" for c in digest)
    # Salted per store: not the plain hash of the address, so a list of addresses cannot be matched.
    assert digest not in (hashlib.sha256(email.encode()).hexdigest(), hashlib.sha256(email.encode()).hexdigest()[:40])
    jiro_cart = local_stack.cart(scenario["carts"]["jiro"][0], store=store.store_id)
    assert jiro_cart["customer"]["email_hash"] == digest
    assert jiro_cart["customer"]["email"] != email  # the console shows a masked address
    for item in contacts:
        dumped = json.dumps(item, ensure_ascii=False)
        assert email not in dumped and name not in dumped
        assert scenario["people"]["hanako"][0] not in dumped


def test_cart_items_expire_after_the_retention_period(
    scenario: dict[str, Any], dynamodb: Any, tables: dict[str, str]
) -> None:
    store = scenario["store"]
    cart_id, occurred_at = scenario["carts"]["hanako"]
    item = dynamodb.get_item(
        TableName=tables["carts"],
        Key={"store_id": {"S": store.store_id}, "cart_id": {"S": cart_id}},
        ConsistentRead=True,
    )["Item"]
    expected = datetime.fromisoformat(occurred_at) + RETENTION
    assert int(item["expires_at"]["N"]) == int(expected.timestamp())
    ttl = dynamodb.describe_time_to_live(TableName=tables["carts"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_erase_removes_a_shopper_but_keeps_the_hashed_suppression(
    local_stack: Any,
    scenario: dict[str, Any],
    cli: Callable[..., subprocess.CompletedProcess[str]],
    dynamodb: Any,
    tables: dict[str, str],
) -> None:
    stack = local_stack
    store = scenario["store"]
    email, name = scenario["people"]["jiro"]
    jiro_carts = {scenario["carts"]["jiro"][0], scenario["jiro_later_cart"]}
    jiro_message = scenario["messages"]["jiro"]
    pending = [s for s in stack.get("/_local/schedules").json()["schedules"] if s["payload"]["cart_id"] in jiro_carts]
    assert pending, "the later cart's step should be scheduled before the erasure"
    suppressed_before = [c for c in _items(dynamodb, tables["contacts"], store.store_id) if "suppressed" in c]
    proof_key = "p#" + suppressed_before[0]["contact_key"]["S"].removeprefix("e#")
    [proof_before] = [
        c for c in _items(dynamodb, tables["contacts"], store.store_id) if c["contact_key"]["S"] == proof_key
    ]
    events_before = _items(dynamodb, tables["events"], store.store_id)
    assert len([e for e in events_before if e.get("cart_id", {}).get("S") in jiro_carts]) == 2
    assert "Item" in dynamodb.get_item(TableName=tables["messages"], Key={"message_id": {"S": jiro_message}})

    done = cli("erase", "--store", store.store_id, "--email", email.upper())  # as the data subject typed it
    assert "erased 2 cart(s), 2 event(s), 1 message(s)" in done.stdout, done.stdout
    assert email not in done.stdout + done.stderr

    assert {c["cart_id"] for c in stack.carts(store.store_id)} & jiro_carts == set()
    events = _items(dynamodb, tables["events"], store.store_id)
    assert [e for e in events if e.get("cart_id", {}).get("S") in jiro_carts] == []
    # The message keeps its report row and the salted hash (for a late complaint), nothing of the cart.
    stripped = dynamodb.get_item(TableName=tables["messages"], Key={"message_id": {"S": jiro_message}})["Item"]
    assert "cart_id" not in stripped and not any(name.endswith("_url") for name in stripped)
    assert {"store_id", "email_hash", "day", "step"} <= set(stripped)
    schedules = stack.get("/_local/schedules").json()["schedules"]
    assert [s for s in schedules if s["payload"]["cart_id"] in jiro_carts] == []
    # The suppression survives, as nothing but its hash and reason.
    suppressed_after = [c for c in _items(dynamodb, tables["contacts"], store.store_id) if "suppressed" in c]
    assert [(c["contact_key"], c["suppressed"]) for c in suppressed_after] == [
        (c["contact_key"], c["suppressed"]) for c in suppressed_before
    ]
    assert set(suppressed_after[0]) == {"store_id", "contact_key", "suppressed"}
    # The consent proof stays until its own expiry, without the last email (docs/decisions.md, Erasure).
    [proof_after] = [
        c for c in _items(dynamodb, tables["contacts"], store.store_id) if c["contact_key"]["S"] == proof_key
    ]
    assert "last_message" in proof_before and "last_message" not in proof_after
    assert (proof_after["history"], proof_after["expires_at"]) == (proof_before["history"], proof_before["expires_at"])
    # Only that shopper: Hanako's cart and message are still there.
    assert stack.cart(scenario["carts"]["hanako"][0], store=store.store_id) is not None
    hanako_message = {"message_id": {"S": scenario["messages"]["hanako"]}}
    assert "Item" in dynamodb.get_item(TableName=tables["messages"], Key=hanako_message)

    # The kept suppression does its job: a new cart of the erased address is never emailed.
    stack.advance_to_local_time(10)
    event = stack.cart_event(stack.new_id(), email, stack.now(), name=name)
    assert stack.post_event(event, secret=store.secret, store=store.store_id)[0] == 202
    stack.advance(3 * 3600)
    assert [m["message_id"] for m in stack.outbox(to=email)] == [jiro_message], "emailed again after erasure"


def test_no_address_name_or_secret_in_the_logs(local_stack: Any, scenario: dict[str, Any]) -> None:
    """Read last, after the whole scenario, the erasure included."""
    log = local_stack.log_text()
    assert BANNER_END in log
    # What is searched holds the functions' own lines and their metrics (embedded metric format, with every
    # dimension), so a clean result covers log fields and metric dimensions alike.
    assert "step run" in log
    assert '"_aws"' in log and '"CloudWatchMetrics"' in log
    store = scenario["store"]
    secrets = [store.secret, store.secret.removeprefix("whsec_"), store.shopify_secret]
    personal = [value for email, name in scenario["people"].values() for value in (email, name)]
    for value in personal + secrets:
        for form in _forms(value):
            assert form not in log, f"{value!r} appears in the stack's log"
    # The demo store's secret is printed once on purpose (CONTRACT §3: the start banner), never after it.
    after_banner = log.split(BANNER_END, 1)[1]
    assert local_stack.secret not in after_banner
