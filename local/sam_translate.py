"""Runs in the SAM CLI's venv (.tools/sam), not the project's: SAM's own translator turns the
template (JSON on stdin, CloudFormation's long form) into the CloudFormation that `sam
deploy` creates, printed as JSON. `local.iam_roles` calls it to read each function's role.

It imports nothing of the project: the SAM CLI pins its own pydantic, which is not the
layer's, so the translator cannot share the project's venv.

    .tools/sam/bin/python local/sam_translate.py PARAMETERS_JSON < template.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from samtranslator.translator.transform import transform

# SAM resolves local code folders only when it packages; an S3 address stands in for them
# as `sam validate` does (the roles do not depend on where the code is).
CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class NoManagedPolicyNames:
    """SAM asks IAM for the ARNs of managed policies named in a function's `Policies`; the
    template names none (every policy is a statement or an ARN), so nothing is looked up."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The CloudFormation template SAM makes of `template` for these parameter values."""
    for logical_id, resource in template.get("Resources", {}).items():
        code_property = CODE_PROPERTIES.get(resource.get("Type", ""))
        if code_property:
            resource.setdefault("Properties", {})[code_property] = f"s3://local/{logical_id}"
    translated: dict[str, Any] = transform(template, parameters, NoManagedPolicyNames())
    return translated


if __name__ == "__main__":
    json.dump(translate(json.load(sys.stdin), json.loads(sys.argv[1])), sys.stdout)
