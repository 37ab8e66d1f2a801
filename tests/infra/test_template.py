"""template.yaml itself: what DESIGN.md fixes, checked without deploying."""

from __future__ import annotations

from typing import Any

import pytest

from local.template import ROOT, load_template

TEMPLATE = load_template()
RESOURCES = TEMPLATE.resources


def of_type(kind: str) -> dict[str, Any]:
    return {name: spec for name, spec in RESOURCES.items() if spec["Type"] == kind}


def test_functions_run_python313_on_arm64_with_the_shared_layer() -> None:
    globals_ = TEMPLATE.raw["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Layers"] == [{"Ref": "SharedLayer"}]


def test_layer_is_built_for_arm64() -> None:
    layer = RESOURCES["SharedLayer"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_table_is_on_demand_with_pitr_and_a_stream() -> None:
    (table,) = of_type("AWS::DynamoDB::Table").values()
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["DeletionPolicy"] == "Retain"


def test_every_function_has_its_own_handler_module() -> None:
    modules = [spec.module_name for spec in TEMPLATE.functions().values()]
    assert len(modules) == len(set(modules))
    for spec in TEMPLATE.functions().values():
        assert (spec.code_uri / f"{spec.module_name}.py").is_file(), spec.logical_id


def test_debit_is_invoked_directly_not_over_http() -> None:
    assert RESOURCES["DebitFunction"]["Properties"].get("Events") is None
    policy = RESOURCES["VmAgentDebitPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert policy == [
        {
            "Sid": "InvokeDebit",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": {"Fn::GetAtt": ["DebitFunction", "Arn"]},
        }
    ]
    assert "VmAgentDebitPolicyArn" in TEMPLATE.raw["Outputs"]


def statements(function: str) -> list[dict[str, Any]]:
    found = []
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        found.extend(policy.get("Statement", []))
    return found


@pytest.mark.parametrize("function", list(of_type("AWS::Serverless::Function")))
def test_policies_are_least_privilege(function: str) -> None:
    for statement in statements(function):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all("*" not in action for action in actions), (function, actions)
        assert statement["Resource"] != "*", function


def test_debit_may_not_delete_or_scan() -> None:
    actions = {
        action for statement in statements("DebitFunction") for action in statement["Action"]
    }
    assert actions <= {
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:GetItem",
        "secretsmanager:GetSecretValue",  # the agent credential keys, nothing else
    }


def test_agent_credentials_are_required_by_default_and_only_debit_reads_their_keys() -> None:
    parameter = TEMPLATE.raw["Parameters"]["RequireAgentCredentials"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("true", ["true", "false"])
    env = RESOURCES["DebitFunction"]["Properties"]["Environment"]["Variables"]
    assert env["REQUIRE_AGENT_CREDENTIALS"] == {"Ref": "RequireAgentCredentials"}
    assert env["AGENT_CREDENTIAL_SECRET_ARN"] == {"Ref": "AgentCredentialKeys"}
    (statement,) = [s for s in statements("DebitFunction") if s["Sid"] == "AgentCredentialKeys"]
    assert statement["Resource"] == {"Ref": "AgentCredentialKeys"}
    assert RESOURCES["AgentCredentialKeys"]["Type"] == "AWS::SecretsManager::Secret"
    readers = {
        function
        for function in of_type("AWS::Serverless::Function")
        for statement in statements(function)
        if statement.get("Resource") == {"Ref": "AgentCredentialKeys"}
    }
    assert readers == {"DebitFunction"}


def test_packages_function_has_no_table_access() -> None:
    assert statements("PackagesFunction") == []


def test_routes_match_the_design() -> None:
    routes = {(route.method, route.path): route.function for route in TEMPLATE.http_routes()}
    assert routes[("GET", "/api/v1/token-packages")] == "PackagesFunction"
    assert routes[("GET", "/api/v1/token-rates")] == "PackagesFunction"
    assert routes[("POST", "/api/v1/usage-estimate")] == "PackagesFunction"
    auto_top_up = "/api/v1/customers/{id}/tokens/auto-top-up"
    assert routes[("GET", auto_top_up)] == routes[("PUT", auto_top_up)] == "AutoTopUpFunction"
    vm_limits = "/api/v1/customers/{id}/tokens/vm-limits"
    assert routes[("GET", vm_limits)] == routes[("PUT", vm_limits)] == "VmLimitsFunction"
    # Usage by VM is a read: the read-only balances function serves it.
    assert routes[("GET", "/api/v1/customers/{id}/tokens/usage")] == "BalancesFunction"


def test_vm_limits_may_only_read_and_replace_their_settings_item() -> None:
    actions = {
        action for statement in statements("VmLimitsFunction") for action in statement["Action"]
    }
    assert actions == {"dynamodb:GetItem", "dynamodb:PutItem"}
    (statement,) = statements("VmLimitsFunction")
    assert statement["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}


def test_only_purchase_webhook_and_the_top_up_charger_may_read_the_stripe_secret() -> None:
    readers = {
        function
        for function in of_type("AWS::Serverless::Function")
        for statement in statements(function)
        if "secretsmanager:GetSecretValue" in statement["Action"]
        and statement["Resource"] != {"Ref": "AgentCredentialKeys"}
    }
    assert readers == {"PurchaseFunction", "WebhookFunction", "TopUpChargerFunction"}
    for function in readers:
        (statement,) = [s for s in statements(function) if s["Sid"] == "StripeSecret"]
        assert statement["Resource"] == {"Ref": "StripeSecretArn"}
        env = RESOURCES[function]["Properties"]["Environment"]["Variables"]
        assert env["STRIPE_SECRET_ARN"] == {"Ref": "StripeSecretArn"}
        assert not any("STRIPE_SECRET_KEY" in name for name in env)


def test_webhook_has_no_authorizer_and_customer_routes_have_the_jwt_one() -> None:
    api = RESOURCES["HttpApi"]["Properties"]["Auth"]
    assert api["DefaultAuthorizer"] == "JwtAuthorizer"
    routes = {(route.method, route.path): route.authorized for route in TEMPLATE.http_routes()}
    assert routes[("POST", "/webhooks/stripe")] is False
    assert routes[("POST", "/api/v1/customers/{id}/tokens/purchase")] is True
    assert routes[("GET", "/api/v1/token-packages")] is False


def test_every_function_has_error_and_throttle_alarms_on_the_topic() -> None:
    alarms = of_type("AWS::CloudWatch::Alarm").values()
    watched = {
        (alarm["Properties"]["MetricName"], alarm["Properties"]["Dimensions"][0]["Value"]["Ref"])
        for alarm in alarms
        if alarm["Properties"]["Namespace"] == "AWS/Lambda"
    }
    for function in of_type("AWS::Serverless::Function"):
        assert ("Errors", function) in watched, function
        assert ("Throttles", function) in watched, function
    assert all(alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for alarm in alarms)


def test_business_alarms_watch_the_metrics_the_code_emits() -> None:
    business = {
        alarm["Properties"]["MetricName"]
        for alarm in of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["Namespace"] == "TokenBilling"
    }
    assert business == {
        "WebhookSignatureFailures",
        "AmountMismatches",
        "ReconciliationDifferences",
        "AutoTopUpFailures",
        "UnmatchedPayments",
        "StripeAuthFailures",
        "AutoTopUpRecoveryLinkFailures",
        "AutoTopUpExpired",
        "LedgerDrift",
    }
    sources = "".join(path.read_text() for path in (ROOT / "functions").rglob("*.py"))
    sources += "".join(path.read_text() for path in (ROOT / "layers" / "shared").rglob("*.py"))
    for metric in business:  # added by name=, or counted by name (observability.count)
        assert f'name="{metric}"' in sources or f'"{metric}"' in sources, metric


def test_failed_asynchronous_work_goes_to_a_dead_letter_queue() -> None:
    for source, queue in (
        ("LedgerStreamEventSource", "LedgerStreamDLQ"),
        ("TopUpChargerEventSource", "TopUpChargerDLQ"),
    ):
        stream = RESOURCES[source]["Properties"]
        assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": [queue, "Arn"]
        }
    for scheduled in ("HoldsSweeperFunction", "ReconciliationStateMachine"):
        (event,) = RESOURCES[scheduled]["Properties"]["Events"].values()
        assert event["Type"] == "ScheduleV2"
        assert event["Properties"]["DeadLetterConfig"]["Arn"] == {
            "Fn::GetAtt": ["ScheduledWorkDLQ", "Arn"]
        }


def test_reconcile_only_reads_query_results() -> None:
    actions = set()
    for statement in statements("ReconcileFunction"):
        actions |= set(
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    assert actions == {"athena:GetQueryRuntimeStatistics", "athena:GetQueryResults", "s3:GetObject"}


def test_hosted_sign_in_exists_only_with_the_pool_the_web_app_and_a_domain() -> None:
    condition = TEMPLATE.raw["Conditions"]["HostedSignIn"]["Fn::And"]
    assert {"Condition": "CreateUserPool"} in condition
    assert {"Condition": "DeployWebAppCondition"} in condition
    assert RESOURCES["UserPoolDomain"]["Condition"] == "HostedSignIn"
    client = RESOURCES["UserPoolClient"]["Properties"]
    assert client["CallbackURLs"]["Fn::If"][1] == [
        {"Fn::Sub": "https://${WebDistribution.DomainName}/auth/callback"}
    ]


STREAM_ACTIONS = frozenset(
    {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    }
)


def test_stream_consumers_read_this_tables_stream_and_no_other() -> None:
    """No SAM `Type: DynamoDB` event (it attaches AWSLambdaDynamoDBExecutionRole: GetRecords
    on every stream of the account): each consumer's own policy names the table's stream."""
    consumers = {
        properties["FunctionName"]["Ref"]: properties
        for properties in (
            resource["Properties"]
            for resource in RESOURCES.values()
            if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        )
    }
    assert set(consumers) == {"LedgerStreamFunction", "TopUpChargerFunction"}
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::Serverless::Function":
            events = resource["Properties"].get("Events", {}).values()
            assert all(event["Type"] != "DynamoDB" for event in events), name
    stream_arn = {"Fn::GetAtt": ["LedgerTable", "StreamArn"]}
    for function, mapping in consumers.items():
        assert mapping["EventSourceArn"] == stream_arn
        statements = [
            statement
            for policy in RESOURCES[function]["Properties"]["Policies"]
            for statement in policy["Statement"]
        ]
        reads = {
            action: statement["Resource"]
            for statement in statements
            for action in (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            if action in STREAM_ACTIONS
        }
        assert reads == {
            "dynamodb:DescribeStream": stream_arn,
            "dynamodb:GetRecords": stream_arn,
            "dynamodb:GetShardIterator": stream_arn,
            "dynamodb:ListStreams": {"Fn::Sub": "${LedgerTable.Arn}/stream/*"},
        }, function
        assert all(statement["Resource"] != "*" for statement in statements), function
