"""A bounded burst against the local stack: 200 signed posts for 50 carts from 8 threads, a fifth of them
re-deliveries of an event already sent (same webhook-id, same body, possibly racing the original). No 5xx,
every event accepted exactly once and every re-delivery answered ``duplicate``; three hours later exactly
one step-1 email per consenting cart and none for the others."""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

CARTS = 50
POSTS = 200
DUPLICATES = 40  # 20 %
THREADS = 8


def test_a_burst_with_duplicates_is_ingested_exactly_once(local_stack: Any) -> None:
    stack = local_stack
    stack.advance_to_local_time(10)
    start = stack.now()
    rng = random.Random(8058)

    carts = [(stack.new_id("load"), stack.unique_email("load"), i % 3 == 0) for i in range(CARTS)]  # 1 in 3 consents
    unique: list[tuple[str, dict[str, Any]]] = []
    newest_total: dict[str, int] = {}  # what each cart holds once every event is folded, whatever the order
    for n in range(POSTS - DUPLICATES):
        cart_id, email, consent = carts[n % CARTS]
        quantity = n // CARTS + 1  # each later event of a cart changes its quantity
        item = {"sku": "TEA-001", "name": "抹茶ラテ", "url": "https://shop.example.jp/p/1", "unit_price": 1280}
        event = stack.cart_event(
            cart_id,
            email,
            start + timedelta(seconds=n),
            consent=consent,
            consent_at=start,
            items=[{**item, "quantity": quantity}],
        )
        unique.append((stack.new_id("evt"), event))
        newest_total[cart_id] = event["cart"]["total"]
    posts = unique + rng.sample(unique, DUPLICATES)
    rng.shuffle(posts)

    began = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda post: (post[0], *stack.post_event(post[1], event_id=post[0])), posts))
    elapsed = time.monotonic() - began

    statuses = Counter(status for _, status, _ in answers)
    assert set(statuses) <= {200, 202}, statuses  # no 5xx, no throttling, no rejection
    by_id: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for event_id, status, body in answers:
        by_id[event_id].append((status, body))
    assert len(by_id) == POSTS - DUPLICATES
    for event_id, results in by_id.items():
        accepted = [r for r in results if r[0] == 202]
        assert accepted == [(202, {"status": "accepted", "event_id": event_id})], results
        assert sorted(results, key=lambda r: r[0])[:-1] == [(200, {"status": "duplicate"})] * (len(results) - 1)
    assert statuses == {202: POSTS - DUPLICATES, 200: DUPLICATES}
    rate = statuses[202] / elapsed
    print(f"\n{POSTS} posts from {THREADS} threads in {elapsed:.2f} s: {rate:.1f} accepted events/s")

    stack.advance(3 * 3600)
    for cart_id, email, consent in carts:
        messages = stack.outbox(to=email)
        assert len(messages) == (1 if consent else 0), (cart_id, consent, messages)
    folded = {c["cart_id"]: c for c in stack.carts() if c["cart_id"] in newest_total}
    assert {cart_id: c["total"] for cart_id, c in folded.items()} == newest_total
    for cart_id, _, consent in carts:
        assert ("cart_recovery#1" in folded[cart_id]["steps"]) is consent, folded[cart_id]
