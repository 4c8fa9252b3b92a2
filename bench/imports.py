"""Fresh-process import time of each function's handler module, against ``import boto3`` measured the same way.

Each sample is one new interpreter timing only the import statement (not interpreter start-up). Runs are
interleaved so a burst of noise on a shared machine hits every subject alike; the median is kept.
"""

from __future__ import annotations

from typing import Any

from bench import FUNCTIONS, REPO
from bench.timing import median, run_python

RUNS = 7
TARGET_RATIO = 1.5
# What Lambda sets for every function (template.yaml Globals), so Powertools starts as it would there.
LAMBDA_ENV = {
    "POWERTOOLS_SERVICE_NAME": "cartrecovery",
    "POWERTOOLS_METRICS_NAMESPACE": "CartRecovery",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_REGION": "ap-northeast-1",
    "AWS_DEFAULT_REGION": "ap-northeast-1",
}


def _import_ms(module: str, cwd: Any) -> float:
    code = (
        "import json, time\n"
        "start = time.perf_counter()\n"
        f"import {module}\n"
        "print(json.dumps({'ms': (time.perf_counter() - start) * 1000}))\n"
    )
    return float(run_python(code, cwd, LAMBDA_ENV)["ms"])  # type: ignore[arg-type]


def run() -> dict[str, Any]:
    samples: dict[str, list[float]] = {"boto3": [], **{name: [] for name in FUNCTIONS}}
    for _ in range(RUNS):
        samples["boto3"].append(_import_ms("boto3", REPO))
        for name in FUNCTIONS:
            samples[name].append(_import_ms("app", REPO / "functions" / name))
    boto3_ms = median(samples["boto3"])
    functions = {}
    for name in FUNCTIONS:
        ms = median(samples[name])
        functions[name] = {"ms": round(ms, 1), "ratio": round(ms / boto3_ms, 2)}
    return {"boto3_ms": round(boto3_ms, 1), "functions": functions, "runs": RUNS, "target_ratio": TARGET_RATIO}
