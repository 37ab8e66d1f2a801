"""CloudFormation's intrinsic functions answered with the names the local loop gives
things: account 123456789012, region us-east-1, each resource named by its logical id (the
table is `LedgerTable`, as DynamoDB Local has it), each parameter at the value given."""

from __future__ import annotations

import re
from typing import Any

from local.apigw import LOCAL_ACCOUNT_ID
from local.dynamodb_local import LOCAL_REGION
from local.template import Template

# A stream's label is the time DynamoDB made it; locally every table has this one stream.
LOCAL_STREAM_LABEL = "local"
# Parameters without a default that a deploy must be given: local stand-ins.
LOCAL_PARAMETERS = {
    "StripeSecretArn": (
        f"arn:aws:secretsmanager:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:secret:token-billing/local/stripe"
    ),
}
PSEUDO_PARAMETERS = {
    "AWS::Region": LOCAL_REGION,
    "AWS::AccountId": LOCAL_ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "token-billing-local",
    "AWS::NoValue": "",
}


def local_parameters(template: Template) -> dict[str, str]:
    """Every parameter at its default, the ones without a default at a local stand-in."""
    return {**template.parameter_defaults(), **LOCAL_PARAMETERS}


class LocalNames:
    """CloudFormation's intrinsic functions, answered with the local names."""

    def __init__(self, template: Template, parameters: dict[str, str]) -> None:
        self.template = template
        self.parameters = parameters

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function replaced by its local value."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
            return {key: self.resolve(item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(name, attribute)
        if function == "Fn::Sub":
            return self.sub(argument)
        if function == "Fn::If":
            condition, when_true, when_false = argument
            chosen = self.template.evaluate({"Condition": condition}, self.parameters)
            return self.resolve(when_true if chosen else when_false)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(part) for part in self.resolve(parts))
        raise ValueError(f"{function} is not resolved locally (local/iam_roles.py)")

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: str(self.resolve(value)) for name, value in variables.items()}

        def replace(name: str) -> str:
            if name in values:
                return values[name]
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return str(self.get_att(resource, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([\w:.]+)\}", lambda found: replace(found.group(1)), text)

    def ref(self, name: str) -> str:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.parameters:
            return self.parameters[name]
        resource_type = self.template.resources[name]["Type"]
        if resource_type == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:secret:{name}"
        if resource_type == "AWS::SQS::Queue":
            return f"https://sqs.{LOCAL_REGION}.amazonaws.com/{LOCAL_ACCOUNT_ID}/{name}"
        # Tables, buses, APIs, functions, stages: their name (or id) is the logical id.
        return name

    def get_att(self, name: str, attribute: str) -> str:
        resource_type = self.template.resources[name]["Type"]
        region, account = LOCAL_REGION, LOCAL_ACCOUNT_ID
        arns = {
            ("AWS::DynamoDB::Table", "Arn"): f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            ("AWS::DynamoDB::Table", "StreamArn"): (
                f"arn:aws:dynamodb:{region}:{account}:table/{name}/stream/{LOCAL_STREAM_LABEL}"
            ),
            ("AWS::Events::EventBus", "Arn"): f"arn:aws:events:{region}:{account}:event-bus/{name}",
            ("AWS::Events::EventBus", "Name"): name,
            ("AWS::SQS::Queue", "Arn"): f"arn:aws:sqs:{region}:{account}:{name}",
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::Lambda::Function", "Arn"): f"arn:aws:lambda:{region}:{account}:function:{name}",
            ("AWS::IAM::Role", "Arn"): f"arn:aws:iam::{account}:role/{name}",
            ("AWS::S3::Bucket", "Arn"): f"arn:aws:s3:::{name}",
        }
        if (resource_type, attribute) not in arns:
            raise ValueError(
                f"!GetAtt {name}.{attribute} ({resource_type}) is not resolved locally"
            )
        return arns[(resource_type, attribute)]
