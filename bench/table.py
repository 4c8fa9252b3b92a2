"""The results as a table a person reads: each figure, its target, and whether it is met."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _get(results: dict[str, Any], path: str) -> Any:
    value: Any = results
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, status) for every figure present."""
    out: list[tuple[str, str, str, str]] = []

    def add(label: str, path: str, target: str = "", ok: Callable[[Any], bool] | None = None, unit: str = "") -> None:
        value = _get(results, path)
        if value is None:
            return
        status = "" if ok is None else ("ok" if ok(value) else "MISSED")
        out.append((label, f"{value}{unit}", target, status))

    add("import boto3", "import.boto3_ms", unit=" ms")
    for name in _get(results, "import.functions") or {}:
        add(f"import {name} (x boto3)", f"import.functions.{name}.ratio", "<= 1.5", lambda v: v <= 1.5)
    add("AWS calls per cart", "calls_total")
    add("AWS calls floor", "calls_floor")
    add("AWS calls (x floor)", "calls_ratio", "<= 1.25", lambda v: v <= 1.25)
    add("USD per 1k carts", "cost_usd_per_1k_carts.total")
    add("USD per 1k carts, non-SES", "cost_usd_per_1k_carts.non_ses", "<= 0.02", lambda v: v <= 0.02)
    add("non-SES floor per 1k carts", "cost_usd_per_1k_carts.floor_non_ses")
    add("non-SES (x floor)", "cost_usd_per_1k_carts.non_ses_vs_floor")
    add("ingest CPU per event", "ingest.us_per_event", unit=" us")
    add("ingest floor per event", "ingest.floor_us_per_event", unit=" us")
    add("ingest CPU (x floor)", "ingest.ratio", "<= 3", lambda v: v <= 3)
    add("ingest CPU (x floor), quartiles of the rounds", "ingest.ratio_quartiles")
    add("ingest, store read each event (x floor)", "ingest.store_read_each_event.ratio")
    add("ingest calls alone (x floor)", "ingest.calls_floor_ratio")
    add("ingest (x floor, same client)", "ingest.ratio_to_tuned_floor")
    add("render p50", "render.p50_ms", unit=" ms")
    add("render p99", "render.p99_ms", "<= 2 ms", lambda v: v <= 2, " ms")
    add("render size", "render.bytes", "<= 100,000", lambda v: v <= 100_000, " B")
    add("report 100k / 1k messages", "report_scaling_ratio", "<= 1.5", lambda v: v <= 1.5)
    add("local e2e", "local_e2e_carts_per_s", unit=" carts/s")
    for name in _get(results, "package_bytes") or {}:
        add(f"artifact {name}", f"package_bytes.{name}.zipped_bytes", unit=" B zipped")
    if "package" in results and _get(results, "package_bytes") is None:
        out.append(("artifacts", "n/a", "", str(_get(results, "package.reason"))))
    if _get(results, "package.stale"):
        out.append(("artifacts", "stale", "", f"older than the sources: {_get(results, 'package.build_failure')}"))
    add("boto3 in artifacts", "package.boto3_inside", "none", lambda v: not v)
    for name, error in (results.get("errors") or {}).items():
        out.append((name, "error", "", error[:60]))
    return out


def print_table(results: dict[str, Any]) -> None:
    table = [("figure", "value", "target", ""), *rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for index, row in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
