"""Small timing helpers: medians and percentiles of repeated measurements, and fresh interpreters."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def per_call_seconds(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall time of each of ``repeat`` calls."""
    from time import perf_counter

    samples = []
    for _ in range(repeat):
        start = perf_counter()
        fn()
        samples.append(perf_counter() - start)
    return samples


def run_python(code: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter of this venv; it prints one JSON object, which is returned."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result
