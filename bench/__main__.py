"""``python -m bench [name ...]``: run the benchmarks (all, or those named), print a table, write results.json.

A benchmark that fails is reported as an error in the table and in the file; the run itself always
succeeds, because benchmarks inform and never block a build.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench import REPO, calls, cost, e2e, imports, ingest, package, render, report_scaling, volumes
from bench.table import print_table

RESULTS = REPO / "bench" / "results.json"


def _measure(name: str, fn: Callable[[], Any], errors: dict[str, str]) -> Any:
    print(f"  {name} ...", end="", flush=True)
    start = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        print(f" failed ({errors[name]})", flush=True)
        return None
    print(f" {time.perf_counter() - start:.0f} s", flush=True)
    return result


def run(selected: set[str]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }

    def wanted(name: str) -> bool:
        return not selected or name in selected

    if wanted("import"):
        results["import"] = _measure("import", imports.run, errors)
    if wanted("calls"):
        lifecycle = _measure("calls", calls.run, errors)
        if lifecycle:
            results.update(lifecycle)
            results["cost_usd_per_1k_carts"] = cost.run(lifecycle)
            results["monthly_usd"] = volumes.run(lifecycle)
    if wanted("ingest"):
        results["ingest"] = _measure("ingest", ingest.run, errors)
    if wanted("render"):
        results["render"] = _measure("render", render.run, errors)
    if wanted("report"):
        scaling = _measure("report", report_scaling.run, errors)
        if scaling:
            results["report_scaling_ratio"] = scaling["ratio"]
            results["report_scaling"] = scaling
    if wanted("e2e"):
        local = _measure("e2e", e2e.run, errors)
        if local:
            results["local_e2e_carts_per_s"] = local["carts_per_s"]
            results["local_e2e"] = local
    if wanted("package"):
        built = _measure("package", package.run, errors)
        if built:
            results["package_bytes"] = built.pop("artifacts")
            results["package"] = built
    results["errors"] = errors
    return results


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")  # library warnings (e.g. empty metrics flushes) are not results
    selected = set(argv)
    print("benchmarks" + (f": {', '.join(sorted(selected))}" if selected else ""), flush=True)
    started = time.perf_counter()
    results = run(selected)
    results["seconds"] = round(time.perf_counter() - started, 1)
    if selected and RESULTS.exists():  # a partial run updates the figures it measured
        previous = json.loads(RESULTS.read_text())
        kept = {k: v for k, v in previous.get("errors", {}).items() if k not in selected}
        results = {**previous, **results, "errors": {**kept, **results["errors"]}}
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print_table(results)
    print(f"\nwrote {RESULTS.relative_to(REPO)} in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
