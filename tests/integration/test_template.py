"""The deployment template: it lints, its tables are the ones the code uses, and its permissions are tight."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cartrecovery.cli.config import stack_settings
from cartrecovery.local.lambda_invoke import load_module
from cartrecovery.local.resources import TABLE_ENV, create_tables, find_repo_root, load_template
from cartrecovery.usecases.track import COUNTED, DETAIL_TYPES

ROOT = find_repo_root()
TEMPLATE_PATH = ROOT / "template.yaml"
TEMPLATE = load_template(TEMPLATE_PATH)
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
REQUIRED_ENV = {
    "CARTRECOVERY_STAGE",
    "STORES_TABLE",
    "EVENTS_TABLE",
    "CARTS_TABLE",
    "CONTACTS_TABLE",
    "MESSAGES_TABLE",
    "COUNTERS_TABLE",
    "COUPONS_TABLE",
    "SCHEDULE_GROUP",
    "SCHEDULER_ROLE_ARN",
    "SEND_FUNCTION_ARN",
    "SCHEDULER_DLQ_ARN",
    "SES_CONFIGURATION_SET",
}


def test_template_passes_cfn_lint() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE_PATH)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_function_is_python313_arm64_with_the_shared_layer_and_its_settings() -> None:
    globals_ = TEMPLATE["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Layers"] == [{"Ref": "SharedLayer"}]
    assert set(globals_["Environment"]["Variables"]) >= REQUIRED_ENV
    assert set(FUNCTIONS) == {
        "IngestFunction",
        "SendFunction",
        "SweepFunction",
        "TrackingFunction",
        "UnsubscribeFunction",
    }
    for name, function in FUNCTIONS.items():
        code = ROOT / function["Properties"]["CodeUri"] / "app.py"
        assert code.is_file(), f"{name} has no entry point at {code}"
    assert "PUBLIC_BASE_URL" in FUNCTIONS["SendFunction"]["Properties"]["Environment"]["Variables"]


def test_the_api_serves_exactly_the_contract_routes() -> None:
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"]): name
        for name, f in FUNCTIONS.items()
        for e in f["Properties"].get("Events", {}).values()
        if e["Type"] == "HttpApi"
    }
    assert routes == {
        ("POST", "/v1/stores/{store_id}/events"): "IngestFunction",
        ("POST", "/v1/stores/{store_id}/shopify"): "IngestFunction",
        ("GET", "/u/{token}"): "UnsubscribeFunction",
        ("POST", "/u/{token}"): "UnsubscribeFunction",
    }


@pytest.mark.parametrize("name", ["IngestFunction", "UnsubscribeFunction"])
def test_each_api_function_serves_exactly_the_route_keys_the_template_gives_it(name: str) -> None:
    # The functions route by API Gateway's routeKey; a route added to the template alone would answer 404.
    function = FUNCTIONS[name]
    declared = {
        f"{e['Properties']['Method']} {e['Properties']['Path']}"
        for e in function["Properties"]["Events"].values()
        if e["Type"] == "HttpApi"
    }
    app = load_module(ROOT / function["Properties"]["CodeUri"] / "app.py", f"template_check_{name}")
    try:
        assert set(app.ROUTES) == declared
    finally:
        sys.modules.pop(f"template_check_{name}", None)


def test_tables_are_on_demand_with_recovery_and_encryption() -> None:
    tables = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::DynamoDB::Table"}
    assert set(tables) == set(TABLE_ENV)
    for name, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
        assert props["SSESpecification"]["SSEEnabled"] is True, name


def test_tables_built_from_the_template_have_the_keys_the_code_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb")
        names = create_tables(client, TEMPLATE_PATH, "t")
        keys = {
            env: [k["AttributeName"] for k in client.describe_table(TableName=name)["Table"]["KeySchema"]]
            for env, name in names.items()
        }
        ttl = client.describe_time_to_live(TableName=names["CARTS_TABLE"])["TimeToLiveDescription"]
    assert keys == {
        "STORES_TABLE": ["store_id"],
        "EVENTS_TABLE": ["store_id", "event_id"],
        "CARTS_TABLE": ["store_id", "cart_id"],
        "CONTACTS_TABLE": ["store_id", "contact_key"],
        "MESSAGES_TABLE": ["message_id"],
        "COUNTERS_TABLE": ["store_id", "counter_key"],
        "COUPONS_TABLE": ["store_id", "coupon_key"],
    }
    assert ttl["AttributeName"] == "expires_at"


def _statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in function["Properties"].get("Policies", []) for s in policy.get("Statement", [])]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_policies_name_actions_and_resources_without_wildcards(name: str) -> None:
    statements = _statements(FUNCTIONS[name])
    assert statements, f"{name} has no explicit policy"
    for statement in statements:
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{name}: wildcard action {action}"
        for resource in _as_list(statement["Resource"]):
            assert resource != "*", f"{name}: Resource '*' for {statement['Action']}"
        if any(a.startswith("dynamodb:") for a in _as_list(statement["Action"])):
            assert all("Fn::GetAtt" in r or r == CARTS_TIMERS_INDEX for r in _as_list(statement["Resource"])), name


CARTS_TIMERS_INDEX = {"Fn::Sub": "${CartsTable.Arn}/index/timers"}


def test_the_carts_table_has_a_sparse_keys_only_timers_index() -> None:
    indexes = RESOURCES["CartsTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert [i["IndexName"] for i in indexes] == ["timers"]
    assert [k["AttributeName"] for k in indexes[0]["KeySchema"]] == ["timer_shard", "timer_due"]
    assert indexes[0]["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_the_sweep_runs_every_five_minutes_with_only_what_it_needs() -> None:
    sweep = FUNCTIONS["SweepFunction"]["Properties"]
    events = list(sweep["Events"].values())
    assert [(e["Type"], e["Properties"]["Schedule"]) for e in events] == [("Schedule", "rate(5 minutes)")]
    grants = {a: s["Resource"] for s in _statements(FUNCTIONS["SweepFunction"]) for a in _as_list(s["Action"])}
    assert set(grants) == {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "scheduler:GetSchedule",
        "scheduler:CreateSchedule",
        "iam:PassRole",
    }
    assert grants["dynamodb:Query"] == CARTS_TIMERS_INDEX  # the index only, never the table
    assert grants["dynamodb:UpdateItem"] == [{"Fn::GetAtt": ["CartsTable", "Arn"]}]
    assert grants["scheduler:CreateSchedule"]["Fn::Sub"].endswith(":schedule/${ScheduleGroup}/*")
    assert grants["iam:PassRole"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert any(d["Value"] == {"Ref": "SweepFunction"} for a in alarms for d in a.get("Dimensions", []))


def test_only_the_send_function_may_send_email_and_no_function_may_delete_data() -> None:
    for name, function in FUNCTIONS.items():
        actions = {a for s in _statements(function) for a in _as_list(s["Action"])}
        assert ("ses:SendRawEmail" in actions) == (name == "SendFunction"), name
        assert not {a for a in actions if "Delete" in a or a == "dynamodb:Scan"}, name
        assert ("dynamodb:Query" in actions) == (name == "SweepFunction"), name


def test_only_the_send_function_touches_coupon_codes_and_only_as_handing_out_needs() -> None:
    coupons = {"Fn::GetAtt": ["CouponsTable", "Arn"]}
    for name, function in FUNCTIONS.items():
        actions = {
            a for s in _statements(function) if coupons in _as_list(s["Resource"]) for a in _as_list(s["Action"])
        }
        expected = {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"} if name == "SendFunction" else set()
        assert actions == expected, name
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert any(a["MetricName"] == "CouponPoolEmpty" for a in alarms)


def test_the_scheduler_role_can_invoke_only_the_send_function() -> None:
    role = RESOURCES["SchedulerRole"]["Properties"]
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "scheduler.amazonaws.com"}
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    invoke = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert len(invoke) == 1
    assert invoke[0]["Resource"]["Fn::Sub"].endswith(":function:${AWS::StackName}-send")
    assert FUNCTIONS["SendFunction"]["Properties"]["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-send"}
    assert {s["Action"] for s in statements} == {"lambda:InvokeFunction", "sqs:SendMessage"}


def test_ses_events_reach_the_tracking_function_through_a_queue_with_a_dead_letter_queue() -> None:
    destination = RESOURCES["ConfigurationSetEvents"]["Properties"]["EventDestination"]
    assert {"send", "delivery", "open", "click", "bounce", "complaint"} <= set(destination["MatchingEventTypes"])
    rule = RESOURCES["SesEventsRule"]["Properties"]
    assert rule["EventPattern"]["source"] == ["aws.ses"]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["TrackingQueue", "Arn"]}
    queue = RESOURCES["TrackingQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["TrackingDeadLetterQueue", "Arn"]}
    event = FUNCTIONS["TrackingFunction"]["Properties"]["Events"]["SesEvents"]
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_dead_letter_queues_and_unknown_send_outcomes_are_alarmed() -> None:
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = {str(d["Value"]) for a in alarms for d in a.get("Dimensions", [])}
    assert "{'Fn::GetAtt': ['SchedulerDeadLetterQueue', 'QueueName']}" in watched
    assert "{'Fn::GetAtt': ['TrackingDeadLetterQueue', 'QueueName']}" in watched
    assert any(a["MetricName"] == "SendOutcomeUnknown" for a in alarms)
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)


def test_ses_rule_forwards_exactly_the_event_types_tracking_counts() -> None:
    pattern = RESOURCES["SesEventsRule"]["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.ses"]
    assert set(DETAIL_TYPES) == set(COUNTED)
    # A type tracking counts but the rule drops would never be counted; one the rule forwards but tracking
    # ignores costs a queue message and an invocation for nothing.
    assert sorted(pattern["detail-type"]) == sorted(DETAIL_TYPES[t] for t in COUNTED)


def test_a_failed_send_invocation_lands_in_the_scheduler_dead_letter_queue() -> None:
    # Scheduler invokes the send function asynchronously: its own DLQ sees only a failed hand-over, so a
    # function error must reach the same queue through Lambda's on-failure destination.
    config = FUNCTIONS["SendFunction"]["Properties"]["EventInvokeConfig"]
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["SchedulerDeadLetterQueue", "Arn"]},
    }


def test_sam_lets_the_send_function_write_its_failures_to_that_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """SAM adds the send function's right to write to its on-failure destination when it translates the
    template; this runs SAM's own translator, as `sam deploy` does."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    template = yaml_parse(TEMPLATE_PATH.read_text())
    for name, resource in template["Resources"].items():
        for uri in ("CodeUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = f"s3://bucket/{name}"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {
                "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
            }

    resources = transform(template, {}, NoManagedPolicies())["Resources"]
    statements = [
        s for p in resources["SendFunctionRole"]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]
    ]
    dlq = {"Fn::GetAtt": ["SchedulerDeadLetterQueue", "Arn"]}
    assert any(s["Action"] == "sqs:SendMessage" and s["Resource"] == dlq for s in statements)
    invoke_config = resources["SendFunctionEventInvokeConfig"]["Properties"]
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == dlq


def test_alarms_can_publish_to_their_topic() -> None:
    # CloudWatch cannot use SNS's AWS managed key (its policy cannot be changed to allow the service).
    topic = RESOURCES["AlarmTopic"].get("Properties", {})
    assert "alias/aws/sns" not in str(topic.get("KmsMasterKeyId", ""))


def test_the_send_function_may_send_from_any_verified_identity_of_the_account() -> None:
    statements = _statements(FUNCTIONS["SendFunction"])
    (ses,) = [s for s in statements if "ses:SendEmail" in _as_list(s["Action"])]
    identities = [r["Fn::Sub"] for r in ses["Resource"] if ":identity/" in r["Fn::Sub"]]
    assert identities == ["arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"]


def test_the_cli_finds_every_setting_of_a_deployed_stack_in_its_outputs() -> None:
    # `--stack` builds the CLI's settings from the stack's outputs: what the functions get from the
    # template's environment must be there too (erase deletes schedules in the group, preview links).
    outputs = TEMPLATE["Outputs"]
    given = {key: f"value-of-{key}" for key in outputs}
    settings = stack_settings(given)
    for env in REQUIRED_ENV - {"CARTRECOVERY_STAGE"}:
        field = env.lower()
        assert getattr(settings, field).startswith("value-of-"), env
    send_env = FUNCTIONS["SendFunction"]["Properties"]["Environment"]["Variables"]
    assert outputs["UnsubscribeBaseUrl"]["Value"] == send_env["PUBLIC_BASE_URL"]
    assert settings.public_base_url == "value-of-UnsubscribeBaseUrl"
