"""What a cold start loads: each function's handler module, imported in a fresh interpreter as Lambda imports
it, loads none of the heavy packages it does not need before its first request (`make bench` times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cartrecovery.local.resources import find_repo_root, load_template

ROOT = find_repo_root()
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists())
DEPLOYED = {
    Path(resource["Properties"]["CodeUri"]).name
    for resource in load_template(ROOT / "template.yaml")["Resources"].values()
    if resource["Type"] == "AWS::Serverless::Function"
}
# boto3 and botocore's client machinery load with the first client, not at import; Jinja2 with the send
# function's first render; the X-Ray SDK never (tracing is Lambda's own); Powertools' HTTP resolver never
# (the API functions route by API Gateway's route key).
HEAVY = (
    "boto3",
    "botocore.client",
    "botocore.session",
    "jinja2",
    "aws_xray_sdk",
    "aws_lambda_powertools.event_handler",
)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_handler_module_imports_nothing_heavy_before_its_first_request(name: str) -> None:
    code = f"import json, sys\nimport app\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "cartrecovery"),
        "POWERTOOLS_SERVICE_NAME": f"cartrecovery-{name}",
        "AWS_REGION": "ap-northeast-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "functions" / name, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_every_deployed_function_is_checked() -> None:
    assert set(FUNCTIONS) == DEPLOYED
