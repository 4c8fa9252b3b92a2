"""Rendering a five-item step-1 email (subject, HTML and text) with a warm renderer, as the send handler does."""

from __future__ import annotations

from typing import Any

from bench.timing import per_call_seconds, percentile

RENDERS = 2000  # p99 is then the 20th slowest, not the 5th: one scheduler hiccup no longer decides it
TARGET_P99_MS = 2.0
TARGET_BYTES = 100_000


def run() -> dict[str, Any]:
    from cartrecovery.email.render import EmailRenderer
    from cartrecovery.email.samples import sample_context

    renderer = EmailRenderer()
    context = sample_context("cart_recovery", 1, "ja", items=5)
    rendered = renderer.render("cart_recovery", 1, "ja", context)  # compiles and caches the templates
    samples_ms = [
        s * 1000 for s in per_call_seconds(lambda: renderer.render("cart_recovery", 1, "ja", context), RENDERS)
    ]
    size = sum(len(part.encode("utf-8")) for part in (rendered.subject, rendered.html, rendered.text))
    return {
        "p50_ms": round(percentile(samples_ms, 50), 3),
        "p99_ms": round(percentile(samples_ms, 99), 3),
        "bytes": size,
        "html_bytes": len(rendered.html.encode("utf-8")),
        "text_bytes": len(rendered.text.encode("utf-8")),
        "target_p99_ms": TARGET_P99_MS,
        "target_bytes": TARGET_BYTES,
    }
