"""Endpoint facts, read once from the vendored OpenAPI spec: the single source for the connector's
client and rate limiter and for the simulator.

For every GET operation: its operation id (the rate bucket's name), burst/steady limits
(`x-klaviyo-ratelimit`), the stricter conditional tiers its description states ("Rate limits when
using the `additional-fields[list]=profile_count` parameter ..."; bucket `get_list:profile_count`),
scopes (`x-klaviyo-scopes`), filter fields/operators/value shapes (`x-klaviyo-filters`), sorts,
page sizes, sparse fieldsets, includes and additional-fields. Nothing is hand-copied.

The spec (3 MB) is read on first use, not at import (`spec` and `discover` never pay for it),
decoding only the parts the facts come from, and only the facts are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import msgspec
import orjson

SPEC_PACKAGE = "klaviyo_source.openapi"
SPEC_FILE = "klaviyo-2026-07-15.json"
UNKNOWN_BUCKET = "unknown"  # a path the spec does not have: paced like the strictest endpoint

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


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """The facts of one GET operation."""

    operation: str
    path: str  # the spec's template, e.g. "/api/lists/{id}"
    scopes: tuple[str, ...]
    burst: int  # per second
    steady: int  # per minute
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
    daily: int = 0  # calls per day (`x-klaviyo-ratelimit` daily: the report queries' 225/d); 0 = none
    method: str = "GET"
    request_schema: str = ""  # POST: the request body's schema name

    def bucket(self, params: Mapping[str, str]) -> str:
        """The rate bucket of a request with these query parameters (a conditional tier's
        `operation:value` when its parameter lists the value)."""
        for tier in self.conditional_tiers:
            if tier.value in params.get(tier.param, "").split(","):
                return f"{self.operation}:{tier.value}"
        return self.operation


def read_spec() -> dict[str, Any]:
    """The whole vendored OpenAPI document, freshly parsed (the simulator's schemas need it)."""
    spec: dict[str, Any] = orjson.loads(_spec_bytes())
    return spec


def _spec_bytes() -> bytes:
    return resources.files(SPEC_PACKAGE).joinpath(SPEC_FILE).read_bytes()


# Only what the facts need is decoded (msgspec skips the rest without building it): a fraction
# of the time and memory of parsing the 3 MB document whole.
class _Parameter(msgspec.Struct, frozen=True):
    name: str
    where: str = msgspec.field(name="in")
    required: bool = False
    schema: dict[str, Any] = {}


class _Schema(msgspec.Struct, frozen=True):
    ref: str = msgspec.field(name="$ref", default="")


class _Media(msgspec.Struct, frozen=True):
    schema: _Schema = _Schema()


class _Response(msgspec.Struct, frozen=True):
    content: dict[str, _Media] = {}


class _Body(msgspec.Struct, frozen=True):
    content: dict[str, _Media] = {}


class _Operation(msgspec.Struct, frozen=True):
    operation: str = msgspec.field(name="operationId")
    description: str = ""
    parameters: list[_Parameter] = []
    responses: dict[str, _Response] = {}
    body: _Body | None = msgspec.field(name="requestBody", default=None)
    ratelimit: dict[str, str] = msgspec.field(name="x-klaviyo-ratelimit", default={})
    scopes: list[str] = msgspec.field(name="x-klaviyo-scopes", default=[])
    filters: dict[str, Any] = msgspec.field(name="x-klaviyo-filters", default={})


class _PathItem(msgspec.Struct, frozen=True):
    get: _Operation | None = None
    post: _Operation | None = None


class _Spec(msgspec.Struct, frozen=True):
    paths: dict[str, _PathItem]


def _rate(text: str) -> int:
    return int(text.split("/")[0])


def _enum_values(schema: dict[str, Any]) -> list[str]:
    if "items" in schema:
        return list(schema["items"].get("enum", []))
    return list(schema.get("enum", []))


def _filter_rules(filters: dict[str, Any]) -> dict[str, FilterRule]:
    rules: dict[str, FilterRule] = {}
    for name, rule in filters.items():
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


def _response_schema(op: _Operation) -> str:
    success = op.responses.get("200")
    if success is None or not success.content:
        return ""
    return next(iter(success.content.values())).schema.ref.rsplit("/", 1)[-1]


def _endpoint(path: str, op: _Operation) -> Endpoint:
    params = {p.name: p for p in op.parameters if p.where == "query"}
    fields: dict[str, frozenset[str]] = {}
    additional: dict[str, frozenset[str]] = {}
    for name, param in params.items():
        if name.startswith("fields["):
            fields[name[7:-1]] = frozenset(_enum_values(param.schema))
        elif name.startswith("additional-fields["):
            additional[name[18:-1]] = frozenset(_enum_values(param.schema))
    page_size = None
    if "page[size]" in params:
        schema = params["page[size]"].schema
        page_size = PageSize(int(schema["default"]), int(schema["minimum"]), int(schema["maximum"]))
    sorts = (
        frozenset(v.lstrip("-") for v in _enum_values(params["sort"].schema))
        if "sort" in params
        else frozenset()
    )
    includes = frozenset(_enum_values(params["include"].schema)) if "include" in params else frozenset()
    tiers = tuple(
        ConditionalTier(param, value, int(burst), int(steady))
        for param, value, burst, steady in _CONDITIONAL_TIER.findall(op.description)
    )
    return Endpoint(
        operation=op.operation,
        path=path,
        scopes=tuple(op.scopes),
        burst=_rate(op.ratelimit.get("burst", "0/s")),
        steady=_rate(op.ratelimit.get("steady", "0/m")),
        filters=_filter_rules(op.filters),
        filter_required="filter" in params and params["filter"].required,
        sorts=sorts,
        page_size=page_size,
        fields=fields,
        includes=includes,
        additional_fields=additional,
        conditional_tiers=tiers,
        has_cursor="page[cursor]" in params,
        response_schema=_response_schema(op),
        daily=_rate(op.ratelimit.get("daily", "0/d")),
    )


def _post_endpoint(path: str, op: _Operation) -> Endpoint:
    content = op.body.content if op.body is not None else {}
    request = next(iter(content.values())).schema.ref.rsplit("/", 1)[-1] if content else ""
    return Endpoint(
        operation=op.operation,
        path=path,
        scopes=tuple(op.scopes),
        burst=_rate(op.ratelimit.get("burst", "0/s")),
        steady=_rate(op.ratelimit.get("steady", "0/m")),
        daily=_rate(op.ratelimit.get("daily", "0/d")),
        response_schema=_response_schema(op),
        method="POST",
        request_schema=request,
    )


@cache
def _paths() -> dict[str, _PathItem]:
    return msgspec.json.decode(_spec_bytes(), type=_Spec).paths


@cache
def endpoints() -> dict[str, Endpoint]:
    """Path template -> facts, for every GET operation of the spec (parsed once per process)."""
    return {path: _endpoint(path, item.get) for path, item in _paths().items() if item.get is not None}


@cache
def query_endpoints() -> dict[str, Endpoint]:
    """Path -> facts of the POST report and aggregate queries (`query_*` operations: reads that
    take a JSON body, e.g. POST /api/campaign-values-reports with its 225/d daily limit)."""
    return {
        path: _post_endpoint(path, item.post)
        for path, item in _paths().items()
        if item.post is not None and item.post.operation.startswith("query_")
    }


Shape = tuple[int, str | None]  # (segment count, the resource segment after /api/)
Candidate = tuple[tuple[str | None, ...], Endpoint]  # (segments, None for a `{param}`; endpoint)


def _shape(segments: Sequence[str | None]) -> Shape:
    return len(segments), segments[2] if len(segments) > 2 else None


@cache
def _by_shape() -> dict[Shape, list[Candidate]]:
    """Templates by segment count and resource segment, most literal segments first."""
    shapes: dict[Shape, list[Candidate]] = {}
    for template, endpoint in endpoints().items():
        segments = tuple(None if s.startswith("{") else s for s in template.split("/"))
        shapes.setdefault(_shape(segments), []).append((segments, endpoint))
    for candidates in shapes.values():
        candidates.sort(key=lambda c: -sum(s is not None for s in c[0]))
    return shapes


@cache
def _by_operation() -> dict[str, Endpoint]:
    every = [*endpoints().values(), *query_endpoints().values()]
    return {endpoint.operation: endpoint for endpoint in every}


def endpoint_for(path: str) -> Endpoint | None:
    """The GET operation serving a concrete path (`/api/lists/Y6nRLr` -> `/api/lists/{id}`)."""
    parts = path.rstrip("/").split("/") if path != "/" else [""]
    for segments, endpoint in _by_shape().get(_shape(parts), []):
        if all(s is None or s == p for s, p in zip(segments, parts, strict=True)):
            return endpoint
    return None


def bucket_for(path: str, params: Mapping[str, str] | None = None, method: str = "GET") -> str:
    """The rate bucket of a request: its operation id, with the conditional tier its parameters
    select (`/api/lists/X` + `additional-fields[list]=profile_count` -> `get_list:profile_count`);
    a POST query's operation id (`query_campaign_values`)."""
    if method == "POST":
        query = query_endpoints().get(path.rstrip("/"))
        return query.operation if query is not None else UNKNOWN_BUCKET
    endpoint = endpoint_for(path)
    if endpoint is None:
        return UNKNOWN_BUCKET
    return endpoint.bucket(params or {})


def scopes_for(path: str) -> tuple[str, ...]:
    """The scopes a GET of this path (concrete or template), or a POST report query, needs; ()
    when the spec lacks it."""
    endpoint = endpoint_for(path) or query_endpoints().get(path.rstrip("/"))
    return endpoint.scopes if endpoint is not None else ()


def rate_for(bucket: str) -> tuple[int, int]:
    """(burst per second, steady per minute) of a bucket; the strictest endpoint's for unknown ones."""
    operation, _, condition = bucket.partition(":")
    endpoint = _by_operation().get(operation)
    if endpoint is None:
        return strictest_rate()
    for tier in endpoint.conditional_tiers:
        if tier.value == condition:
            return tier.burst, tier.steady
    return endpoint.burst, endpoint.steady


@cache
def strictest_rate() -> tuple[int, int]:
    """The lowest burst and steady limits of any GET operation."""
    rated = [e for e in endpoints().values() if e.burst > 0 and e.steady > 0]
    return min(e.burst for e in rated), min(e.steady for e in rated)
