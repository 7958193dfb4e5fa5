"""Every served endpoint's responses validate against the vendored OpenAPI response schemas.

The schemas are used as published, resolved with a `referencing` registry over the whole spec
document. Two OpenAPI 3.0 notions are translated to JSON Schema: `nullable: true` (-> also
null) and `oneOf` (-> `anyOf`, because the spec's alternatives overlap without a discriminator:
e.g. EmailSendOptions / SMSSendOptions / PushSendOptions are the same object, so a valid value
matches all three and `oneOf` could never pass). `date-time` and `uri` formats are checked
(RFC 3339 with offset; absolute http(s) URLs). `links.next` / `links.prev` are null at the
ends of a collection in real payloads but typed as plain strings in the spec; they are dropped
before validation when null.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from klaviyo_simulator import Simulator
from klaviyo_simulator.spec import endpoint_rules, load_spec

from .client import fetch

SPEC_URI = "urn:klaviyo-openapi"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FORMATS = FormatChecker()


@FORMATS.checks("date-time")
def is_datetime(value: object) -> bool:
    return not isinstance(value, str) or bool(RFC3339.match(value))


@FORMATS.checks("uri")
def is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _translate(node: Any) -> Any:
    if isinstance(node, list):
        return [_translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _translate(v) for k, v in node.items() if k not in ("nullable", "discriminator")}
    if "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def registry() -> Registry:
    document = _translate(copy.deepcopy(load_spec()))
    return Registry().with_resource(
        SPEC_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )


def validate(body: dict[str, Any], pointer: str) -> None:
    body = copy.deepcopy(body)
    links = body.get("links", {})
    for end in ("next", "prev"):
        if links.get(end, "") is None:
            del links[end]
    validator = Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry(), format_checker=FORMATS
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])


def schema_of(path: str) -> str:
    return f"/components/schemas/{endpoint_rules()[path].response_schema}"


def first_id(sim: Simulator, rtype: str, **where: Any) -> str:
    for row in sim.store.records(rtype):
        if all(row.attributes.get(k, row.hidden.get(k)) == v for k, v in where.items()):
            return row.id
    raise AssertionError(f"no {rtype} with {where}")


def cases(sim: Simulator) -> list[tuple[str, str, dict[str, str]]]:
    """(template, concrete path, params) for every endpoint, with includes / additional-fields."""
    list_id, segment_id = first_id(sim, "list"), first_id(sim, "segment")
    flow_with_actions = next(r.id for r in sim.store.records("flow") if r.relationships["flow-actions"][1])
    action_with_messages = next(
        r.id for r in sim.store.records("flow-action") if r.relationships["flow-messages"][1]
    )
    estimation = sim.store.records("campaign-recipient-estimation")[0].id
    coupon_with_codes = next(iter({r.hidden["coupon.id"] for r in sim.store.records("coupon-code")}))
    form_with_versions = next(r.id for r in sim.store.records("form") if r.relationships["form-versions"][1])
    metric_with_properties = sim.store.records("metric-property")[0].related_ids("metric")[0]
    out: list[tuple[str, str, dict[str, str]]] = []
    for channel in ("email", "sms", "mobile_push"):
        campaign = first_id(sim, "campaign", **{"messages.channel": channel})
        message = sim.store.get("campaign", campaign).relationships["campaign-messages"][1][0]  # type: ignore[union-attr,index]
        out += [
            (
                "/api/campaigns",
                "/api/campaigns",
                {"filter": f"equals(messages.channel,'{channel}')", "include": "campaign-messages,tags"},
            ),
            ("/api/campaigns/{id}", f"/api/campaigns/{campaign}", {"include": "campaign-messages,tags"}),
            (
                "/api/campaigns/{id}/campaign-messages",
                f"/api/campaigns/{campaign}/campaign-messages",
                {"include": "campaign,template"},
            ),
            (
                "/api/campaign-messages/{id}",
                f"/api/campaign-messages/{message}",
                {"include": "campaign,template"},
            ),
        ]
    out += [
        ("/api/events", "/api/events", {}),
        ("/api/events", "/api/events", {"include": "metric,profile,attributions", "page[size]": "300"}),
        (
            "/api/events",
            "/api/events",
            {"fields[event]": "datetime,event_properties", "fields[metric]": "name", "include": "metric"},
        ),
        (
            "/api/profiles",
            "/api/profiles",
            {
                "additional-fields[profile]": "subscriptions,predictive_analytics",
                "include": "push-tokens,conversations",
                "page[size]": "100",
            },
        ),
        (
            "/api/profiles",
            "/api/profiles",
            {
                "fields[profile]": "email,location.city,subscriptions",
                "additional-fields[profile]": "subscriptions",
            },
        ),
        ("/api/metrics", "/api/metrics", {"include": "flow-triggers"}),
        ("/api/lists", "/api/lists", {"include": "tags,flow-triggers"}),
        (
            "/api/lists/{id}",
            f"/api/lists/{list_id}",
            {"additional-fields[list]": "profile_count", "include": "tags,flow-triggers"},
        ),
        (
            "/api/lists/{id}/profiles",
            f"/api/lists/{list_id}/profiles",
            {"additional-fields[profile]": "subscriptions,predictive_analytics"},
        ),
        ("/api/segments", "/api/segments", {"include": "tags,flow-triggers"}),
        (
            "/api/segments/{id}",
            f"/api/segments/{segment_id}",
            {"additional-fields[segment]": "profile_count"},
        ),
        (
            "/api/segments/{id}/profiles",
            f"/api/segments/{segment_id}/profiles",
            {"additional-fields[profile]": "subscriptions"},
        ),
        ("/api/templates", "/api/templates", {}),
        ("/api/campaign-recipient-estimations/{id}", f"/api/campaign-recipient-estimations/{estimation}", {}),
        ("/api/flows", "/api/flows", {"include": "flow-actions,tags"}),
        ("/api/flows/{id}/flow-actions", f"/api/flows/{flow_with_actions}/flow-actions", {}),
        (
            "/api/flow-actions/{id}/flow-messages",
            f"/api/flow-actions/{action_with_messages}/flow-messages",
            {},
        ),
        ("/api/tags", "/api/tags", {"include": "tag-group"}),
        ("/api/tag-groups", "/api/tag-groups", {}),
        ("/api/coupons", "/api/coupons", {}),
        (
            "/api/coupon-codes",
            "/api/coupon-codes",
            {"filter": f"equals(coupon.id,['{coupon_with_codes}'])", "include": "coupon"},
        ),
        ("/api/forms", "/api/forms", {"sort": "updated_at"}),
        ("/api/forms/{id}/form-versions", f"/api/forms/{form_with_versions}/form-versions", {}),
        ("/api/images", "/api/images", {"page[size]": "100"}),
        ("/api/push-tokens", "/api/push-tokens", {"include": "profile"}),
        ("/api/catalog-items", "/api/catalog-items", {"include": "variants"}),
        ("/api/catalog-variants", "/api/catalog-variants", {}),
        ("/api/catalog-categories", "/api/catalog-categories", {}),
        ("/api/accounts", "/api/accounts", {}),
        (
            "/api/metrics/{id}/metric-properties",
            f"/api/metrics/{metric_with_properties}/metric-properties",
            {},
        ),
        (
            "/api/template-universal-content",
            "/api/template-universal-content",
            {"sort": "updated", "page[size]": "100"},
        ),
        ("/api/reviews", "/api/reviews", {"page[size]": "100"}),
        ("/api/web-feeds", "/api/web-feeds", {"sort": "updated", "page[size]": "20"}),
        ("/api/webhooks", "/api/webhooks", {"include": "webhook-topics"}),
        ("/api/custom-metrics", "/api/custom-metrics", {"include": "metrics"}),
        ("/api/tracking-settings", "/api/tracking-settings", {}),
        # Relationship listings (ids only): the connector's id scans for deleted records.
        ("/api/lists/{id}/relationships/profiles", f"/api/lists/{list_id}/relationships/profiles", {}),
        (
            "/api/segments/{id}/relationships/profiles",
            f"/api/segments/{segment_id}/relationships/profiles",
            {"page[size]": "100"},
        ),
        (
            "/api/flow-actions/{id}/relationships/flow-messages",
            f"/api/flow-actions/{action_with_messages}/relationships/flow-messages",
            {},
        ),
        (
            "/api/forms/{id}/relationships/form-versions",
            f"/api/forms/{form_with_versions}/relationships/form-versions",
            {},
        ),
    ]
    return out


def test_every_served_endpoint_is_covered(sim: Simulator) -> None:
    assert {template for template, _, _ in cases(sim)} == set(endpoint_rules())


def test_responses_validate_against_the_spec(sim: Simulator) -> None:
    for template, path, params in cases(sim):
        reply = fetch(sim, path, params)
        assert reply.status == 200, (path, params, reply.body)
        validate(reply.body, schema_of(template))
        if "include" in params:
            assert "included" in reply.body
        else:
            assert "included" not in reply.body


def test_subscriptions_only_when_asked(sim: Simulator) -> None:
    plain = fetch(sim, "/api/profiles").body["data"][0]["attributes"]
    assert "subscriptions" not in plain and "predictive_analytics" not in plain
    asked = fetch(sim, "/api/profiles", {"additional-fields[profile]": "subscriptions"}).body["data"][0]
    assert "subscriptions" in asked["attributes"] and "predictive_analytics" not in asked["attributes"]


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/api/events", {"filter": "equals(nope,'x')"}, "filter"),
        ("/api/events", {"sort": "uuid"}, "sort"),
        ("/api/events", {"page[size]": "1001"}, "page[size]"),
        ("/api/events", {"page[cursor]": "garbage"}, "page[cursor]"),
        ("/api/events", {"fields[event]": "nope"}, "fields[event]"),
        ("/api/events", {"include": "nope"}, "include"),
        ("/api/profiles", {"additional-fields[profile]": "nope"}, "additional-fields[profile]"),
        ("/api/campaigns", {}, "filter"),
    ],
)
def test_errors_validate_against_client_error(
    sim: Simulator, path: str, params: dict[str, str], parameter: str
) -> None:
    reply = fetch(sim, path, params)
    assert reply.status == 400
    validate(reply.body, "/components/responses/ClientError/content/application~1vnd.api+json/schema")
    error = reply.body["errors"][0]
    assert error["code"] == "invalid"
    assert error["source"] == {"parameter": parameter}
