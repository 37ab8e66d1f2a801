"""Read template.yaml the way the local runner needs it: tables, functions, HTTP routes.

The template is the one source of truth: the dev server, the tests and DynamoDB Local's
tables are all derived from it, so nothing local can drift from what `sam deploy` creates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as dicts."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    # CloudFormation's JSON form: {"Ref": x}, {"Condition": x}, {"Fn::<name>": ...}.
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str  # API Gateway form: /api/v1/customers/{id}/tokens
    function: str  # logical id
    authorized: bool = False  # the HTTP API's JWT authorizer guards this route

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when this route serves (method, path), else None."""
        if method.upper() != self.method and self.method != "ANY":
            return None
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str  # module.function
    environment: dict[str, str] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def module_name(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def function_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class StreamSource:
    """A function's `Type: DynamoDB` event: which table's stream feeds it, and how."""

    function: str  # logical id
    table: str  # logical id of the table (locally also its name)
    batch_size: int
    starting_position: str
    maximum_retry_attempts: int  # -1: until the record expires, as Lambda's default
    filter_patterns: tuple[dict[str, Any], ...]  # Lambda's FilterCriteria, parsed; empty: all
    report_batch_item_failures: bool


@dataclass(frozen=True)
class Template:
    raw: dict[str, Any]

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.raw["Resources"]
        return resources

    def parameter_defaults(self) -> dict[str, str]:
        return {
            name: str(spec.get("Default", ""))
            for name, spec in self.raw.get("Parameters", {}).items()
        }

    def resolve(self, value: Any) -> str:
        """A template value as the local runner sees it: a Ref to a table is its logical id
        (tables are created under their logical ids), a parameter is its default."""
        if isinstance(value, (str, int, float, bool)):
            return str(value)
        if isinstance(value, dict) and "Ref" in value:
            name = value["Ref"]
            parameters = self.parameter_defaults()
            return parameters.get(name, str(name))
        if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            parameters = self.parameter_defaults()
            return re.sub(
                r"\$\{([\w:]+)\}",
                lambda found: parameters.get(found.group(1), found.group(1)),
                value["Fn::Sub"],
            )
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            return ".".join(value["Fn::GetAtt"])
        if isinstance(value, dict) and "Fn::If" in value:
            condition, when_true, when_false = value["Fn::If"]
            chosen = when_true if self.condition(condition) else when_false
            return self.resolve(chosen)
        return str(value)

    def condition(self, name: str) -> bool:
        """A named condition as a deploy with every parameter at its default evaluates it."""
        return bool(self.evaluate(self.raw["Conditions"][name], self.parameter_defaults()))

    def evaluate(self, expression: Any, parameters: dict[str, str]) -> Any:
        """The condition and rule functions (Ref, Equals, Not, And, Or, Condition) for
        the given parameter values."""
        if not isinstance(expression, dict):
            return expression
        ((name, argument),) = expression.items()
        if name == "Ref":
            return parameters[argument]
        if name == "Condition":
            return self.evaluate(self.raw["Conditions"][argument], parameters)
        if name == "Fn::Equals":
            left, right = (self.evaluate(part, parameters) for part in argument)
            return left == right
        if name == "Fn::Not":
            return not self.evaluate(argument[0], parameters)
        if name == "Fn::And":
            return all(self.evaluate(part, parameters) for part in argument)
        if name == "Fn::Or":
            return any(self.evaluate(part, parameters) for part in argument)
        raise ValueError(f"{name} is not a condition function the local runner evaluates")

    def tables(self) -> dict[str, dict[str, Any]]:
        """CreateTable arguments for every AWS::DynamoDB::Table, named by logical id."""
        tables = {}
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != "AWS::DynamoDB::Table":
                continue
            properties = resource["Properties"]
            arguments: dict[str, Any] = {
                "TableName": logical_id,
                "AttributeDefinitions": properties["AttributeDefinitions"],
                "KeySchema": properties["KeySchema"],
                "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if "GlobalSecondaryIndexes" in properties:
                arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
            stream = properties.get("StreamSpecification")
            if stream:
                arguments["StreamSpecification"] = {
                    "StreamEnabled": True,
                    "StreamViewType": stream["StreamViewType"],
                }
            tables[logical_id] = arguments
        return tables

    def functions(self) -> dict[str, FunctionSpec]:
        globals_env = (
            self.raw.get("Globals", {})
            .get("Function", {})
            .get("Environment", {})
            .get("Variables", {})
        )
        functions = {}
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            properties = resource["Properties"]
            own_env = properties.get("Environment", {}).get("Variables", {})
            environment = {
                name: self.resolve(value) for name, value in {**globals_env, **own_env}.items()
            }
            functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=ROOT / properties["CodeUri"],
                handler=properties["Handler"],
                environment=environment,
                events=properties.get("Events", {}),
            )
        return functions

    def default_authorizer(self, api_id: str) -> str | None:
        properties = self.resources.get(api_id, {}).get("Properties", {})
        name = properties.get("Auth", {}).get("DefaultAuthorizer")
        return str(name) if name else None

    def http_routes(self) -> list[HttpRoute]:
        routes = []
        for spec in self.functions().values():
            for event in spec.events.values():
                if event.get("Type") != "HttpApi":
                    continue
                properties = event["Properties"]
                api = properties.get("ApiId", {}).get("Ref", "ServerlessHttpApi")
                authorizer = properties.get("Auth", {}).get(
                    "Authorizer", self.default_authorizer(api)
                )
                routes.append(
                    HttpRoute(
                        properties["Method"].upper(),
                        properties["Path"],
                        spec.logical_id,
                        authorized=authorizer not in (None, "NONE"),
                    )
                )
        # Literal paths before parameterised ones, as API Gateway's most-specific match does.
        return sorted(routes, key=lambda route: (route.path.count("{"), -len(route.path)))

    def stream_sources(self) -> list[StreamSource]:
        """Every DynamoDB stream event source mapping of the template (AWS::Lambda::
        EventSourceMapping on a table's `!GetAtt StreamArn`; SAM `Type: DynamoDB` events
        are refused: they grant every stream of the account)."""
        for spec in self.functions().values():
            if any(event.get("Type") == "DynamoDB" for event in spec.events.values()):
                raise ValueError(f"{spec.logical_id}: use an AWS::Lambda::EventSourceMapping")
        sources = []
        for properties in self._resources_of("AWS::Lambda::EventSourceMapping"):
            stream = properties["EventSourceArn"]
            function = properties["FunctionName"]
            if not (isinstance(stream, dict) and "Fn::GetAtt" in stream):
                raise ValueError(f"{function}: only a table's !GetAtt StreamArn runs")
            filters = properties.get("FilterCriteria", {}).get("Filters", [])
            patterns = tuple(
                json.loads(f["Pattern"]) if isinstance(f["Pattern"], str) else f["Pattern"]
                for f in filters
            )
            sources.append(
                StreamSource(
                    function=function["Ref"],
                    table=stream["Fn::GetAtt"][0],
                    batch_size=int(properties.get("BatchSize", 100)),
                    starting_position=properties.get("StartingPosition", "LATEST"),
                    maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
                    filter_patterns=patterns,
                    report_batch_item_failures="ReportBatchItemFailures"
                    in properties.get("FunctionResponseTypes", []),
                )
            )
        return sources

    def _resources_of(self, resource_type: str) -> list[dict[str, Any]]:
        return [
            resource.get("Properties", {})
            for resource in self.resources.values()
            if resource.get("Type") == resource_type
        ]


@cache
def load_template(path: Path = TEMPLATE_PATH) -> Template:
    with path.open() as stream:
        return Template(yaml.load(stream, Loader=_CfnLoader))  # noqa: S506 - SafeLoader subclass
