"""Endpoint rules for the simulator, derived at start-up from the vendored OpenAPI spec.

Nothing here is hand-copied: filter fields/operators/value shapes come from `x-klaviyo-filters`,
sorts / page sizes / sparse fieldsets / includes / additional-fields from the operation's query
parameters, scopes from `x-klaviyo-scopes`, rate tiers from `x-klaviyo-ratelimit` and the
conditional (stricter) tiers from the operation description ("Rate limits when using the
`additional-fields[list]=profile_count` parameter ...").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import orjson

SPEC_FILE = "klaviyo-2026-07-15.json"

# The GET operations the simulator serves: path template -> resource type of `data`.
SERVED_PATHS: dict[str, str] = {
    "/api/profiles": "profile",
    "/api/events": "event",
    "/api/metrics": "metric",
    "/api/lists": "list",
    "/api/lists/{id}": "list",
    "/api/lists/{id}/profiles": "profile",
    "/api/segments": "segment",
    "/api/segments/{id}": "segment",
    "/api/segments/{id}/profiles": "profile",
    "/api/templates": "template",
    "/api/campaigns": "campaign",
    "/api/campaigns/{id}": "campaign",
    "/api/campaigns/{id}/campaign-messages": "campaign-message",
    "/api/campaign-messages/{id}": "campaign-message",
    "/api/campaign-recipient-estimations/{id}": "campaign-recipient-estimation",
    "/api/flows": "flow",
    "/api/flows/{id}/flow-actions": "flow-action",
    "/api/flow-actions/{id}/flow-messages": "flow-message",
    "/api/tags": "tag",
}

_CONDITIONAL_TIER = re.compile(
    r"Rate limits when using the `([^`=]+)=([^`]+)` parameter[^<]*<br>Burst: `(\d+)/s`<br>Steady: `(\d+)/m`"
)


@dataclass(frozen=True)
class FilterRule:
    """What one filterable field allows: operator -> value shape, and the value's type."""

    single: frozenset[str]  # operators taking a scalar
    lists: frozenset[str]  # operators taking a bracketed list
    none: frozenset[str]  # operators taking no value (`has(field)`)
    value_type: str  # "string" | "boolean" | "number" | "date-time" | "" (no value)
    enum: tuple[str, ...] = ()

    @property
    def operators(self) -> frozenset[str]:
        return self.single | self.lists | self.none


@dataclass(frozen=True)
class ConditionalTier:
    """A stricter rate tier that applies when `param` contains `value`."""

    param: str
    value: str
    burst: int
    steady: int


@dataclass(frozen=True)
class PageSize:
    default: int
    minimum: int
    maximum: int


@dataclass(frozen=True)
class EndpointRule:
    """Everything the simulator enforces for one GET operation."""

    operation: str
    path: str
    resource_type: str
    scopes: tuple[str, ...]
    burst: int
    steady: int
    filters: dict[str, FilterRule] = field(default_factory=dict)
    filter_required: bool = False
    sorts: frozenset[str] = frozenset()  # field names (no `-` prefix)
    page_size: PageSize | None = None
    fields: dict[str, frozenset[str]] = field(default_factory=dict)  # type -> allowed values
    includes: frozenset[str] = frozenset()
    additional_fields: dict[str, frozenset[str]] = field(default_factory=dict)
    conditional_tiers: tuple[ConditionalTier, ...] = ()
    has_cursor: bool = False
    response_schema: str = ""


@cache
def load_spec() -> dict[str, Any]:
    """The vendored OpenAPI document (parsed once per process)."""
    data = resources.files("klaviyo_source.openapi").joinpath(SPEC_FILE).read_bytes()
    spec: dict[str, Any] = orjson.loads(data)
    return spec


def _rate(text: str) -> int:
    return int(text.split("/")[0])


def _enum_values(schema: dict[str, Any]) -> list[str]:
    if "items" in schema:
        return list(schema["items"].get("enum", []))
    return list(schema.get("enum", []))


def _filter_rules(op: dict[str, Any]) -> dict[str, FilterRule]:
    rules: dict[str, FilterRule] = {}
    for name, rule in op.get("x-klaviyo-filters", {}).items():
        ops = rule.get("operators", {})
        value = rule.get("value", {})
        value_type = value.get("format") if value.get("format") == "date-time" else value.get("type", "")
        rules[name] = FilterRule(
            single=frozenset(ops.get("single", [])),
            lists=frozenset(ops.get("list", [])),
            none=frozenset(ops.get("none", [])),
            value_type=str(value_type or ""),
            enum=tuple(value.get("enum", [])),
        )
    return rules


def _response_schema(op: dict[str, Any]) -> str:
    content = op["responses"]["200"]["content"]
    ref: str = next(iter(content.values()))["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def _build_rule(path: str, resource_type: str, op: dict[str, Any]) -> EndpointRule:
    params = {p["name"]: p for p in op.get("parameters", []) if p.get("in") == "query"}
    fields: dict[str, frozenset[str]] = {}
    additional: dict[str, frozenset[str]] = {}
    for name, param in params.items():
        if name.startswith("fields["):
            fields[name[7:-1]] = frozenset(_enum_values(param["schema"]))
        elif name.startswith("additional-fields["):
            additional[name[18:-1]] = frozenset(_enum_values(param["schema"]))
    page_size = None
    if "page[size]" in params:
        schema = params["page[size]"]["schema"]
        page_size = PageSize(int(schema["default"]), int(schema["minimum"]), int(schema["maximum"]))
    sorts = (
        frozenset(v.lstrip("-") for v in _enum_values(params["sort"]["schema"]))
        if "sort" in params
        else frozenset()
    )
    includes = frozenset(_enum_values(params["include"]["schema"])) if "include" in params else frozenset()
    tiers = tuple(
        ConditionalTier(param, value, int(burst), int(steady))
        for param, value, burst, steady in _CONDITIONAL_TIER.findall(op.get("description", ""))
    )
    limit = op.get("x-klaviyo-ratelimit", {})
    return EndpointRule(
        operation=op["operationId"],
        path=path,
        resource_type=resource_type,
        scopes=tuple(op.get("x-klaviyo-scopes", [])),
        burst=_rate(limit.get("burst", "0/s")),
        steady=_rate(limit.get("steady", "0/m")),
        filters=_filter_rules(op),
        filter_required=bool(params.get("filter", {}).get("required", False)),
        sorts=sorts,
        page_size=page_size,
        fields=fields,
        includes=includes,
        additional_fields=additional,
        conditional_tiers=tiers,
        has_cursor="page[cursor]" in params,
        response_schema=_response_schema(op),
    )


@cache
def endpoint_rules() -> dict[str, EndpointRule]:
    """Path template -> rule, for every GET operation the simulator serves."""
    paths = load_spec()["paths"]
    return {path: _build_rule(path, rtype, paths[path]["get"]) for path, rtype in SERVED_PATHS.items()}


def all_scopes() -> frozenset[str]:
    """Every scope any served endpoint needs (what a full-access key carries)."""
    return frozenset(s for rule in endpoint_rules().values() for s in rule.scopes)
