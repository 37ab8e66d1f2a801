"""What a security review checks before the first `sam deploy` (issue 17): alarms that can
reach someone, names that let a dev and a prod stack share an account, refused parameter
mistakes, least privilege, caller trails, the identity side. Each test reads template.yaml
(or the Makefile) without deploying."""

from __future__ import annotations

import json
import re
from itertools import product
from typing import Any

import pytest

from local.template import ROOT, load_template

TEMPLATE = load_template()
RESOURCES = TEMPLATE.resources
WRITE_ACTIONS = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
}


def of_type(kind: str) -> dict[str, Any]:
    return {name: spec for name, spec in RESOURCES.items() if spec["Type"] == kind}


def statements(function: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        found.extend(policy.get("Statement", []))
    return found


def actions_of(function: str) -> set[str]:
    actions: set[str] = set()
    for statement in statements(function):
        listed = statement["Action"]
        actions.update(listed if isinstance(listed, list) else [listed])
    return actions


def resolve_stage_value(value: Any, stage: str) -> Any:
    """A !FindInMap keyed by !Ref Stage, as CloudFormation resolves it for `stage`."""
    if isinstance(value, dict) and "Fn::FindInMap" in value:
        mapping, key, name = value["Fn::FindInMap"]
        assert key == {"Ref": "Stage"}, value
        return TEMPLATE.raw["Mappings"][mapping][stage][name]
    return value


# ---- 1. alarms that arrive -------------------------------------------------------------


def alarm_topics() -> set[str]:
    topics = set()
    for alarm in of_type("AWS::CloudWatch::Alarm").values():
        for action in alarm["Properties"].get("AlarmActions", []):
            assert "Ref" in action, action
            topics.add(action["Ref"])
    return topics


def test_no_alarm_topic_is_under_the_aws_managed_sns_key() -> None:
    topics = alarm_topics()
    assert topics, "the alarms notify no topic"
    for topic in topics:
        key = RESOURCES[topic]["Properties"].get("KmsMasterKeyId")
        assert key is not None, f"{topic}: unencrypted without a written reason"
        assert key != "alias/aws/sns", f"{topic}: CloudWatch cannot use the AWS-managed key"
        assert key == {"Fn::GetAtt": [key["Fn::GetAtt"][0], "Arn"]}, key


def test_the_alarm_topic_key_lets_cloudwatch_publish() -> None:
    for topic in alarm_topics():
        key_id = RESOURCES[topic]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
        key = RESOURCES[key_id]
        assert key["Type"] == "AWS::KMS::Key"
        assert key["Properties"]["EnableKeyRotation"] is True
        grants = [
            statement
            for statement in key["Properties"]["KeyPolicy"]["Statement"]
            if statement.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
        ]
        assert len(grants) == 1, key_id
        (grant,) = grants
        assert grant["Effect"] == "Allow"
        assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        # Confused deputy: only alarms of this account.
        assert grant["Condition"] == {
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        }


def test_the_alarm_topic_policy_lets_cloudwatch_publish_to_it() -> None:
    (policy,) = of_type("AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": "AlarmTopic"}]
    (publish,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and s["Action"] == "sns:Publish"
    ]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}


# ---- 2. deploy from a fresh clone, two stages in one account ---------------------------

# Where each resource type keeps a name that must be unique per account and region.
NAME_PROPERTIES = {
    "AWS::Events::EventBus": ("Name",),
    "AWS::KMS::Alias": ("AliasName",),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::SQS::Queue": ("QueueName",),
    "AWS::SNS::Topic": ("TopicName",),
    "AWS::DynamoDB::Table": ("TableName",),
    "AWS::Serverless::Function": ("FunctionName",),
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::Athena::WorkGroup": ("Name",),
    "AWS::Cognito::UserPool": ("UserPoolName",),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName",),
    "AWS::CloudFront::OriginAccessControl": ("OriginAccessControlConfig", "Name"),
    "AWS::CloudFront::ResponseHeadersPolicy": ("ResponseHeadersPolicyConfig", "Name"),
}


def stack_scoped(name: Any) -> bool:
    """A name that differs per stack: the stack's name in it, or a resource of this stack."""
    if isinstance(name, dict) and "Fn::Sub" in name:
        text = name["Fn::Sub"] if isinstance(name["Fn::Sub"], str) else name["Fn::Sub"][0]
        variables = set(re.findall(r"\$\{([\w:.]+)\}", text))
        return "AWS::StackName" in variables or any(
            variable.split(".")[0] in RESOURCES for variable in variables
        )
    return False


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_explicit_names_are_derived_from_the_stack(resource: str) -> None:
    spec = RESOURCES[resource]
    path = NAME_PROPERTIES.get(spec["Type"])
    if path is None:
        return
    value: Any = spec.get("Properties", {})
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    assert value is None or stack_scoped(value), (resource, value)


def test_schedules_are_named_by_cloudformation_or_after_the_stack() -> None:
    schedules = [
        (function, event["Properties"])
        for kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
        for function, spec in of_type(kind).items()
        for event in spec["Properties"].get("Events", {}).values()
        if event["Type"] in ("Schedule", "ScheduleV2")
    ]
    assert len(schedules) == 2  # the holds sweeper, the reconciliation
    for function, properties in schedules:
        assert properties.get("OmitName") is True or stack_scoped(properties.get("Name")), function


def test_only_the_hosted_sign_in_domain_is_a_name_the_operator_chooses() -> None:
    # Globally unique by nature (a DNS label): a parameter, empty unless hosted sign-in.
    domain = RESOURCES["UserPoolDomain"]["Properties"]["Domain"]
    assert domain == {"Ref": "CognitoDomainPrefix"}
    assert TEMPLATE.raw["Parameters"]["CognitoDomainPrefix"]["Default"] == ""


def refused(parameters: dict[str, str]) -> list[str]:
    failed = []
    for rule_name, rule in TEMPLATE.raw.get("Rules", {}).items():
        if "RuleCondition" in rule and not TEMPLATE.evaluate(rule["RuleCondition"], parameters):
            continue
        for assertion in rule["Assertions"]:
            if not TEMPLATE.evaluate(assertion["Assert"], parameters):
                assert assertion["AssertDescription"]
                failed.append(rule_name)
    return failed


# What `sam deploy --guided` is answered with in the README's steps (no hosted web app).
DEPLOY_ANSWERS = {
    **TEMPLATE.parameter_defaults(),
    "StripeSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:stripe-dev-AbCdEf",
    "CheckoutRedirectOrigins": "https://app.example.com",
    "CheckoutSuccessUrl": "https://app.example.com/billing/success",
    "CheckoutCancelUrl": "https://app.example.com/billing/cancel",
}


def test_the_readme_answers_pass_the_rules() -> None:
    assert refused(DEPLOY_ANSWERS) == []


@pytest.mark.parametrize(
    ("issuer", "audience"), list(product(["", "https://idp.example.com"], ["", "client-1"]))
)
def test_rules_refuse_an_issuer_without_an_audience_and_the_reverse(
    issuer: str, audience: str
) -> None:
    parameters = {**DEPLOY_ANSWERS, "JwtIssuer": issuer, "JwtAudience": audience}
    assert bool(refused(parameters)) == (bool(issuer) != bool(audience))


@pytest.mark.parametrize(
    "missing", ["CheckoutRedirectOrigins", "CheckoutSuccessUrl", "CheckoutCancelUrl"]
)
def test_rules_refuse_checkout_without_redirects_unless_the_stack_hosts_the_app(
    missing: str,
) -> None:
    assert refused({**DEPLOY_ANSWERS, missing: ""}) == ["CheckoutNeedsRedirectsWithoutTheHostedApp"]
    hosted = {**DEPLOY_ANSWERS, "DeployWebApp": "true", missing: ""}
    assert refused(hosted) == []


@pytest.mark.parametrize(("invoices", "tax"), list(product(["true", "false"], repeat=2)))
def test_rules_refuse_stripe_tax_without_invoices(invoices: str, tax: str) -> None:
    # An auto top-up without an invoice is a bare PaymentIntent: Stripe Tax cannot tax it.
    parameters = {**DEPLOY_ANSWERS, "StripeInvoices": invoices, "StripeTax": tax}
    expected = ["StripeTaxNeedsInvoices"] if (invoices, tax) == ("false", "true") else []
    assert refused(parameters) == expected


def test_outputs_name_the_event_bus_and_every_dead_letter_queue() -> None:
    outputs = TEMPLATE.raw["Outputs"]
    (bus,) = of_type("AWS::Events::EventBus")
    values = [output["Value"] for output in outputs.values()]
    assert {"Fn::GetAtt": [bus, "Name"]} in values
    assert {"Fn::GetAtt": [bus, "Arn"]} in values
    queues = of_type("AWS::SQS::Queue")
    assert len(queues) == 3  # ledger stream, scheduled work, auto top-up charger
    for queue in queues:
        # Ref of an SQS queue is its URL.
        assert {"Ref": queue} in values, queue


def makefile_prerequisites(target: str) -> list[str]:
    text = (ROOT / "Makefile").read_text()
    found = re.search(rf"(?m)^{re.escape(target)}:(.*)$", text)
    assert found is not None, target
    return found.group(1).split()


@pytest.mark.parametrize("target", ["sam-build", "sam-validate", "checkov", "deploy"])
def test_sam_and_checkov_targets_bootstrap_their_tools(target: str) -> None:
    prerequisites = set(makefile_prerequisites(target))
    if target == "deploy":
        assert "sam-build" in prerequisites
        prerequisites = set(makefile_prerequisites("sam-build"))
    if target == "checkov":
        assert "$(CHECKOV_VENV)/.installed" in prerequisites
    else:
        assert "$(SAM_VENV)/.installed" in prerequisites
    if target in ("sam-build", "checkov", "deploy"):
        # sam build runs the project venv's python3.13; the variants come from tools/.
        assert "$(VENV)/.installed" in prerequisites


def test_deploy_is_guided_and_picks_the_stage_config_env() -> None:
    text = (ROOT / "Makefile").read_text()
    assert "$(SAM) deploy --guided --config-env $(CONFIG_ENV)" in text
    assert "CONFIG_ENV := $(if $(filter dev,$(STAGE)),default,$(STAGE))" in text
    samconfig = (ROOT / "samconfig.toml").read_text()
    assert "[default.deploy.parameters]" in samconfig
    assert "[prod.deploy.parameters]" in samconfig


def test_the_hosted_app_is_checkouts_default_return_without_a_second_deploy() -> None:
    env = RESOURCES["PurchaseFunction"]["Properties"]["Environment"]["Variables"]
    assert env["CHECKOUT_SUCCESS_URL"]["Fn::If"][:2] == [
        "HostedSuccessUrl",
        {"Fn::Sub": "https://${WebDistribution.DomainName}/checkout/success"},
    ]
    assert env["CHECKOUT_CANCEL_URL"]["Fn::If"][:2] == [
        "HostedCancelUrl",
        {"Fn::Sub": "https://${WebDistribution.DomainName}/checkout/cancel"},
    ]
    assert env["CHECKOUT_REDIRECT_ORIGINS"]["Fn::If"][:2] == [
        "DeployWebAppCondition",
        {"Fn::Sub": "${CheckoutRedirectOrigins},https://${WebDistribution.DomainName}"},
    ]
    # Locally (every parameter at its default: no hosted app) the parameters are used.
    purchase = TEMPLATE.functions()["PurchaseFunction"].environment
    assert purchase["CHECKOUT_SUCCESS_URL"] == ""
    assert purchase["CHECKOUT_REDIRECT_ORIGINS"] == ""


# ---- 3. least privilege and blast radius -----------------------------------------------


def test_grants_have_a_function_of_their_own() -> None:
    routes = {(route.method, route.path): route for route in TEMPLATE.http_routes()}
    grants = routes[("POST", "/api/v1/customers/{id}/tokens/grants")]
    assert grants.function == "GrantsFunction"
    assert grants.authorized is True
    assert [route for route in routes.values() if route.function == "GrantsFunction"] == [grants]


def test_only_the_grants_function_writes_among_the_read_and_grant_routes() -> None:
    assert actions_of("BalancesFunction") <= {"dynamodb:GetItem", "dynamodb:Query"}
    assert actions_of("GrantsFunction") == {
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:GetItem",
    }
    (statement,) = statements("GrantsFunction")
    assert statement["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    # Every function that may write ledger items has a reason to: no read route among them.
    writers = {
        function
        for function in of_type("AWS::Serverless::Function")
        if actions_of(function) & WRITE_ACTIONS
    }
    assert writers == {
        "GrantsFunction",
        "PurchaseFunction",
        "WebhookFunction",
        "DebitFunction",
        "LedgerStreamFunction",
        "HoldsSweeperFunction",
        # Its WebSocket connection items (SK "WS#..."): Put on $connect, Delete on $disconnect.
        "RealtimeFunction",
        # Auto top-up: its settings item (UpdateItem); the charger ends attempts (UpdateItem).
        "AutoTopUpFunction",
        "TopUpChargerFunction",
        # Per-VM limits (issue 25): its settings item only (PutItem under its version).
        "VmLimitsFunction",
    }


# Who may read each secret: the roles its resource policy spares from its Deny, and the
# only functions whose own policies name it. Anyone else is denied whatever they hold.
SECRET_READERS = {
    "StripeSecretArn": (
        [
            {"Fn::GetAtt": ["PurchaseFunctionRole", "Arn"]},
            {"Fn::GetAtt": ["WebhookFunctionRole", "Arn"]},
            {"Fn::GetAtt": ["TopUpChargerFunctionRole", "Arn"]},  # auto top-up charges
        ],
        {"PurchaseFunction", "WebhookFunction", "TopUpChargerFunction"},
    ),
    "AgentCredentialKeys": (
        [
            {"Fn::GetAtt": ["DebitFunctionRole", "Arn"]},
            {"Ref": "ControlPlaneRoleArn"},  # the control plane mints, when it is named
        ],
        {"DebitFunction"},
    ),
}


def spared_principals(condition: Any) -> list[Any]:
    """The principal ARNs a Deny's StringNotEquals spares, across both branches of an If."""
    found = condition["StringNotEquals"]["aws:PrincipalArn"]
    if isinstance(found, dict) and "Fn::If" in found:
        _, with_it, without_it = found["Fn::If"]
        assert all(principal in with_it for principal in without_it)
        return list(with_it)
    return list(found)


def grants_secret_reads(statement: dict[str, Any]) -> bool:
    actions = (
        statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    )
    return statement["Effect"] == "Allow" and any(
        action in ("*", "secretsmanager:*", "secretsmanager:GetSecretValue") for action in actions
    )


@pytest.mark.parametrize("secret", sorted(SECRET_READERS))
def test_no_principal_but_the_named_roles_can_read_either_secret(secret: str) -> None:
    spared, readers = SECRET_READERS[secret]
    (policy,) = [
        spec["Properties"]
        for spec in of_type("AWS::SecretsManager::ResourcePolicy").values()
        if spec["Properties"]["SecretId"] == {"Ref": secret}
    ]
    assert policy["BlockPublicPolicy"] is True
    (deny,) = policy["ResourcePolicy"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"], deny["Resource"]) == (
        "Deny",
        "*",
        "secretsmanager:GetSecretValue",
        "*",
    )
    assert spared_principals(deny["Condition"]) == spared
    # And on the identity side: no function, role or managed policy of the stack is given
    # the secret but the named functions (each for that secret alone).
    for name, spec in RESOURCES.items():
        documents = [p for p in spec["Properties"].get("Policies", []) if isinstance(p, dict)]
        if spec["Type"] == "AWS::IAM::ManagedPolicy":
            documents.append(spec["Properties"]["PolicyDocument"])
        for document in documents:
            for statement in document.get("Statement", []):
                if not grants_secret_reads(statement):
                    continue
                assert statement["Resource"] != "*", name
                if statement["Resource"] == {"Ref": secret}:
                    assert name in readers, name


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_debit_and_webhook_have_reserved_concurrency(stage: str) -> None:
    reserved = {
        function: resolve_stage_value(
            RESOURCES[function]["Properties"].get("ReservedConcurrentExecutions"), stage
        )
        for function in ("DebitFunction", "WebhookFunction")
    }
    for function, value in reserved.items():
        assert isinstance(value, int), (function, value)
        assert value > 0, function  # 0 would throttle every call
    # Lambda keeps 100 of an account's concurrency unreserved; the default quota is 1,000,
    # and a dev and a prod stack may share it.
    both_stages = sum(
        resolve_stage_value(RESOURCES[f]["Properties"]["ReservedConcurrentExecutions"], s)
        for f in ("DebitFunction", "WebhookFunction")
        for s in ("dev", "prod")
    )
    assert both_stages <= 1_000 - 100 - 500  # and half the account for everything else
    assert reserved["DebitFunction"] > reserved["WebhookFunction"]


def test_the_http_api_writes_a_json_access_log_per_request() -> None:
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    (log_group,) = settings["DestinationArn"]["Fn::GetAtt"][:1]
    assert settings["DestinationArn"] == {"Fn::GetAtt": [log_group, "Arn"]}
    assert RESOURCES[log_group]["Type"] == "AWS::Logs::LogGroup"
    # `...String` variables arrive JSON-quoted; the others sit inside quotes.
    line = re.sub(r"\$context\.[\w.]+String", '"x"', settings["Format"])
    line = re.sub(r"\$context\.[\w.]+", "x", line)
    fields = json.loads(line)  # one JSON object per request
    variables = dict(re.findall(r'"(\w+)":"(\$context\.[\w.]+)"', settings["Format"]))
    assert set(fields) == {*variables, "errorMessage"}
    assert variables["requestId"] == "$context.requestId"
    assert variables["routeKey"] == "$context.routeKey"
    assert variables["status"] == "$context.status"
    assert variables["sub"] == "$context.authorizer.claims.sub"
    assert variables["latencyMs"] == "$context.responseLatency"


def test_the_access_log_keeps_what_the_functions_logs_keep() -> None:
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    log_group = settings["DestinationArn"]["Fn::GetAtt"][0]
    retention = RESOURCES[log_group]["Properties"]["RetentionInDays"]
    for function in of_type("AWS::Serverless::Function"):
        assert RESOURCES[f"{function}LogGroup"]["Properties"]["RetentionInDays"] == retention


# ---- 4. the identity side --------------------------------------------------------------


def test_the_user_pool_outlives_the_stack_and_is_protected_in_prod() -> None:
    pool = RESOURCES["UserPool"]
    assert pool["DeletionPolicy"] == "Retain"
    assert pool["UpdateReplacePolicy"] == "Retain"
    assert pool["Properties"]["DeletionProtection"] == {"Fn::If": ["IsProd", "ACTIVE", "INACTIVE"]}


def test_self_sign_up_is_off_unless_a_parameter_turns_it_on() -> None:
    parameter = TEMPLATE.raw["Parameters"]["AllowSelfSignUp"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["true", "false"])
    assert TEMPLATE.raw["Conditions"]["SelfSignUp"] == {
        "Fn::Equals": [{"Ref": "AllowSelfSignUp"}, "true"]
    }
    config = RESOURCES["UserPool"]["Properties"]["AdminCreateUserConfig"]
    assert config["AllowAdminCreateUserOnly"] == {"Fn::If": ["SelfSignUp", False, True]}


def test_admins_can_enrol_totp_mfa_and_the_readme_says_to() -> None:
    # Cognito cannot require MFA for one group: TOTP is offered, the operator's step is
    # written down (README, Deploy).
    properties = RESOURCES["UserPool"]["Properties"]
    assert properties["MfaConfiguration"] in ("OPTIONAL", "ON")
    assert properties["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    readme = (ROOT / "README.md").read_text()
    assert "admin-set-user-mfa-preference" in readme


def test_hosted_sign_in_uses_the_code_grant_not_the_implicit_one() -> None:
    client = RESOURCES["UserPoolClient"]["Properties"]
    assert client["AllowedOAuthFlows"] == {
        "Fn::If": ["HostedSignIn", ["code"], {"Ref": "AWS::NoValue"}]
    }
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    web_auth = (ROOT / "web" / "src" / "demo" / "auth.ts").read_text()
    assert 'response_type: "code"' in web_auth
    assert 'code_challenge_method: "S256"' in web_auth
    assert 'response_type: "token"' not in web_auth


def test_the_web_app_sends_security_headers_on_every_response() -> None:
    (policy_id,) = of_type("AWS::CloudFront::ResponseHeadersPolicy")
    policy = RESOURCES[policy_id]
    assert policy["Condition"] == "DeployWebAppCondition"
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = "".join(
        part
        for part in headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Join"][1]
        if isinstance(part, str)
    )
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000
    assert headers["ContentTypeOptions"]["Override"] is True
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    config = RESOURCES["WebDistribution"]["Properties"]["DistributionConfig"]
    behaviors = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    for behavior in behaviors:
        assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}, behavior


# ---- 5. security posture: checkov's skips are reviewable --------------------------------


def checkov_skips() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, skip)
        for name, spec in RESOURCES.items()
        for skip in spec.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]


def test_every_checkov_skip_is_in_the_template_with_a_one_line_reason() -> None:
    skips = checkov_skips()
    assert skips
    for resource, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (resource, skip)
        reason = skip.get("comment", "")
        assert 20 <= len(reason) <= 140, (resource, skip)
        assert "\n" not in reason, (resource, skip)
    assert len({(resource, skip["id"]) for resource, skip in skips}) == len(skips)


def test_make_test_runs_checkov_over_both_web_app_settings() -> None:
    text = (ROOT / "Makefile").read_text()
    test_line = re.search(r"(?m)^test:.*\n\t\$\(MAKE\) (.*)$", text)
    assert test_line is not None
    assert "checkov" in test_line.group(1).split()
    assert "DeployWebApp=false" in text
    assert "DeployWebApp=true" in text
    pinned = (ROOT / "requirements" / "checkov.txt").read_text()
    assert re.search(r"(?m)^checkov==\d+\.\d+\.\d+$", pinned)


# ---- 6. the README's Deploy section -------------------------------------------------------


def deploy_section() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"(?ms)^### Deploy\n(.*?)(?=^##)", readme)
    assert found is not None, "README.md has no Deploy section"
    return found.group(1)


def test_the_readme_explains_every_question_of_the_guided_deploy() -> None:
    section = deploy_section()
    for parameter in TEMPLATE.raw["Parameters"]:
        assert f"`{parameter}`" in section, parameter


def test_the_readme_walks_through_a_first_deploy_in_order() -> None:
    section = deploy_section()
    steps = [
        "aws secretsmanager create-secret",
        "make deploy",
        "Register the webhook",
        "Confirm the alarm e-mail",
        "admin-set-user-mfa-preference",
        "make publish-web",
    ]
    positions = [section.find(step) for step in steps]
    assert all(position >= 0 for position in positions), dict(zip(steps, positions, strict=True))
    assert positions == sorted(positions)
