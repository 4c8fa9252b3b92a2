"""Carts through the whole local stack over HTTP: signed events in, the clock moved, emails in the outbox.

The stack runs as ``python -m cartrecovery.local`` in a scratch directory on a free port (as the end-to-end
tests start it); the figure is carts per second from the first event posted to the last email sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.lifecycle import cart_event
from bench.moto_stack import SECRET
from cartrecovery.clock import parse_rfc3339
from cartrecovery.signing import signed_headers

CARTS = 40
CLOCK_START = "2026-12-01T10:00:00+09:00"
START_TIMEOUT = 60.0


def _request(
    base: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Any:
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"null")


def _start(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "PORT": "0",
        "CARTRECOVERY_CLOCK_START": CLOCK_START,
        "CARTRECOVERY_DEMO_SECRET": SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    with (workdir / "stack.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cartrecovery.local"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    demo_file = workdir / ".local" / "demo-store.json"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            base = json.loads(demo_file.read_text())["base_url"]
            _request(base, "GET", "/_local/health")
            return process, base
        time.sleep(0.2)
    _stop(process)
    raise RuntimeError("the local stack did not start:\n" + (workdir / "stack.log").read_text(errors="replace")[-2000:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _post_cart(base: str, now: datetime) -> None:
    cart_id = f"c-{uuid.uuid4().hex[:12]}"
    body = json.dumps(cart_event(cart_id, f"{cart_id}@example.jp", now, 2), ensure_ascii=False).encode()
    headers = signed_headers(SECRET, f"evt_{uuid.uuid4().hex}", body)
    answer = _request(base, "POST", "/v1/stores/demo/events", body, headers)
    if answer.get("status") != "accepted":
        raise RuntimeError(f"event not accepted: {answer}")


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as scratch:
        process, base = _start(Path(scratch))
        try:
            now = parse_rfc3339(_request(base, "GET", "/_local/clock")["now"])
            start = time.perf_counter()
            for _ in range(CARTS):
                _post_cart(base, now)
            advance = json.dumps({"seconds": 3 * 3600}).encode()
            _request(base, "POST", "/_local/clock/advance", advance, {"content-type": "application/json"})
            elapsed = time.perf_counter() - start
            sent = len(_request(base, "GET", "/_local/outbox")["messages"])
        finally:
            _stop(process)
    if sent != CARTS:
        raise RuntimeError(f"{sent} emails sent for {CARTS} carts")
    return {"carts_per_s": round(CARTS / elapsed, 1), "carts": CARTS, "seconds": round(elapsed, 2)}
