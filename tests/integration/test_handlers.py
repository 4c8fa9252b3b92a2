"""The deployed Lambda entry points on moto, called as AWS calls them: API Gateway HTTP API (payload 2.0)
events for ingest and unsubscribe, the Scheduler's input for send, SQS-wrapped EventBridge SES events for
tracking. Business time comes from the frozen ``clock``; webhook signatures use the wall clock, as deployed."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from cartrecovery.clock import ManualClock, isoformat
from cartrecovery.domain.measurement import HOLDOUT, TREATED, group_for
from cartrecovery.domain.store import Store, StoreSettings
from cartrecovery.identity import email_hash
from cartrecovery.ports import ContactRecord
from cartrecovery.signing import signed_headers
from cartrecovery.usecases.report import build_report
from cartrecovery.wiring import Services
from tests.fakes import cart_updated, item_body, order_placed

if TYPE_CHECKING:
    from conftest import Deployment, Handlers

# Lambda logs this when an invocation has nothing to count (a confirmation page, a repeated event): expected.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

SHOPPER = "taro@example.jp"
MAX_BODY = 256 * 1024
ONE_CLICK = (b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded")  # RFC 8058's POST
SENT_AT = "2026-12-01T03:00:00.000Z"  # when send_step_one sends: two hours after the clock's start
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


@dataclass(frozen=True)
class Stack:
    """The functions and what they run on, for one test."""

    handlers: Handlers
    deployment: Deployment
    svc: Services
    store: Store
    clock: ManualClock
    outbox: Any


@pytest.fixture
def env(
    handlers: Handlers, deployment: Deployment, svc: Services, store: Store, clock: ManualClock, outbox: Any
) -> Stack:
    return Stack(handlers, deployment, svc, store, clock, outbox)


# ---- what AWS hands the functions ----


def http_event(
    method: str, path: str, route: str, params: dict[str, str], headers: dict[str, str], body: bytes, *, b64: bool
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event; header names arrive lower-cased."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"},
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "pathParameters": params,
        "isBase64Encoded": b64,
    }
    if body:
        event["body"] = base64.b64encode(body).decode("ascii") if b64 else body.decode("utf-8")
    return event


def scheduler_input(svc: Services, name: str, group: str) -> dict[str, Any]:
    """What EventBridge Scheduler passes the send function: the schedule's Input, as armed."""
    schedule = svc.scheduler_client.get_schedule(Name=name, GroupName=group)
    payload: dict[str, Any] = json.loads(schedule["Target"]["Input"])
    return payload


def sqs_ses_event(*details: dict[str, Any]) -> dict[str, Any]:
    """An SQS batch whose bodies are EventBridge events from SES (``source: aws.ses``)."""
    records = []
    for detail in details:
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": {"Delivery": "Email Delivered", "Bounce": "Email Bounced"}.get(detail["eventType"], "x"),
            "source": "aws.ses",
            "account": "123456789012",
            "time": detail["mail"]["timestamp"],
            "region": "ap-northeast-1",
            "resources": [],
            "detail": detail,
        }
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": json.dumps(envelope),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:ap-northeast-1:123456789012:ses-events",
                "awsRegion": "ap-northeast-1",
            }
        )
    return {"Records": records}


def ses_record(event_type: str, message_id: str, at: str, sent_at: str = SENT_AT, **block: Any) -> dict[str, Any]:
    """An SES event record of a message sent at ``sent_at``; a Click is a shopper's on a phone unless ``block``
    says otherwise (``userAgent``)."""
    tags = {"store": ["tea-shop"], "flow": ["cart_recovery"], "step": ["1"], "variant": ["a"], "day": ["2026-12-01"]}
    if event_type == "Click":
        block = {"userAgent": PHONE, "ipAddress": "198.51.100.7", **block}
    record = {
        "eventType": event_type,
        "mail": {
            "timestamp": sent_at,
            "messageId": message_id,
            "source": "shop@tea-shop.example.jp",
            "destination": [SHOPPER],
            "tags": {"ses:configuration-set": ["cartrecovery-test"], **tags},
        },
    }
    record[event_type.lower()] = {"timestamp": at, **block}
    return record


# ---- the store's side ----


def cart_event(occurred_at: Any, cart_id: str = "c-1", quantity: int = 2) -> dict[str, Any]:
    at = isoformat(occurred_at)
    items = [item_body(quantity=quantity)]
    return cart_updated(at, cart_id, SHOPPER, customer_id="u-1", timezone="Asia/Tokyo", items=items, consent_at=at)


class Answer:
    def __init__(self, result: dict[str, Any]) -> None:
        self.status: int = result["statusCode"]
        self.headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        raw = result.get("body") or ""
        self.text = base64.b64decode(raw).decode() if result.get("isBase64Encoded") else raw

    def json(self) -> Any:
        return json.loads(self.text)


def post_event(env: Stack, body: dict[str, Any] | bytes, **request: Any) -> Answer:
    """Sign (Standard Webhooks v1) and post one event to the ingest function."""
    return Answer(env.handlers.invoke("ingest", ingest_request(env, body, **request)))


def ingest_request(
    env: Stack,
    body: dict[str, Any] | bytes,
    *,
    event_id: str | None = None,
    secret: str | None = None,
    timestamp: int | None = None,
    store_id: str = "tea-shop",
    headers: dict[str, str] | None = None,
    b64: bool = False,
    raw_path: str | None = None,
    route: str = "/v1/stores/{store_id}/events",
) -> dict[str, Any]:
    """The API Gateway event of one signed post to ``route``; ``headers`` replace the signed ones."""
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    event_id = event_id or f"evt_{uuid.uuid4().hex}"
    signed = signed_headers(secret or env.deployment.webhook_secret, event_id, raw, timestamp)
    signed.update({name.lower(): value for name, value in (headers or {}).items()})
    path = raw_path or f"/v1/stores/{store_id}/events"
    return http_event("POST", path, route, {"store_id": store_id}, signed, raw, b64=b64)


def unsubscribe_request(env: Stack, method: str, token: str, body: bytes = b"", ctype: str = "") -> Answer:
    headers = {"Content-Type": ctype} if ctype else {}
    event = http_event(method, f"/u/{token}", "/u/{token}", {"token": token}, headers, body, b64=bool(body))
    return Answer(env.handlers.invoke("unsubscribe", event))


def contact(env: Stack, address: str = SHOPPER) -> ContactRecord | None:
    key = "e#" + email_hash(env.store.salt, address)
    return env.svc.contacts.get_many(env.store.store_id, [key]).get(key)


def counters(svc: Services) -> dict[str, Any]:
    rows = svc.ledger.report_rows("tea-shop", "2026-01-01", "2026-12-31")
    return {f"{r['day']}#{r['step']}": r for r in rows}


def fire_armed(env: Stack, cart_id: str = "c-1") -> Any:
    """The cart's armed schedule fires: the clock moves on to its time (never back) and the send function
    gets the schedule's input, as Scheduler gives it. Returns the function's answer."""
    cart = env.svc.carts.get("tea-shop", cart_id)
    assert cart is not None and cart.timer is not None
    env.clock.set(max(env.clock.now(), cart.timer.due_at))
    payload = scheduler_input(env.svc, cart.timer.schedule_name, env.deployment.schedule_group)
    return env.handlers.invoke("send", payload)


def hold_coupon_back_from_clickers(env: Stack) -> None:
    """The store's coupon (step 2) goes only to shoppers who did not click an earlier email."""
    coupon = {"code": "COMEBACK10", "description": "10%オフ", "only_if_not_clicked": True}
    settings = StoreSettings.from_dict(env.deployment.store_settings(coupon=coupon))
    env.svc.stores.save(dataclasses.replace(env.store, settings=settings))


def send_step_one(env: Stack) -> tuple[str, Any]:
    """A cart abandoned now and its first reminder sent two hours later; returns (message id, parsed email)."""
    assert post_event(env, cart_event(env.clock.now())).status == 202
    result = fire_armed(env)
    assert result["action"] == "sent", result
    [sent] = env.outbox()
    assert sent.id == result["message_id"]
    return sent.id, email.message_from_bytes(sent.raw_data.encode(), policy=email.policy.default)


# ---- ingest ----


@pytest.mark.parametrize("b64", [False, True], ids=["text-body", "base64-body"])
def test_a_signed_event_is_accepted_stored_and_arms_step_one(env: Stack, b64: bool) -> None:
    now = env.clock.now()

    answer = post_event(env, cart_event(now), event_id="evt_1", b64=b64)

    assert answer.status == 202
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {"status": "accepted", "event_id": "evt_1"}
    assert env.svc.events.get("tea-shop", "evt_1") is not None
    cart = env.svc.carts.get("tea-shop", "c-1")
    assert cart is not None and cart.customer.email == SHOPPER and cart.items[0].quantity == 2
    assert cart.timer is not None and cart.timer.due_at == now + timedelta(hours=2)
    payload = scheduler_input(env.svc, cart.timer.schedule_name, env.deployment.schedule_group)
    assert payload == {
        "store_id": "tea-shop",
        "cart_id": "c-1",
        "flow": "cart_recovery",
        "step": 1,
        "due_at": isoformat(cart.timer.due_at),
    }


def test_a_new_carts_first_event_writes_the_cart_once_with_its_timer(env: Stack) -> None:
    calls: list[str] = []
    env.svc.dynamodb.meta.events.register("after-call.dynamodb", lambda model, **_: calls.append(model.name))

    assert post_event(env, cart_event(env.clock.now())).status == 202
    assert post_event(env, cart_event(env.clock.now() + timedelta(minutes=5), quantity=3)).status == 202

    # First event: the store, the event log, a snapshot write that finds no cart, one write that creates
    # and arms it. Second: the store, the event log, and the snapshot write, which now applies without
    # reading the cart; the live timer is left for the step to re-arm when it fires.
    assert calls == ["GetItem", "PutItem", "UpdateItem", "UpdateItem", "GetItem", "PutItem", "UpdateItem"]
    cart = env.svc.carts.get("tea-shop", "c-1")
    assert cart is not None and cart.timer is not None and [d.action for d in cart.decisions] == ["armed"]
    assert scheduler_input(env.svc, cart.timer.schedule_name, env.deployment.schedule_group)["step"] == 1


def test_events_out_of_order_leave_the_cart_as_their_history_says_with_no_cart_read(env: Stack) -> None:
    start = env.clock.now()
    reads: list[str] = []
    env.svc.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.GetItem", lambda params, **_: reads.append(params["TableName"])
    )

    def post(at: timedelta, quantity: int) -> None:
        body = cart_event(start, quantity=quantity)
        body["occurred_at"] = (start + at).isoformat()  # with its fraction of a second, if any
        assert post_event(env, body).status == 202

    post(timedelta(0), 1)  # creates the cart and arms step 1
    post(timedelta(minutes=20), 3)  # newer: written without reading the cart
    post(timedelta(minutes=10), 2)  # late: refused, and the fold of the cart the refusal returned keeps minute 20
    post(timedelta(minutes=20, seconds=0.5), 4)  # newer by half a second: written without a read too
    post(timedelta(minutes=20, seconds=0.25), 7)  # late by a quarter second: refused, the fold keeps 0.5
    post(timedelta(minutes=5), 9)  # late again

    assert reads == [env.svc.settings.stores_table] * 6  # the store, once per event; never the cart
    cart = env.svc.carts.get("tea-shop", "c-1")
    assert cart is not None
    assert [item.quantity for item in cart.items] == [4]
    assert cart.last_activity_at == start + timedelta(minutes=20, seconds=0.5)  # stored to the microsecond
    assert cart.version == 3  # created, minute 20, minute 20 and a half: the late events wrote nothing
    assert cart.timer is not None and [d.action for d in cart.decisions] == ["armed"]


def test_a_redelivered_event_is_a_duplicate_with_no_second_effect(env: Stack) -> None:
    body = cart_event(env.clock.now())
    assert post_event(env, body, event_id="evt_1").status == 202
    version = env.svc.carts.get("tea-shop", "c-1").version

    # The same id with another body (a sender bug) is also a duplicate, and changes nothing either.
    again = post_event(env, body, event_id="evt_1")
    reused = post_event(env, cart_event(env.clock.now(), quantity=9), event_id="evt_1")

    assert (again.status, again.json()) == (200, {"status": "duplicate"})
    assert (reused.status, reused.json()) == (200, {"status": "duplicate"})
    cart = env.svc.carts.get("tea-shop", "c-1")
    assert cart.version == version and cart.items[0].quantity == 2


def _malformed_json(env: Stack) -> Answer:
    return post_event(env, b'{"type": "cart.updated", "occurred_at": ')


def _invalid_fields(env: Stack) -> Answer:
    body = cart_event(env.clock.now())
    body["cart"]["items"][0]["quantity"] = -1
    body["customer"]["email"] = "not-an-address"
    return post_event(env, body)


def _bad_signature(env: Stack) -> Answer:
    return post_event(env, cart_event(env.clock.now()), secret="whsec_d3Jvbmcta2V5")


def _stale_timestamp(env: Stack) -> Answer:
    stale = int(time.time()) - 301
    return post_event(env, cart_event(env.clock.now()), timestamp=stale)


def _missing_signature(env: Stack) -> Answer:
    body = cart_event(env.clock.now())
    return post_event(env, body, headers={"Webhook-Signature": ""})


def _unknown_store(env: Stack) -> Answer:
    return post_event(env, cart_event(env.clock.now()), store_id="no-such-shop")


def _malformed_store_id(env: Stack) -> Answer:
    return post_event(env, cart_event(env.clock.now()), store_id="Tea_Shop!")


def _wrong_content_type(env: Stack) -> Answer:
    body = cart_event(env.clock.now())
    return post_event(env, body, headers={"Content-Type": "text/plain"})


def _oversize(env: Stack) -> Answer:
    body = cart_event(env.clock.now())
    raw = json.dumps(body).encode()
    padded = raw[:-1] + b', "padding": "' + b"x" * (MAX_BODY - len(raw)) + b'"}'
    assert len(padded) > MAX_BODY
    return post_event(env, padded, b64=True)


REJECTIONS = {
    "malformed-json": (_malformed_json, 400),
    "invalid-fields": (_invalid_fields, 400),
    "bad-signature": (_bad_signature, 401),
    "stale-timestamp": (_stale_timestamp, 401),
    "missing-signature": (_missing_signature, 401),
    "unknown-store": (_unknown_store, 401),
    "malformed-store-id": (_malformed_store_id, 401),
    "wrong-content-type": (_wrong_content_type, 415),
    "oversize": (_oversize, 413),
}


@pytest.mark.parametrize("case", REJECTIONS, ids=list(REJECTIONS))
def test_a_rejected_request_gets_its_precise_problem_and_stores_nothing(env: Stack, case: str) -> None:
    make, status = REJECTIONS[case]

    answer = make(env)

    assert answer.status == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    if status == 400:
        assert problem["errors"] and all(set(e) == {"path", "message"} for e in problem["errors"])
    else:
        assert "errors" not in problem
    assert env.svc.carts.get("tea-shop", "c-1") is None
    assert env.svc.dynamodb.scan(TableName=env.svc.settings.events_table)["Count"] == 0


def test_invalid_fields_are_each_listed_with_their_json_path(env: Stack) -> None:
    problem = _invalid_fields(env).json()

    assert {e["path"] for e in problem["errors"]} == {"cart.items[0].quantity", "customer.email"}


def test_every_authentication_failure_looks_the_same(env: Stack) -> None:
    bodies = {json.dumps(make(env).json(), sort_keys=True) for make, status in REJECTIONS.values() if status == 401}

    assert len(bodies) == 1


def test_the_route_is_the_one_api_gateway_matched_whatever_the_raw_path(env: Stack) -> None:
    # A named stage or a custom domain's base path prefixes the raw path; API Gateway's route key names the
    # route all the same, and that is what the function goes by.
    event = ingest_request(
        env, cart_event(env.clock.now()), event_id="evt_1", raw_path="/prod/shop/v1/stores/tea-shop/events"
    )

    answer = Answer(env.handlers.invoke("ingest", event))

    assert (answer.status, answer.json()) == (202, {"status": "accepted", "event_id": "evt_1"})
    assert env.svc.carts.get("tea-shop", "c-1") is not None


def test_a_route_the_function_does_not_serve_is_a_404_that_stores_nothing(env: Stack) -> None:
    event = ingest_request(env, cart_event(env.clock.now()), route="/v1/stores/{store_id}/other")

    answer = Answer(env.handlers.invoke("ingest", event))
    page = unsubscribe_request(env, "DELETE", "some-token")

    assert answer.status == 404 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 404
    assert env.svc.dynamodb.scan(TableName=env.svc.settings.events_table)["Count"] == 0
    assert page.status == 404 and page.headers["content-type"].startswith("text/html")


def _failing(env: Stack, operation: str, code: str) -> Callable[..., None]:
    """Make every ``operation`` DynamoDB call fail with ``code``; returns the hook, to unregister it."""

    def fail(**_: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    env.svc.dynamodb.meta.events.register(f"before-call.dynamodb.{operation}", fail)
    return fail


@pytest.mark.parametrize(
    ("code", "status", "retry_after"),
    [("ProvisionedThroughputExceededException", 429, "2"), ("InternalServerError", 503, "5")],
    ids=["throttled", "down"],
)
def test_a_failing_dependency_asks_the_sender_to_retry_and_the_retry_completes_the_event(
    env: Stack, code: str, status: int, retry_after: str
) -> None:
    hook = _failing(env, "UpdateItem", code)
    body = cart_event(env.clock.now())

    answer = post_event(env, body, event_id="evt_1")

    assert answer.status == status and answer.headers["retry-after"] == retry_after
    assert answer.headers["content-type"] == "application/problem+json" and answer.json()["status"] == status
    assert env.svc.carts.get("tea-shop", "c-1") is None
    env.svc.dynamodb.meta.events.unregister("before-call.dynamodb.UpdateItem", hook)
    # The id was logged before the cart write failed: the sender's retry is a duplicate that finishes the job.
    retry = post_event(env, body, event_id="evt_1")
    assert (retry.status, retry.json()) == (200, {"status": "duplicate"})
    cart = env.svc.carts.get("tea-shop", "c-1")
    assert cart is not None and cart.timer is not None


def test_the_unsubscribe_page_asks_for_a_retry_when_the_unsubscribe_cannot_be_written(env: Stack) -> None:
    _, sent = send_step_one(env)
    token = sent["List-Unsubscribe"].strip("<>").rsplit("/u/", 1)[1]
    hook = _failing(env, "UpdateItem", "InternalServerError")

    answer = unsubscribe_request(env, "POST", token, *ONE_CLICK)

    assert answer.status == 503 and answer.headers["retry-after"] == "5"
    assert answer.headers["content-type"].startswith("text/html") and answer.headers["cache-control"] == "no-store"
    assert "もう一度お試しください" in answer.text and "無効" not in answer.text
    before = contact(env)
    assert before is None or before.unsubscribed_at is None
    env.svc.dynamodb.meta.events.unregister("before-call.dynamodb.UpdateItem", hook)
    assert unsubscribe_request(env, "POST", token, *ONE_CLICK).status == 200
    after = contact(env)
    assert after is not None and after.unsubscribed_at is not None


# ---- send ----


def test_step_one_is_sent_once_even_when_the_schedule_fires_twice(env: Stack) -> None:
    message_id, sent = send_step_one(env)
    cart = env.svc.carts.get("tea-shop", "c-1")
    step_one = cart.steps["cart_recovery#1"]

    # Scheduler (or Lambda) delivers the same firing again.
    payload = {"store_id": "tea-shop", "cart_id": "c-1", "flow": "cart_recovery", "step": 1}
    again = env.handlers.invoke("send", payload)

    assert again["action"] != "sent" and again["message_id"] is None
    assert len(env.outbox()) == 1
    assert sent["To"] == SHOPPER
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent["List-Unsubscribe"].startswith(f"<{env.deployment.public_base_url}/u/")
    cart = env.svc.carts.get("tea-shop", "c-1")
    assert cart.steps["cart_recovery#1"] == step_one
    assert step_one.status == "sent" and step_one.message_id == message_id
    assert cart.timer is not None and cart.timer.step == 2  # the next step is armed
    assert counters(env.svc)["2026-12-01#1"]["sent"] == 1
    record = env.svc.ledger.get(message_id)
    assert record is not None and record.cart_id == "c-1"


def test_a_store_that_holds_the_coupon_back_from_clickers_skips_step_two_after_a_click(env: Stack) -> None:
    hold_coupon_back_from_clickers(env)
    message_id, _ = send_step_one(env)
    click = ses_record("Click", message_id, "2026-12-01T05:10:00.000Z", link="https://shop.example.jp/cart")
    assert env.handlers.invoke("tracking", sqs_ses_event(click)) == {"batchItemFailures": []}

    cart = env.svc.carts.get("tea-shop", "c-1")
    assert cart is not None and cart.timer is not None and cart.timer.step == 2
    result = fire_armed(env)

    assert (result["action"], result["reason"]) == ("skipped", "clicked_earlier")
    assert len(env.outbox()) == 1
    cart = env.svc.carts.get("tea-shop", "c-1")
    assert cart is not None and cart.timer is not None and cart.timer.step == 3


# ---- holdout ----


def test_a_holdout_store_sends_to_one_group_only_and_credits_orders_to_both(env: Stack) -> None:
    settings = StoreSettings.from_dict(env.deployment.store_settings(holdout_percent=50))
    env.svc.stores.save(dataclasses.replace(env.store, settings=settings))
    shoppers: dict[str, str] = {}
    for n in range(200):
        address = f"shopper{n}@example.jp"
        shoppers.setdefault(group_for(email_hash(env.store.salt, address), "cart_recovery", 50), address)
    at = isoformat(env.clock.now())
    for group, address in shoppers.items():
        body = cart_updated(at, f"c-{group}", address, items=[item_body()], consent_at=at)
        assert post_event(env, body).status == 202
    env.clock.set(env.clock.now() + timedelta(hours=2, minutes=1))
    results = {group: fire_armed(env, f"c-{group}") for group in (HOLDOUT, TREATED)}

    assert (results[HOLDOUT]["action"], results[HOLDOUT]["reason"]) == ("skipped", "holdout")
    assert results[TREATED]["action"] == "sent"
    [sent] = env.outbox()
    assert set(sent.destinations) == {shoppers[TREATED]}
    held = env.svc.carts.get("tea-shop", f"c-{HOLDOUT}")
    assert held is not None and held.timer is None

    # The held-out shopper buys on another device (no cart named); the treated one buys the cart.
    later = isoformat(env.clock.now() + timedelta(days=1))
    orders = [
        order_placed(later, None, shoppers[HOLDOUT], order_id="o-h", total=4000),
        order_placed(later, f"c-{TREATED}", shoppers[TREATED], order_id="o-t", total=3000),
    ]
    for order in orders:
        assert post_event(env, order).status == 202
    assert post_event(env, orders[0]).status == 202  # the shop sends it again under a new webhook-id

    day = env.clock.now().date()
    report = build_report(env.svc.ledger, "tea-shop", day, day)
    (flow,) = report["holdout"]
    assert (flow[HOLDOUT]["carts"], flow[HOLDOUT]["converted"]) == (1, 1)
    assert (flow[HOLDOUT]["revenue"], flow[TREATED]["revenue"]) == (4000, 3000)
    assert (flow[TREATED]["carts"], flow[TREATED]["converted"]) == (1, 1)
    assert report["totals"]["converted"] == 1 and report["totals"]["revenue"] == 3000  # the email's credit only


def test_a_mail_scanners_click_does_not_hold_the_coupon_back(env: Stack) -> None:
    """A security gateway follows step 1's link two seconds after the send, with a browser's user agent: no
    shopper clicked, so the coupon email still goes."""
    hold_coupon_back_from_clickers(env)
    message_id, _ = send_step_one(env)
    scan = ses_record("Click", message_id, "2026-12-01T03:00:02.000Z", link="https://shop.example.jp/cart")
    assert env.handlers.invoke("tracking", sqs_ses_event(scan)) == {"batchItemFailures": []}
    assert set(env.svc.ledger.get(message_id).marks) == {"bot_clicked"}

    cart = env.svc.carts.get("tea-shop", "c-1")
    assert cart is not None and cart.timer is not None and cart.timer.step == 2
    result = fire_armed(env)

    assert result["action"] == "sent", result
    assert len(env.outbox()) == 2


# ---- tracking ----


def test_tracking_records_a_delivery_once_and_retries_an_event_that_beat_the_send(env: Stack) -> None:
    message_id, _ = send_step_one(env)
    delivered = ses_record("Delivery", message_id, "2026-12-01T05:00:05.000Z", recipients=[SHOPPER])
    early = ses_record("Delivery", "not-yet-recorded", "2026-12-01T05:00:05.000Z", recipients=[SHOPPER])
    batch = sqs_ses_event(delivered, early, delivered)

    result = env.handlers.invoke("tracking", batch)

    assert result == {"batchItemFailures": [{"itemIdentifier": batch["Records"][1]["messageId"]}]}
    record = env.svc.ledger.get(message_id)
    assert record is not None and record.marks == {"delivered": "2026-12-01T05:00:05Z"}
    assert counters(env.svc)["2026-12-01#1"]["delivered"] == 1


def test_a_hard_bounce_suppresses_the_address_and_stops_the_next_step(env: Stack) -> None:
    message_id, _ = send_step_one(env)
    soft = ses_record("Bounce", message_id, "2026-12-01T05:00:05.000Z", bounceType="Transient")
    assert env.handlers.invoke("tracking", sqs_ses_event(soft)) == {"batchItemFailures": []}
    assert contact(env).suppressed_reason is None

    hard = ses_record(
        "Bounce",
        message_id,
        "2026-12-01T05:00:06.000Z",
        bounceType="Permanent",
        bounceSubType="General",
        bouncedRecipients=[{"emailAddress": SHOPPER}],
    )
    assert env.handlers.invoke("tracking", sqs_ses_event(hard)) == {"batchItemFailures": []}

    assert contact(env).suppressed_reason == "bounced"
    result = fire_armed(env)
    assert (result["action"], result["reason"]) == ("skipped", "suppressed")
    assert len(env.outbox()) == 1


def test_a_hard_bounce_whose_suppression_failed_suppresses_when_sqs_redelivers_it(env: Stack) -> None:
    message_id, _ = send_step_one(env)
    hard = ses_record("Bounce", message_id, "2026-12-01T05:00:06.000Z", bounceType="Permanent")
    failures = []

    def throttle_suppression_once(params: dict[str, Any], **_: Any) -> None:
        if params["TableName"] == env.svc.settings.contacts_table and not failures:
            failures.append(params)
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise ClientError(error, "UpdateItem")

    env.svc.dynamodb.meta.events.register("provide-client-params.dynamodb.UpdateItem", throttle_suppression_once)
    delivered = ses_record("Delivery", message_id, "2026-12-01T05:00:05.000Z")
    batch = sqs_ses_event(delivered, hard)

    # The bounce is counted, then the suppression write fails: that record goes back to the queue.
    first = env.handlers.invoke("tracking", batch)
    assert first == {"batchItemFailures": [{"itemIdentifier": batch["Records"][1]["messageId"]}]}
    assert len(failures) == 1
    assert counters(env.svc)["2026-12-01#1"]["bounced"] == 1

    redelivery = {"Records": batch["Records"][1:]}
    assert env.handlers.invoke("tracking", redelivery) == {"batchItemFailures": []}
    assert contact(env).suppressed_reason == "bounced"
    assert counters(env.svc)["2026-12-01#1"]["bounced"] == 1


# ---- unsubscribe ----


def test_unsubscribe_get_only_shows_a_page_and_post_unsubscribes(env: Stack) -> None:
    _, sent = send_step_one(env)
    token = sent["List-Unsubscribe"].strip("<>").rsplit("/u/", 1)[1]

    page = unsubscribe_request(env, "GET", token)

    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert "抹茶堂" in page.text and "<form" in page.text
    before = contact(env)
    assert before is None or before.unsubscribed_at is None

    not_one_click = unsubscribe_request(env, "POST", token, b"foo=bar", "application/x-www-form-urlencoded")
    assert not_one_click.status == 400
    assert contact(env).unsubscribed_at is None

    done = unsubscribe_request(env, "POST", token, *ONE_CLICK)
    boundary = "----form7MA4YWxk"
    multipart = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    )
    again = unsubscribe_request(env, "POST", token, multipart.encode(), f"multipart/form-data; boundary={boundary}")

    assert done.status == 200 and again.status == 200
    assert "location" not in done.headers
    assert contact(env).unsubscribed_at == env.clock.now().replace(microsecond=0)
    assert counters(env.svc)["2026-12-01#1"]["unsubscribed"] == 1
    cart = env.svc.carts.get("tea-shop", "c-1")
    env.clock.set(cart.timer.due_at)
    result = env.handlers.invoke("send", {"store_id": "tea-shop", "cart_id": "c-1", "flow": "cart_recovery", "step": 2})
    assert (result["action"], result["reason"]) == ("skipped", "unsubscribed")
    assert len(env.outbox()) == 1


def test_a_tampered_or_unknown_token_is_a_404_page(env: Stack) -> None:
    _, sent = send_step_one(env)
    token = sent["List-Unsubscribe"].strip("<>").rsplit("/u/", 1)[1]
    payload, mac = token.split(".")
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert b'"n":1' in decoded
    forged = base64.urlsafe_b64encode(decoded.replace(b'"n":1', b'"n":2')).rstrip(b"=").decode()
    other_store = base64.urlsafe_b64encode(decoded.replace(b'"tea-shop"', b'"no-such-shop"')).rstrip(b"=").decode()

    for bad in (f"{forged}.{mac}", f"{other_store}.{mac}", token[:-2], f"{payload}.{'é' * 22}", "garbage"):
        for method in ("GET", "POST"):
            answer = unsubscribe_request(env, method, bad, *(ONE_CLICK if method == "POST" else ()))
            assert answer.status == 404, (method, bad)
            assert answer.headers["content-type"].startswith("text/html")
    assert contact(env).unsubscribed_at is None
