"""Each template function's IAM role as `sam deploy` creates it, with the template's
references resolved to the local names: what the local IAM check (`local.iam_check`)
holds every AWS call of a function to.

SAM's own translator (`local/sam_translate.py`, run in the SAM CLI's venv: the code `sam
build` and `sam deploy` run) makes the roles, so the policy statements, SAM's policy
templates and the managed policies it attaches are exactly the deployed ones. Then every
`!Ref`, `!GetAtt`, `!Sub` and `!If` is resolved as the local loop names things: account
123456789012, region us-east-1, each resource named by its logical id (the table is
`LedgerTable`, as DynamoDB Local has it), each parameter at its default.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult

from local.apigw import LOCAL_ACCOUNT_ID
from local.dynamodb_local import LOCAL_REGION
from local.intrinsics import LocalNames, local_parameters
from local.template import ROOT, Template, load_template

SAM_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"
TRANSLATOR = Path(__file__).with_name("sam_translate.py")
TRANSLATED_CACHE = ROOT / ".local" / "sam-translated"
# A template's translation depends on it and on the translator's version (requirements/sam.txt).
TRANSLATION_INPUTS = (ROOT / "requirements" / "sam.txt", TRANSLATOR)

# The AWS managed policies SAM attaches, as AWS publishes them (they cannot be read offline).
MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaBasicExecutionRole.html
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ],
    },
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSXrayWriteOnlyAccess.html
    # (SAM attaches it for `Tracing: Active`.)
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": ["*"],
            }
        ],
    },
}


@dataclass(frozen=True)
class FunctionRole:
    """A function's execution role: its policies, resolved to the local names."""

    function: str  # logical id; locally also the function's name
    role: str  # the role's logical id; locally also its name
    policies: tuple[dict[str, Any], ...]  # inline and managed policy documents

    @property
    def session_arn(self) -> str:
        """Who calls AWS, as AWS names a Lambda function's session of its role."""
        return f"arn:aws:sts::{LOCAL_ACCOUNT_ID}:assumed-role/{self.role}/{self.function}"

    def allows(self, action: str, resource: str) -> bool:
        """IAM's identity-policy evaluation (moto's evaluator): an explicit Deny wins, then
        any Allow; nothing that matches is an implicit deny."""
        results = [
            IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)
            for document in self.policies
        ]
        if PermissionResult.DENIED in results:
            return False
        return PermissionResult.PERMITTED in results


def function_roles(template_path: Path) -> dict[str, FunctionRole]:
    """Every template function's role, by function logical id."""
    translated = translated_template(template_path)
    names = LocalNames(Template(translated), local_parameters(load_template(template_path)))
    resources: dict[str, Any] = translated["Resources"]
    roles = {}
    for function, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role_arn = resource["Properties"]["Role"]
        if not (isinstance(role_arn, dict) and "Fn::GetAtt" in role_arn):
            raise ValueError(f"{function}: Role {role_arn!r} is not one of the template's roles")
        role = role_arn["Fn::GetAtt"][0]
        properties = resources[role]["Properties"]
        policies = [names.resolve(p["PolicyDocument"]) for p in properties.get("Policies", [])]
        for arn in names.resolve(properties.get("ManagedPolicyArns", [])):
            if arn not in MANAGED_POLICIES:
                raise ValueError(
                    f"{function}: managed policy {arn} is not known offline; add its document "
                    "to MANAGED_POLICIES in local/iam_roles.py (from its AWS page)"
                )
            policies.append(MANAGED_POLICIES[arn])
        roles[function] = FunctionRole(function, role, tuple(policies))
    return roles


def translated_template(template_path: Path) -> dict[str, Any]:
    """The CloudFormation SAM makes of the template, cached per template and translator."""
    raw = load_template(template_path).raw
    parameters = local_parameters(load_template(template_path))
    source = json.dumps([raw, parameters], sort_keys=True).encode()
    digest = hashlib.sha256(source)
    for path in TRANSLATION_INPUTS:
        digest.update(path.read_bytes())
    cached = TRANSLATED_CACHE / f"{digest.hexdigest()[:32]}.json"
    if cached.is_file():
        translated: dict[str, Any] = json.loads(cached.read_text())
        return translated
    if not SAM_PYTHON.exists():
        raise RuntimeError(
            f"{SAM_PYTHON} is missing: the local IAM check reads the roles SAM makes; "
            "`make dev` and `make test` install it (`make .tools/sam/.installed`)"
        )
    completed = subprocess.run(
        [str(SAM_PYTHON), str(TRANSLATOR), json.dumps(parameters)],
        input=json.dumps(raw),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": LOCAL_REGION, "AWS_REGION": LOCAL_REGION},
        timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"SAM could not translate {template_path}:\n{completed.stderr}")
    translated = json.loads(completed.stdout)
    TRANSLATED_CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(completed.stdout)
    partial.replace(cached)  # atomic: test sessions and `make dev` may translate at once
    return translated
