"""deploy/aws/citylogin.yaml: cfn-lint finds no error, its tables are the ones the code defines
(common/database/dynamo.py), and the task role can do what the services do and no more (SPEC §8, §10)."""
from __future__ import annotations

import fnmatch
import re
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import decode

from common.config import Settings, env_name
from common.database.dynamo import TTL_ATTRIBUTE, TableNames, table_definitions

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "citylogin.yaml"
# The table names in the template are !Sub "${TablePrefix}<name>".
PREFIX = "${TablePrefix}"
TABLE_ACTIONS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchGetItem",
                 "BatchWriteItem", "ConditionCheckItem"}
FORBIDDEN_ACTIONS = ["dynamodb:Scan", "dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable",
                     "dynamodb:ListTables", "dynamodb:DescribeTable", "dynamodb:UpdateTimeToLive"]


def plain(node: Any) -> Any:
    """cfn-lint's decoded nodes as plain dicts and lists."""
    return json.loads(json.dumps(node))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, problems = decode(str(TEMPLATE))
    assert problems == []
    return plain(decoded)


def resources_of_type(template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_cfn_lint_finds_no_errors():
    matches = lint_file(TEMPLATE)
    errors = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def template_tables(template) -> dict[str, dict[str, Any]]:
    tables = {}
    for name, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        table_name = resource["Properties"]["TableName"]
        assert isinstance(table_name, dict) and "Fn::Sub" in table_name, f"{name}: name without the prefix"
        tables[table_name["Fn::Sub"]] = resource["Properties"]
    return tables


def schema(definition: dict[str, Any]) -> dict[str, Any]:
    """The parts of a CreateTable definition that must agree, in a comparable order."""
    out = {"KeySchema": definition["KeySchema"],
           "AttributeDefinitions": sorted(definition["AttributeDefinitions"], key=lambda a: a["AttributeName"])}
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = definition.get(kind) or []
        out[kind] = sorted(({k: ix[k] for k in ("IndexName", "KeySchema", "Projection")} for ix in indexes),
                           key=lambda ix: ix["IndexName"])
    return out


def test_the_template_has_exactly_the_tables_the_code_defines(template):
    expected = table_definitions(TableNames.with_prefix(PREFIX))
    assert sorted(template_tables(template)) == sorted(expected)


def test_each_table_has_the_code_s_keys_indexes_billing_ttl_and_recovery(template):
    expected = table_definitions(TableNames.with_prefix(PREFIX))
    for name, props in template_tables(template).items():
        assert schema(props) == schema(expected[name]), name
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}, name
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name


def statements(template) -> Iterator[dict[str, Any]]:
    """Every IAM policy statement in the template, both branches of an Fn::If included."""
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        for document in documents:
            yield from _flatten(document["Statement"])


def _flatten(items) -> Iterator[dict[str, Any]]:
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict) and "Fn::If" in item:
            yield from _flatten([b for b in item["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}])
        else:
            yield item


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_no_policy_grants_scan_or_table_administration(template):
    granted = [a for s in statements(template) if s["Effect"] == "Allow" for a in as_list(s["Action"])]
    offending = [(pattern, action) for pattern in granted for action in FORBIDDEN_ACTIONS
                 if fnmatch.fnmatch(action.lower(), str(pattern).lower())]
    assert offending == []


def test_the_task_role_reaches_every_table_and_its_indexes(template):
    (role,) = [r for name, r in template["Resources"].items() if name == "TaskRole"]
    dynamo = [s for doc in role["Properties"]["Policies"] for s in _flatten(doc["PolicyDocument"]["Statement"])
              if any(str(a).startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert {a.removeprefix("dynamodb:") for s in dynamo for a in as_list(s["Action"])} == TABLE_ACTIONS
    resources = [r for s in dynamo for r in as_list(s["Resource"])]
    assert "*" not in resources
    for logical_id, table in resources_of_type(template, "AWS::DynamoDB::Table").items():
        assert {"Fn::GetAtt": [logical_id, "Arn"]} in resources, logical_id
        if table["Properties"].get("GlobalSecondaryIndexes"):
            assert {"Fn::Sub": "${%s.Arn}/index/*" % logical_id} in resources, logical_id


def container_environment(template) -> dict[str, Any]:
    (task,) = resources_of_type(template, "AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def test_the_container_runs_against_prepared_tables_behind_one_proxy(template):
    env = container_environment(template)
    assert env["CITYLOGIN_CREATE_TABLES"] == "false"
    assert env["CITYLOGIN_TRUSTED_PROXIES"] == "1"
    assert env["CITYLOGIN_TABLE_PREFIX"] == {"Ref": "TablePrefix"}
    assert env["CITYLOGIN_KMS_KEY_ID"] == {"Fn::GetAtt": ["KeyRingKey", "Arn"]}
    assert env["CITYLOGIN_AWS_REGION"] == {"Ref": "AWS::Region"}
    known = {env_name(field) for field in Settings.model_fields}
    assert sorted(set(env) - known) == []


def test_the_trusted_certificate_header_is_the_one_alb_verify_mode_sets(template):
    # Verify mode passes the verified leaf in X-Amzn-Mtls-Clientcert-Leaf; the plain listener
    # refuses requests that bring that header themselves.
    listener = template["Resources"]["MutualTlsListener"]["Properties"]
    assert listener["MutualAuthentication"]["Mode"] == "verify"
    assert listener["MutualAuthentication"]["TrustStoreArn"] == {"Fn::GetAtt": ["ClientCaTrustStore", "TrustStoreArn"]}
    header = container_environment(template)["CITYLOGIN_TRUSTED_CLIENT_CERT_HEADER"]["Fn::If"][1]
    assert header == "X-Amzn-Mtls-Clientcert-Leaf"
    rule = template["Resources"]["RefuseForgedClientCertHeader"]["Properties"]
    assert rule["ListenerArn"] == {"Ref": "HttpsListener"}
    assert rule["Conditions"][0]["HttpHeaderConfig"] == {"HttpHeaderName": header, "Values": ["*"]}
    assert rule["Actions"][0]["Type"] == "fixed-response"


AWS_GUIDE = TEMPLATE.parents[2] / "docs" / "guides" / "aws.md"


def walk_through() -> str:
    """The AWS guide's walk-through section: its numbered steps, each with its commands."""
    text = AWS_GUIDE.read_text(encoding="utf-8")
    section = text[text.index("\n## The walk-through\n"):]
    return section[:section.index("\n## ", 1)]


def walk_through_deployments() -> list[dict[str, str]]:
    """The `--parameter-overrides` of each `aws cloudformation deploy` in the AWS guide's
    walk-through, as {name: value}, in order."""
    section = walk_through()
    commands = re.findall(r"aws cloudformation deploy (.*?)(?:\n\s*```)", section.replace("\\\n", " "), re.S)
    deployments = []
    for command in commands:
        overrides = command.split("--parameter-overrides", 1)[1].split()
        deployments.append(dict(token.split("=", 1) for token in overrides))
    return deployments


def within_bounds(parameter: dict[str, Any], value: str) -> list[str]:
    """What is wrong with `value` for a CloudFormation parameter; [] if it is allowed."""
    problems = []
    if "AllowedValues" in parameter and value not in [str(v) for v in parameter["AllowedValues"]]:
        problems.append(f"{value!r} not in {parameter['AllowedValues']}")
    if parameter["Type"] == "Number":
        number = float(value)
        if "MinValue" in parameter and number < float(parameter["MinValue"]):
            problems.append(f"{value} < MinValue {parameter['MinValue']}")
        if "MaxValue" in parameter and number > float(parameter["MaxValue"]):
            problems.append(f"{value} > MaxValue {parameter['MaxValue']}")
    if "AllowedPattern" in parameter and not re.fullmatch(parameter["AllowedPattern"], value):
        problems.append(f"{value!r} does not match {parameter['AllowedPattern']}")
    return problems


def test_the_guide_s_walk_through_gives_values_the_template_accepts(template):
    parameters = template["Parameters"]
    deployments = walk_through_deployments()
    assert len(deployments) >= 3, "the AWS guide's walk-through deploys the stack three times"
    first = deployments[0]
    required = {name for name, p in parameters.items() if "Default" not in p}
    assert sorted(required - set(first)) == [], "the first deployment must give every parameter without a default"
    examples = {"$HOST": "login.example.com"}
    problems = []
    for number, overrides in enumerate(deployments, 1):
        for name, value in overrides.items():
            if name not in parameters:
                problems.append(f"deploy {number}: no parameter {name}")
                continue
            value = examples.get(value, value)
            if "$" in value or "..." in value or parameters[name]["Type"].startswith(("List<", "AWS::")):
                continue  # a placeholder the reader fills in
            problems += [f"deploy {number}: {name}={value}: {p}" for p in within_bounds(parameters[name], value)]
    assert problems == []


def test_the_public_url_is_the_host_name_over_https(template):
    assert "Default" not in template["Parameters"]["HostName"]
    assert container_environment(template)["CITYLOGIN_PUBLIC_URL"] == {"Fn::Sub": "https://${HostName}"}
    assert {"HostName": "$HOST"}.items() <= walk_through_deployments()[0].items()


def test_the_task_memory_text_says_the_real_argon2_memory():
    text = TEMPLATE.read_text(encoding="utf-8")
    mib = Settings.model_fields["argon2_memory_cost"].default // 1024
    assert f"{mib} MiB by default" in text and "64 MiB" not in text
