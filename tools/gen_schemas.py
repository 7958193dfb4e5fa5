"""Generate `src/klaviyo_source/streams/schemas/<stream>.json` from the vendored Klaviyo OpenAPI spec.

    python tools/gen_schemas.py          # (re)write the schema files
    python tools/gen_schemas.py --check  # exit 1 if a committed file differs from the generator

Each stream's schema is the resource object its endpoint returns (revision 2026-07-15), made
acceptable to Airbyte and lenient towards real data:

* `$ref`s are inlined; `allOf` is merged; `oneOf` becomes the union of its branches (types joined,
  object properties merged), so no `$ref`, `allOf`, `oneOf` or `not` remains.
* Every property except the root `id` is nullable (`["null", type]`): Klaviyo returns null in
  places its spec does not promise, and a source must not reject real data.
* `enum` is dropped (Klaviyo adds values without a new revision); only `date-time` / `date`
  formats are kept; `required`, examples, defaults and read/write flags are dropped (except the
  root's `required: ["id"]`).
* Every object has `additionalProperties: true`.
* Stream extras (top-level cursor copy, fields the connector adds) and known loosenings come from
  the `EXTRAS` / `LOOSEN` rows below.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "src" / "klaviyo_source" / "openapi" / "klaviyo-2026-07-15.json"
OUT_DIR = ROOT / "src" / "klaviyo_source" / "streams" / "schemas"

Schema = dict[str, Any]

# stream -> (component of the response document, cursor field or None for streams without a
# cursor). The resource is `data` (or its items).
SOURCES: dict[str, tuple[str, str | None]] = {
    "profiles": ("GetProfileResponsePluralConversationsCollectionCompoundDocument", "updated"),
    "global_exclusions": ("GetProfileResponsePluralConversationsCollectionCompoundDocument", "updated"),
    "events": ("GetEventResponseCollectionCompoundDocument", "datetime"),
    "events_detailed": ("GetEventResponseCollectionCompoundDocument", "datetime"),
    "email_templates": ("GetTemplateDndResponseCollection", "updated"),
    "metrics": ("GetMetricResponseCollectionCompoundDocument", "updated"),
    "lists": ("GetListListResponseCollectionCompoundDocument", "updated"),
    "lists_detailed": ("GetListRetrieveResponseCompoundDocument", "updated"),
    "campaigns": ("GetCampaignResponseCollectionCompoundDocument", "updated_at"),
    "campaigns_detailed": ("GetCampaignResponseCollectionCompoundDocument", "updated_at"),
    "flows": ("GetFlowResponseCollectionCompoundDocument", "updated"),
    "segments": ("GetSegmentListResponseCollectionCompoundDocument", "updated"),
    "segments_detailed": ("GetSegmentRetrieveResponseCompoundDocument", "updated"),
    "flow_actions": ("GetFlowActionEncodedResponseCollection", "updated"),
    "flow_messages": ("GetFlowMessageEncodedResponseCollection", "updated"),
    # the included campaign-message resources of GET /api/campaigns?include=campaign-messages
    "campaign_messages": ("GetCampaignMessageResponseCollectionCompoundDocument", "updated_at"),
    "tags": ("GetTagResponseCollectionCompoundDocument", None),
    "tag_groups": ("GetTagGroupResponseCollection", None),
    "coupons": ("GetCouponResponseCollection", None),
    "coupon_codes": ("GetCouponCodeResponseCollectionCompoundDocument", None),
    "forms": ("GetFormResponseCollection", "updated_at"),
    "form_versions": ("GetFormVersionResponseCollection", "updated_at"),
    "images": ("GetImageResponseCollection", "updated_at"),
    "push_tokens": ("GetPushTokenResponseCollectionCompoundDocument", None),
    "catalog_items": ("GetCatalogItemResponseCollectionCompoundDocument", "updated"),
    "catalog_variants": ("GetCatalogVariantResponseCollection", "updated"),
    "catalog_categories": ("GetCatalogCategoryResponseCollection", "updated"),
    "accounts": ("GetAccountResponseCollection", None),
    "metric_properties": ("GetMetricPropertyResponseCollection", None),
    "universal_content": ("GetUniversalContentResponseCollection", "updated"),
    "reviews": ("GetReviewResponseDTOCollectionCompoundDocument", "updated"),
    "web_feeds": ("GetWebFeedResponseCollection", "updated"),
    "webhooks": ("GetWebhookResponseCollectionCompoundDocument", None),
    "custom_metrics": ("GetCustomMetricResponseCollectionCompoundDocument", "updated"),
    "tracking_settings": ("GetTrackingSettingResponseCollection", None),
}

# The description of a stream without a cursor (Airbyte shows the schema's description).
NO_CURSOR = (
    "No cursor: Klaviyo offers no date to sync this resource on. Full refresh reads every record; "
    "incremental re-reads every record too (its state stays {}), deduplicated by id downstream."
)

_STRING: Schema = {"type": "string"}
_INTEGER: Schema = {"type": "integer"}

_LIST_SUPPRESSIONS = "attributes.subscriptions.email.marketing.list_suppressions"
# Streams whose rows the connector builds from a resource: stream -> (component of the resource's
# document, primary key, {column: schema or "copy:<dotted path in the resource>"}); `name[]` in a
# path steps into an array's items.
DERIVED: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "list_memberships": (
        "GetListMemberResponseCollection",
        ("list_id", "profile_id"),
        {"list_id": _STRING, "profile_id": "copy:id", "joined_group_at": "copy:attributes.joined_group_at"},
    ),
    "segment_memberships": (
        "GetSegmentMemberResponseCollection",
        ("segment_id", "profile_id"),
        {
            "segment_id": _STRING,
            "profile_id": "copy:id",
            "joined_group_at": "copy:attributes.joined_group_at",
        },
    ),
    "campaign_audiences": (
        "GetCampaignResponseCollectionCompoundDocument",
        ("campaign_id", "audience_id", "inclusion"),
        {
            "campaign_id": "copy:id",
            "audience_id": "copy:attributes.audiences.included[]",
            "inclusion": {"type": "string", "description": "included or excluded"},
            "updated_at": "copy:attributes.updated_at",
        },
    ),
    **{
        f"{parent}_tags": (
            component,
            (f"{parent}_id", "tag_id"),
            {f"{parent}_id": "copy:id", "tag_id": _STRING, cursor: f"copy:attributes.{cursor}"},
        )
        for parent, component, cursor in (
            ("campaign", "GetCampaignResponseCollectionCompoundDocument", "updated_at"),
            ("flow", "GetFlowResponseCollectionCompoundDocument", "updated"),
            ("list", "GetListListResponseCollectionCompoundDocument", "updated"),
            ("segment", "GetSegmentListResponseCollectionCompoundDocument", "updated"),
        )
    },
    "profile_subscriptions": (
        "GetProfileResponsePluralConversationsCollectionCompoundDocument",
        ("profile_id", "channel", "kind"),
        {
            "profile_id": "copy:id",
            "channel": {"type": "string", "description": "email, sms, mobile_push or whatsapp"},
            "kind": {"type": "string", "description": "marketing, transactional, open_tracking, ..."},
            "updated": "copy:attributes.updated",
            "can_receive": {"type": "boolean", "description": "can_receive[_<channel>_<kind>]"},
            # every field of every kind (each kind has a subset): the union of the spec's objects
            **{
                name: f"copy:attributes.subscriptions.{path}.{name}"
                for path, names in (
                    ("email.marketing", ("consent", "consent_timestamp", "last_updated", "method")),
                    ("email.marketing", ("method_detail", "custom_method_detail", "double_optin")),
                    ("email.marketing", ("suppression", "list_suppressions")),
                    ("whatsapp.marketing", ("created_timestamp", "metadata", "valid_until", "phone_number")),
                )
                for name in names
            },
        },
    ),
    "list_exclusions": (
        "GetProfileResponsePluralConversationsCollectionCompoundDocument",
        ("profile_id", "list_id"),
        {
            "profile_id": "copy:id",
            "list_id": f"copy:{_LIST_SUPPRESSIONS}[].list_id",
            "reason": f"copy:{_LIST_SUPPRESSIONS}[].reason",
            "timestamp": f"copy:{_LIST_SUPPRESSIONS}[].timestamp",
            "updated": "copy:attributes.updated",
        },
    ),
}
# Report streams (POST queries): stream -> (request component whose `statistics` enum the
# records carry, grouping fields copied to the top level, whether a conversion metric is one of
# them). metric_aggregates has its own columns (build_report).
REPORTS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "campaign_values_reports": (
        "CampaignValuesRequestDTOResourceObject",
        ("campaign_id", "campaign_message_id", "send_channel"),
        True,
    ),
    "flow_series_reports": (
        "FlowSeriesRequestDTOResourceObject",
        ("flow_id", "flow_message_id", "send_channel"),
        True,
    ),
    "flow_values_reports": (
        "FlowValuesRequestDTOResourceObject",
        ("flow_id", "flow_message_id", "send_channel"),
        True,
    ),
    "segment_series_reports": ("SegmentSeriesRequestDTOResourceObject", ("segment_id",), False),
    "form_series_reports": ("FormSeriesRequestDTOResourceObject", ("form_id", "form_version_id"), False),
    "metric_aggregates": ("MetricAggregateQueryResourceObject", (), False),
}
_REPORT_DATE = {
    "type": "string",
    "format": "date-time",
    "description": "Midnight starting the record's day in the account's timezone (the cursor).",
}
_SUPPRESSION = "copy:attributes.subscriptions.email.marketing.suppression"
# (stream, dotted path of the new property, schema or "component:<name>" / "copy:<dotted path>")
EXTRAS: tuple[tuple[str, str, Any], ...] = (
    # Airbyte keeps the pre-2024-10-15 plural name for the suppression list (3.x: renamed).
    (
        "global_exclusions",
        "attributes.subscriptions.email.marketing.suppressions",
        _SUPPRESSION.replace("copy:", "move:"),
    ),
    ("events_detailed", "relationships.metric.data.name", _STRING),
    ("lists_detailed", "attributes.profile_count", _INTEGER),
    ("segments_detailed", "attributes.profile_count", _INTEGER),
    ("flow_actions", "flow_id", _STRING),
    ("flow_messages", "flow_action_id", _STRING),
    ("campaigns", "attributes.channel", _STRING),
    ("campaigns_detailed", "attributes.channel", _STRING),
    ("campaigns_detailed", "estimated_recipient_count", _INTEGER),
    ("campaign_messages", "campaign_id", _STRING),
    (
        "campaigns_detailed",
        "campaign_messages",
        "items-of:GetCampaignMessageResponseCollectionCompoundDocument",
    ),
    ("coupon_codes", "coupon_id", _STRING),  # the coupon whose listing returned the code
    ("form_versions", "form_id", _STRING),
    ("metric_properties", "metric_id", _STRING),  # the metric whose listing returned the property
)

# Streams whose top-level cursor is not a copy of the attribute of its name.
CURSOR_DESCRIPTIONS = {
    "global_exclusions": "The email suppression's timestamp (attributes.subscriptions.email.marketing."
    "suppressions[0].timestamp), the stream's cursor as in Airbyte's connector 3.x.",
}

# (stream, dotted path, types) where real data is known to differ from the spec.
LOOSEN: tuple[tuple[str, str, list[str]], ...] = (
    # Klaviyo returns numeric regions (Airbyte 2.10.2 had to cast them); latitude/longitude vary.
    ("profiles", "attributes.location.region", ["null", "string", "number"]),
    ("global_exclusions", "attributes.location.region", ["null", "string", "number"]),
)

# Datetimes the spec types as plain strings (its own descriptions say "ISO 8601").
DATETIMES: tuple[tuple[str, str], ...] = (
    ("metrics", "attributes.created"),
    ("metrics", "attributes.updated"),
)

_KEPT_FORMATS = {"date-time", "date"}


class Resolver:
    """Turns OpenAPI 3.0 schema fragments into plain, Airbyte-friendly JSON Schema."""

    def __init__(self, components: dict[str, Schema]) -> None:
        self.components = components

    def convert(self, node: Schema, stack: tuple[str, ...] = ()) -> Schema:
        node = self._inline(node, stack)
        if "allOf" in node:
            parts = [self.convert(part, stack) for part in node["allOf"]]
            merged = _merge_all(parts)
            return _with_description(merged, node)
        if "oneOf" in node or "anyOf" in node:
            branches: list[Schema] = node.get("oneOf") or node.get("anyOf") or []
            parts = [self.convert(part, stack) for part in branches]
            return _with_description(_union(parts), node)
        out: Schema = {}
        if "description" in node:
            out["description"] = node["description"]
        kind = node.get("type") or ("object" if "properties" in node else None)
        if kind is not None:
            out["type"] = kind
        if node.get("format") in _KEPT_FORMATS:
            out["format"] = node["format"]
        if kind == "object":
            out["properties"] = {
                name: self.convert(child, stack) for name, child in node.get("properties", {}).items()
            }
            out["additionalProperties"] = True
        if kind == "array":
            out["items"] = self.convert(node.get("items", {}), stack)
        return out

    def _inline(self, node: Schema, stack: tuple[str, ...]) -> Schema:
        """Replace a `$ref` by its target (sibling keys such as description win)."""
        while "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in stack:  # recursive structure: stop with a free-form value of the right kind
                target_type = self.components[name].get("type", "object")
                return {"type": target_type, "properties": {}} if target_type == "object" else {}
            stack = (*stack, name)
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**self.components[name], **siblings}
        return node


def _with_description(schema: Schema, node: Schema) -> Schema:
    if "description" in node:
        return {"description": node["description"], **{k: v for k, v in schema.items() if k != "description"}}
    return schema


def _types(schema: Schema) -> list[str]:
    kind = schema.get("type")
    if kind is None:
        return []
    return list(kind) if isinstance(kind, list) else [kind]


def _merge_two(left: Schema, right: Schema) -> Schema:
    """Combine two schemas of the same value (allOf parts or oneOf branches), keeping every field."""
    out = dict(left)
    for key, value in right.items():
        if key == "properties":
            props = dict(out.get("properties", {}))
            for name, child in value.items():
                props[name] = _merge_two(props[name], child) if name in props else child
            out["properties"] = props
        elif key == "items" and "items" in out:
            out["items"] = _merge_two(out["items"], value)
        elif key == "type":
            kinds = _types(out) + [k for k in _types(right) if k not in _types(out)]
            out["type"] = kinds[0] if len(kinds) == 1 else kinds
        elif key == "format":
            # keep a format only while every string branch agrees on it
            left_plain_string = "string" in _types(left) and "format" not in left
            if left_plain_string or out.get("format", value) != value:
                out.pop("format", None)
            else:
                out["format"] = value
        elif key not in out:
            out[key] = value
    if "format" in out and "string" in _types(right) and "format" not in right:
        del out["format"]
    if "properties" in out:
        out["additionalProperties"] = True
        if "type" not in out:
            out["type"] = "object"
    return out


def _merge_all(parts: list[Schema]) -> Schema:
    out: Schema = {}
    for part in parts:
        out = _merge_two(out, part)
    return out


def _union(parts: list[Schema]) -> Schema:
    """oneOf -> one schema accepting every branch: types joined, object/array shapes merged."""
    if any(not _types(part) for part in parts):  # a branch accepts anything
        return {}
    return _merge_all(parts)


def _nullable(schema: Schema, *, is_root: bool = False) -> Schema:
    """Make every property (recursively) accept null; order types as ["null", ...]."""
    out = dict(schema)
    kinds = _types(out)
    if kinds and not is_root:
        rest = [k for k in kinds if k != "null"]
        out["type"] = ["null", *rest]
    if "properties" in out:
        out["properties"] = {name: _nullable(child) for name, child in out["properties"].items()}
    if "items" in out:
        out["items"] = _nullable(out["items"])
    return out


def _node_at(schema: Schema, dotted: str, *, create: bool) -> tuple[Schema, str]:
    """The parent object schema of `dotted` and the last key."""
    *parents, last = dotted.split(".")
    node = schema
    for key in parents:
        props = node.setdefault("properties", {})
        if key not in props:
            if not create:
                raise KeyError(dotted)
            props[key] = {"type": "object", "properties": {}, "additionalProperties": True}
        node = props[key]
        node["additionalProperties"] = True
    node.setdefault("properties", {})
    return node, last


def _lookup(schema: Schema, dotted: str) -> Schema:
    parent, last = _node_at(schema, dotted, create=False)
    found: Schema = parent["properties"][last]
    return found


def _lookup_path(schema: Schema, dotted: str) -> Schema:
    """The schema at a dotted path, `name[]` stepping into an array's items."""
    node = schema
    for key in dotted.split("."):
        node = node["properties"][key.removesuffix("[]")]
        if key.endswith("[]"):
            node = node["items"]
    return node


def _resource(resolver: Resolver, component: str) -> Schema:
    data = resolver.components[component]["properties"]["data"]
    data = resolver._inline(data, ())
    if data.get("type") == "array":
        data = data["items"]
    return resolver.convert(data)


def build_stream(resolver: Resolver, stream: str) -> Schema:
    component, cursor = SOURCES[stream]
    resource = _resource(resolver, component)
    props: dict[str, Schema] = resource["properties"]
    attributes = props["attributes"]["properties"]
    ordered: dict[str, Schema] = {key: props[key] for key in ("type", "id") if key in props}
    if cursor is not None:
        cursor_schema = copy.deepcopy(attributes[cursor])
        cursor_schema["description"] = CURSOR_DESCRIPTIONS.get(
            stream, f"Copy of attributes.{cursor} (the stream's cursor)."
        )
        ordered[cursor] = cursor_schema
    ordered.update({key: value for key, value in props.items() if key not in ordered})
    resource["properties"] = ordered
    for extra_stream, dotted, spec in EXTRAS:
        if extra_stream != stream:
            continue
        if isinstance(spec, str) and spec.startswith(("copy:", "move:")):
            source = spec.split(":", 1)[1]
            value = copy.deepcopy(_lookup(resource, source))
            if spec.startswith("move:"):
                source_parent, source_last = _node_at(resource, source, create=False)
                del source_parent["properties"][source_last]
        elif isinstance(spec, str) and spec.startswith("items-of:"):
            value = {"type": "array", "items": _resource(resolver, spec.removeprefix("items-of:"))}
        else:
            value = dict(spec)
        parent, last = _node_at(resource, dotted, create=True)
        parent["properties"][last] = value
    schema: Schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        **({"description": NO_CURSOR} if cursor is None else {}),
        "type": "object",
        "required": ["id"],
        "additionalProperties": True,
        "properties": _nullable(resource, is_root=True)["properties"],
    }
    schema["properties"]["id"]["type"] = "string"
    for loose_stream, dotted, kinds in LOOSEN:
        if loose_stream == stream:
            _lookup(schema, dotted)["type"] = kinds
    for datetime_stream, dotted in DATETIMES:
        if datetime_stream == stream:
            _lookup(schema, dotted)["format"] = "date-time"
    if cursor is not None:
        schema["properties"][cursor]["format"] = "date-time"  # a cursor is always a datetime
    return schema


def build_derived(resolver: Resolver, stream: str) -> Schema:
    """The schema of a derived stream's rows: its columns typed from the resource they come from."""
    component, primary_key, columns = DERIVED[stream]
    resource = _resource(resolver, component)
    props: dict[str, Schema] = {}
    for name, spec in columns.items():
        if isinstance(spec, str) and spec.startswith("copy:"):
            props[name] = copy.deepcopy(_lookup_path(resource, spec.removeprefix("copy:")))
        else:
            props[name] = dict(spec)
    schema: Schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": list(primary_key),
        "additionalProperties": True,
        "properties": _nullable({"type": "object", "properties": props}, is_root=True)["properties"],
    }
    for key in primary_key:
        schema["properties"][key]["type"] = "string"
    return schema


def build_report(resolver: Resolver, stream: str) -> Schema:
    """A report stream's records: `date`, the groupings (also copied to the top level), one
    nullable number per statistic of the spec's enum, the conversion metric."""
    component, fields, conversion = REPORTS[stream]
    attributes = resolver.components[component]["properties"]["attributes"]["properties"]
    text = {"type": ["null", "string"]}
    number = {"type": ["null", "number"]}
    props: dict[str, Schema]
    if stream == "metric_aggregates":
        measurements = attributes["measurements"]["items"]["enum"]
        props = {
            "date": dict(_REPORT_DATE),
            "metric_id": {"type": "string"},
            "measurement": {"type": "string", "description": ", ".join(measurements)},
            "dimensions": {"type": ["null", "array"], "items": {"type": ["null", "string"]}},
            "dimension_key": {"type": "string", "description": "The dimension values joined by '|'."},
            "value": number,
        }
        keys = ("date", "metric_id", "measurement", "dimension_key")
    else:
        statistics = attributes["statistics"]["items"]["enum"]
        groupings = {name: dict(text) for name in fields}
        props = {
            "date": dict(_REPORT_DATE),
            **{name: dict(text) for name in fields},
            "groupings": {
                "type": ["null", "object"],
                "additionalProperties": True,
                "properties": groupings,
            },
            "statistics": {
                "type": ["null", "object"],
                "additionalProperties": True,
                "properties": {name: dict(number) for name in statistics},
            },
        }
        if conversion:
            props["conversion_metric_id"] = dict(text)
        keys = ("date", *fields, *(("conversion_metric_id",) if conversion else ()))
    for key in keys:
        props[key]["type"] = props[key]["type"] if isinstance(props[key]["type"], str) else "string"
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": list(keys),
        "additionalProperties": True,
        "properties": props,
    }


def build_all(spec_path: Path = SPEC_PATH) -> dict[str, str]:
    """stream name -> the file text the generator writes."""
    spec = json.loads(spec_path.read_text())
    resolver = Resolver(spec["components"]["schemas"])
    built = {stream: build_stream(resolver, stream) for stream in SOURCES}
    built.update((stream, build_derived(resolver, stream)) for stream in DERIVED)
    built.update((stream, build_report(resolver, stream)) for stream in REPORTS)
    return {
        stream: json.dumps(schema, indent=2, ensure_ascii=False) + "\n" for stream, schema in built.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    outputs = build_all()
    stale = [name for name, text in outputs.items() if _read(OUT_DIR / f"{name}.json") != text]
    if args.check:
        for name in stale:
            print(f"stale: {name}.json (run python tools/gen_schemas.py)", file=sys.stderr)
        return 1 if stale else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (OUT_DIR / f"{name}.json").write_text(outputs[name])
        print(f"wrote {name}.json")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


if __name__ == "__main__":
    raise SystemExit(main())
