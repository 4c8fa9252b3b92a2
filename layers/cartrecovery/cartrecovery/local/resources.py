"""The DynamoDB tables as ``template.yaml`` declares them, created in an emulator or a test.

The local stack, the moto-backed tests and the benchmarks all build their tables from the deployment
template, so the keys the code relies on and the keys that are deployed cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# Logical id in template.yaml -> the environment variable the functions read the table name from.
TABLE_ENV = {
    "StoresTable": "STORES_TABLE",
    "EventsTable": "EVENTS_TABLE",
    "CartsTable": "CARTS_TABLE",
    "ContactsTable": "CONTACTS_TABLE",
    "MessagesTable": "MESSAGES_TABLE",
    "CountersTable": "COUNTERS_TABLE",
    "CouponsTable": "COUPONS_TABLE",
}
_TABLE_KEYS = ("KeySchema", "AttributeDefinitions", "BillingMode", "GlobalSecondaryIndexes")


class _CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that reads CloudFormation short tags (``!Ref``, ``!Sub``...) as plain data."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _tagged)


def find_repo_root() -> Path:
    """The checkout this package runs from (the folder that holds template.yaml)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "template.yaml").is_file():
            return parent
    raise FileNotFoundError("template.yaml not found above the package: run from a checkout of the project")


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 (a SafeLoader subclass)


def table_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> ``create_table`` arguments (without the name) for every DynamoDB table."""
    tables = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = resource.get("Properties", {})
        tables[logical_id] = {k: props[k] for k in _TABLE_KEYS if k in props}
    return tables


def function_environment(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """The environment ``template`` gives function ``logical_id``: the Globals' variables, then its own
    (values may still be intrinsic functions such as ``!Ref``)."""
    variables = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    own = template["Resources"][logical_id].get("Properties", {}).get("Environment", {}).get("Variables", {})
    return variables | own


def ttl_attribute(template: dict[str, Any], logical_id: str) -> str | None:
    spec = template["Resources"][logical_id].get("Properties", {}).get("TimeToLiveSpecification") or {}
    return spec.get("AttributeName") if spec.get("Enabled") else None


def create_tables(dynamodb_client: Any, template_path: Path, prefix: str) -> dict[str, str]:
    """Create every table of the template as ``<prefix>-<LogicalId>``; returns env var name -> table name."""
    template = load_template(template_path)
    names = {}
    for logical_id, definition in table_definitions(template).items():
        name = f"{prefix}-{logical_id}"
        dynamodb_client.create_table(TableName=name, **definition)
        ttl = ttl_attribute(template, logical_id)
        if ttl:
            dynamodb_client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
            )
        names[TABLE_ENV.get(logical_id, logical_id)] = name
    return names
