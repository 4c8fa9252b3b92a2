"""CPU per accepted event in a warm ingest handler with AWS stubbed, against a floor handler that does only
what no ingest can skip: parse the JSON, check the HMAC, write one item.

Both handlers get the same API Gateway events, those of the reference lifecycle: four per cart, the first
of which creates the cart and arms its timer (for the other three the stub answers as for a stored cart;
before the first it refuses, as DynamoDB does, a write whose condition needs the cart to exist). CPU time
is ``time.process_time`` over a batch of four carts' events. The handlers take turns batch by batch, 125
rounds, and each ratio is the median over the rounds of the two handlers' figures in that round: a slow
spell of a shared machine outlasts a round, so it slows both sides of a ratio alike. (Timing each handler
for a second at a time, as this used to, let the ratio swing by 15% between runs; the median of per-round
ratios moves by about 3%.) Log output goes to /dev/null but is still produced, as in Lambda.

The product runs with the store cache ``template.yaml`` gives the ingest function: the events of a batch
come within seconds, so its copy of the store answers them all, as in a container busy enough to see a
store's next event within the cache time. The same handler with no cache (a store read on every event, the
case of a quiet store) is measured beside it (``store_read_each_event``).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import io
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.awsrequest import AWSResponse

from bench import REPO
from bench.lifecycle import cart_event
from bench.moto_stack import SECRET, bench_settings, lambda_environment, signed_api_event
from bench.timing import median
from cartrecovery.adapters.dynamo_codec import to_item
from cartrecovery.adapters.scheduler import EventBridgeSchedules
from cartrecovery.adapters.stores import encode_store
from cartrecovery.domain.cart import Timer
from cartrecovery.local.demo import demo_store_settings
from cartrecovery.local.lambda_invoke import LambdaContext, load_module
from cartrecovery.settings import Settings
from cartrecovery.signing import secret_key
from cartrecovery.usecases.stores import new_store

EVENTS_PER_CART = 4
EVENTS = 4 * EVENTS_PER_CART  # one batch: four carts' events
WARM_BATCHES = 12
ROUNDS = 125
TARGET_RATIO = 3.0
CONDITION_FAILED = json.dumps(
    {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "message": "failed"}
).encode()


class _Body(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.read()


class StubAws:
    """Answers every request at the HTTP layer as AWS would for a new cart: the store exists, nothing else
    does. botocore still validates, serialises, signs and parses each call, as it does in Lambda."""

    def __init__(self, settings: Settings, store_item: dict[str, Any], cart_item: dict[str, Any]) -> None:
        self.store_body = json.dumps({"Item": store_item}).encode()
        self.cart_body = json.dumps({"Item": cart_item}).encode()
        self.stores_table = json.dumps(settings.stores_table).encode()
        self.carts_table = json.dumps(settings.carts_table).encode()
        self.cart_exists = False  # set before each event: the cart is already stored
        self.requests = 0
        self.refusals = 0

    def install(self, session: Any) -> None:
        session.events.register("before-send", self.respond)

    def respond(self, request: Any, **_: Any) -> AWSResponse:
        self.requests += 1
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        if self._refused(target, body):
            self.refusals += 1
            headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "stub"}
            return AWSResponse(request.url, 400, headers, _Body(CONDITION_FAILED))
        if target.endswith(".GetItem") and self.stores_table in body:
            answer = self.store_body
        elif target.endswith(".GetItem") and self.cart_exists and self.carts_table in body:
            answer = self.cart_body
        elif target.endswith(".BatchGetItem"):
            answer = b'{"Responses": {}}'
        elif "scheduler" in request.url:
            answer = b'{"ScheduleArn": "arn:aws:scheduler:ap-northeast-1:123456789012:schedule/g/s"}'
        else:
            answer = b"{}"
        headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "stub"}
        return AWSResponse(request.url, 200, headers, _Body(answer))

    def _refused(self, target: str, body: bytes) -> bool:
        """A conditional cart write before the cart exists, other than the one that creates it."""
        return (
            not self.cart_exists
            and target.endswith(".UpdateItem")
            and self.carts_table in body
            and b"attribute_not_exists(cart_id)" not in body
        )


def _settings() -> Settings:
    names = ("stores", "events", "carts", "contacts", "messages", "counters")
    return bench_settings({f"{n}_table": n for n in names})


def _store_item() -> dict[str, Any]:
    from cartrecovery.domain.store import StoreSettings

    store = new_store(StoreSettings.from_dict(demo_store_settings()), datetime.now(UTC), webhook_secret=SECRET)
    return to_item(encode_store(store))


def floor_handler(client: Any, key: bytes) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """JSON parse, HMAC check, one put: the least an ingest can do."""

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        headers = event["headers"]
        body = base64.b64decode(event["body"])
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        if not any(hmac.compare_digest(expected, s.partition(",")[2]) for s in headers["webhook-signature"].split()):
            return {"statusCode": 401}
        data = json.loads(body)
        client.put_item(
            TableName="events",
            Item={"store_id": {"S": "demo"}, "event_id": {"S": headers["webhook-id"]}, "type": {"S": data["type"]}},
            ConditionExpression="attribute_not_exists(event_id)",
        )
        return {"statusCode": 202, "body": json.dumps({"status": "accepted", "event_id": headers["webhook-id"]})}

    return handle


def calls_floor_handler(
    client: Any, scheduler: Any, key: bytes, cart_item: dict[str, Any]
) -> Callable[[dict[str, Any], Any], Any]:
    """The floor handler plus the other calls a warm ingest function makes of every cart event, and nothing
    else: the cart write, which a new cart's first event makes twice (refused, then creating) before it
    creates the cart's schedule; the store comes from the function's copy. Against it, the product's own
    overhead shows apart from its calls."""
    put = floor_handler(client, key)
    cart_values = {k: v for k, v in cart_item.items() if k not in ("store_id", "cart_id")}
    names = {f"#a{i}": name for i, name in enumerate(cart_values)}
    cart_write = {
        "TableName": "carts",
        "Key": {"store_id": {"S": "demo"}, "cart_id": {"S": "c"}},
        "UpdateExpression": "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(names))),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {f":a{i}": value for i, value in enumerate(cart_values.values())},
    }
    # The schedule request as the product makes it: through its own adapter, with no other work around it.
    schedules = EventBridgeSchedules(
        scheduler,
        "bench",
        "arn:aws:lambda:ap-northeast-1:123456789012:function:bench-send",
        "arn:aws:iam::123456789012:role/bench-scheduler",
        "arn:aws:sqs:ap-northeast-1:123456789012:bench-dlq",
    )
    timer = Timer("cart_recovery", 1, datetime(2026, 12, 1, 2, tzinfo=UTC), "cr-0123456789abcdef0123456789abcdef")
    payload = {"store_id": "demo", "cart_id": "c-0123456789ab", "flow": "cart_recovery", "step": 1}

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        answer = put(event, context)
        try:
            client.update_item(**cart_write, ConditionExpression="attribute_exists(cart_id)")
        except client.exceptions.ConditionalCheckFailedException:
            client.update_item(**cart_write, ConditionExpression="attribute_not_exists(cart_id)")
            schedules.arm(timer, payload)
        return answer

    return handle


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _stored_cart(settings: Settings, first_event: dict[str, Any]) -> dict[str, Any]:
    """A cart as DynamoDB holds it after its first event: folded, with its step-1 timer armed."""
    from cartrecovery.adapters.carts import encode_decision, encode_timer, fold_fields
    from cartrecovery.domain.cart import Decision, fold
    from cartrecovery.domain.events import parse_event
    from cartrecovery.domain.store import StoreSettings
    from cartrecovery.domain.timing import timer_for

    cart = fold(None, parse_event(first_event), "demo", first_event["cart"]["id"])
    flow = StoreSettings.from_dict(demo_store_settings()).flows["cart_recovery"]
    now = datetime.now(UTC)
    timer = timer_for(cart, flow, flow.steps[0], now)
    stored = {
        **fold_fields(cart),
        "store_id": "demo",
        "cart_id": cart.cart_id,
        "version": 1,
        "steps": {},
        "decisions": [encode_decision(Decision(now, "armed", flow.name, 1, until=timer.due_at))],
        "timer": encode_timer(timer),
        "expires_at": int(now.timestamp()) + 90 * 86400,
    }
    return to_item(stored)


def _events(count: int) -> list[tuple[bool, dict[str, Any]]]:
    """(cart already stored, API event) for ``count`` events, four per cart."""
    start = datetime.now(UTC) - timedelta(hours=1)
    events = []
    for index in range(count):
        if index % EVENTS_PER_CART == 0:
            cart_id = f"c-{uuid.uuid4().hex[:12]}"
        body = cart_event(cart_id, "taro@example.jp", start + timedelta(minutes=index % EVENTS_PER_CART), 2)
        events.append((index % EVENTS_PER_CART > 0, signed_api_event(body)))
    return events


def _cpu_us_per_event(handler: Callable[[dict[str, Any], Any], Any], context: Any, stub: StubAws) -> float:
    events = _events(EVENTS)
    with _quiet_stdout():
        start = time.process_time()
        for exists, event in events:
            stub.cart_exists = exists
            answer = handler(event, context)
            assert answer["statusCode"] == 202, answer
        spent = time.process_time() - start
    return spent / EVENTS * 1e6


def _check_refusals(handler: str, refused: int, events: int) -> None:
    """The stub tells a new cart's creating write from its other cart writes by the condition's text. Should
    it misjudge them (the adapter's conditions reworded), a cart's first event would meet no refusal and the
    figures would silently lose a call per cart. So each cart's first event must meet exactly one refusal in
    the handlers that write carts, and the floors none."""
    expected = events // EVENTS_PER_CART if handler in ("product", "uncached", "calls") else 0
    if refused != expected:
        raise RuntimeError(f"the {handler} handler met {refused} refused cart writes, expected {expected}")


def _in_container(services: Any, handler: Callable[[dict[str, Any], Any], Any]) -> Callable[[dict[str, Any], Any], Any]:
    """``handler`` invoked in the container ``services`` stands for (its settings, clients and caches)."""
    from cartrecovery import wiring

    def invoke(event: dict[str, Any], context: Any) -> Any:
        wiring.use(services)
        return handler(event, context)

    return invoke


def run() -> dict[str, Any]:
    import boto3

    from cartrecovery import wiring

    settings = _settings()
    first = cart_event("c-stored", "taro@example.jp", datetime.now(UTC) - timedelta(hours=2), 2)
    cart_item = _stored_cart(settings, first)
    stub = StubAws(settings, _store_item(), cart_item)
    with lambda_environment():
        session = boto3.session.Session()
        stub.install(session)
        wiring.configure(settings=settings, session=session)
        try:
            module = load_module(REPO / "functions" / "ingest" / "app.py", "bench_ingest_app")
            context = LambdaContext("bench-ingest", "arn:aws:lambda:ap-northeast-1:123456789012:function:bench-ingest")
            # The floor uses a client as boto3 makes it; the product's own client (no client-side request
            # checks, a fixed User-Agent) makes the calls-alone handler and a second floor, for comparison.
            floor = floor_handler(session.client("dynamodb"), secret_key(SECRET))
            tuned = wiring.services().dynamodb
            floor_tuned = floor_handler(tuned, secret_key(SECRET))
            calls_floor = calls_floor_handler(tuned, wiring.services().scheduler_client, secret_key(SECRET), cart_item)
            warm = wiring.services()
            cold = wiring.Services(dataclasses.replace(settings, store_cache_seconds=0), warm.clock, session)
            handlers = {
                "product": _in_container(warm, module.lambda_handler),
                "uncached": _in_container(cold, module.lambda_handler),
                "floor": floor,
                "tuned": floor_tuned,
                "calls": calls_floor,
            }
            requests: dict[str, int] = {}
            for name, handler in handlers.items():  # warm: first-call imports and clients
                before, refused_before = stub.requests, stub.refusals
                for _ in range(WARM_BATCHES):
                    _cpu_us_per_event(handler, context, stub)
                requests[name] = stub.requests - before
                _check_refusals(name, stub.refusals - refused_before, WARM_BATCHES * EVENTS)
            samples: dict[str, list[float]] = {name: [] for name in handlers}
            names = list(handlers)
            for turn in range(ROUNDS):  # interleaved batch by batch: a slow spell touches both sides of a ratio
                # Each round starts with another handler, so what one batch leaves behind (garbage for the
                # collector, a cold cache) falls on every handler alike.
                for name in names[turn % len(names) :] + names[: turn % len(names)]:
                    samples[name].append(_cpu_us_per_event(handlers[name], context, stub))
        finally:
            wiring.reset()
            sys.modules.pop("bench_ingest_app", None)

    def us(name: str) -> float:
        return round(median(samples[name]), 1)

    def ratios(name: str, over: str) -> list[float]:
        return [a / b for a, b in zip(samples[name], samples[over], strict=True)]

    def ratio(name: str, over: str) -> float:
        return round(median(ratios(name, over)), 2)

    per_event = WARM_BATCHES * EVENTS
    return {
        "us_per_event": us("product"),
        "floor_us_per_event": us("floor"),
        "ratio": ratio("product", "floor"),
        # The spread of the per-round ratios (first and third quartiles), to read the median against.
        "ratio_quartiles": [round(q, 2) for q in statistics.quantiles(ratios("product", "floor"), n=4)[::2]],
        # The floor handler with the product's client: what the ratio would be had the floor tuned it too.
        "floor_tuned_client_us_per_event": us("tuned"),
        "ratio_to_tuned_floor": ratio("product", "tuned"),
        "aws_calls_per_event": requests["product"] / per_event,
        # A quiet store's case: no copy of the store in the container, a read on every event.
        "store_read_each_event": {
            "us_per_event": us("uncached"),
            "ratio": ratio("uncached", "floor"),
            "aws_calls_per_event": requests["uncached"] / per_event,
        },
        # The same calls a cart event makes, with no other work: what the calls alone cost.
        "calls_floor_us_per_event": us("calls"),
        "calls_floor_ratio": ratio("calls", "floor"),
        "ratio_to_calls_floor": ratio("product", "calls"),
        "target_ratio": TARGET_RATIO,
    }
