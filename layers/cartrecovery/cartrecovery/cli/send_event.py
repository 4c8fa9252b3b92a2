"""``cartrecovery send-event``: sign an event with the store's secret and post it, so nobody computes
HMACs by hand. Defaults come from the running local stack (.local/demo-store.json)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from cartrecovery.cli.config import demo_store
from cartrecovery.signing import signed_headers


def example_event(kind: str, cart_id: str, email: str, occurred_at: str) -> dict[str, Any]:
    customer = {
        "id": "u-123",
        "email": email,
        "name": "山田 太郎",
        "locale": "ja",
        "timezone": "Asia/Tokyo",
        "marketing_consent": {"granted": True, "at": occurred_at, "source": "checkout-form"},
    }
    if kind == "cart":
        return {
            "type": "cart.updated",
            "occurred_at": occurred_at,
            "customer": customer,
            "cart": {
                "id": cart_id,
                "currency": "JPY",
                "total": 4160,
                "recovery_url": f"https://shop.example.jp/cart/restore?cart={cart_id}",
                "items": [
                    {
                        "sku": "TEA-001",
                        "name": "抹茶ラテ",
                        "url": "https://shop.example.jp/products/tea-001",
                        "image_url": "https://shop.example.jp/img/tea-001.jpg",
                        "unit_price": 1280,
                        "quantity": 2,
                    },
                    {
                        "sku": "CUP-014",
                        "name": "有田焼 マグカップ",
                        "url": "https://shop.example.jp/products/cup-014",
                        "image_url": "https://shop.example.jp/img/cup-014.jpg",
                        "unit_price": 1600,
                        "quantity": 1,
                    },
                ],
            },
        }
    if kind == "order":
        return {
            "type": "order.placed",
            "occurred_at": occurred_at,
            "customer": customer,
            "order": {"id": f"o-{uuid.uuid4().hex[:8]}", "cart_id": cart_id, "total": 4160, "currency": "JPY"},
        }
    if kind == "clear":
        return {"type": "cart.cleared", "occurred_at": occurred_at, "customer": customer, "cart": {"id": cart_id}}
    if kind == "unsubscribe":
        return {"type": "customer.unsubscribed", "occurred_at": occurred_at, "customer": {"email": email}}
    raise ValueError(kind)


def business_now(base_url: str) -> str:
    """The local stack's virtual time (so examples are due when the clock advances), else wall time."""
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/_local/clock", timeout=5) as response:  # noqa: S310
            return str(json.load(response)["now"])
    except (OSError, ValueError, KeyError):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def post_signed(url: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    """POST ``body`` with its signature ``headers``: (status, text), for an error status too."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 (the operator's URL)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def cmd_send_event(args: argparse.Namespace) -> int:
    demo = demo_store() or {}
    base_url = args.url or demo.get("base_url")
    secret = args.secret or demo.get("webhook_secret")
    store = args.store or demo.get("store_id", "demo")
    if not base_url or not secret:
        print("error: give --url and --secret, or start the local stack (make run)", file=sys.stderr)
        return 2
    if args.file:
        try:
            body = Path(args.file).read_bytes() if args.file != "-" else sys.stdin.buffer.read()
        except OSError as exc:
            print(f"error: cannot read --file {args.file}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    else:
        occurred_at = args.occurred_at or business_now(base_url)
        event = example_event(args.example, args.cart_id, args.email, occurred_at)
        body = json.dumps(event, ensure_ascii=False).encode()
    event_id = args.id or f"evt_{uuid.uuid4().hex}"
    url = f"{base_url.rstrip('/')}/v1/stores/{urllib.parse.quote(store, safe='')}/events"
    try:
        headers = signed_headers(secret, event_id, body)
    except ValueError as exc:  # a secret that is not whsec_<base64>
        print(f"error: --secret: {exc}", file=sys.stderr)
        return 2
    try:
        status, text = post_signed(url, headers, body)
    except (urllib.error.URLError, OSError, ValueError) as exc:  # ValueError: a URL urllib cannot use
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        print(f"error: cannot post to {url}: {reason}", file=sys.stderr)
        return 1
    print(f"{status} {text}")
    return 0 if status < 300 else 1


def add_send_event_parser(commands: Any) -> None:
    parser = commands.add_parser("send-event", help="sign and post an event (defaults: the local demo store)")
    parser.add_argument("--file", help="event JSON file ('-' for stdin); otherwise --example builds one")
    parser.add_argument("--example", choices=["cart", "order", "clear", "unsubscribe"], default="cart")
    parser.add_argument("--cart-id", default="c-789")
    parser.add_argument("--email", default="taro@example.jp")
    parser.add_argument("--occurred-at", help="RFC 3339; default: the local stack's clock")
    parser.add_argument("--id", help="webhook-id (reuse one to see duplicate handling)")
    parser.add_argument("--url", help="base URL (default: the local stack)")
    parser.add_argument("--store", help="store id (default: demo)")
    parser.add_argument("--secret", help="the store's whsec_ secret (default: the demo store's)")
    parser.set_defaults(func=cmd_send_event)
