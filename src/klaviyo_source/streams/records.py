"""JSON:API shaping: top-level cursor copy, `included` merge, stream-specific additions.

Records are the resources as Klaviyo returned them (parsed by orjson) plus the few keys Airbyte's
connector adds. Functions that serve two streams from one page never mutate what the other
stream also receives: they copy only the dicts on the path they change (no deep copies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Record = dict[str, Any]
IncludedIndex = dict[tuple[str, str], Record]


class Page:
    """One listing page as the shapers see it: the parsed document, and the index of its
    `included` resources built on first use (once per page, whichever streams need it)."""

    __slots__ = ("_included", "doc")

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self._included: IncludedIndex | None = None

    @property
    def included(self) -> IncludedIndex:
        if self._included is None:
            self._included = include_index(self.doc)
        return self._included


def include_index(doc: dict[str, Any]) -> IncludedIndex:
    """(type, id) -> included resource of a compound document."""
    included = doc.get("included")
    if not included:
        return {}
    return {(str(item.get("type")), str(item.get("id"))): item for item in included if isinstance(item, dict)}


def merged_ref(ref: Any, index: IncludedIndex) -> Any:
    """A relationship's reference with its included resource merged in (a new dict)."""
    if not isinstance(ref, dict):
        return ref
    item = index.get((ref.get("type"), ref.get("id")))  # type: ignore[arg-type]
    if item is None:
        return ref
    merged = dict(ref)
    attributes = item.get("attributes")
    if isinstance(attributes, dict):
        merged.update(attributes)
    if "relationships" in item:
        merged["relationships"] = item["relationships"]
    return merged


def merge_included(record: Record, index: IncludedIndex) -> Record:
    """Airbyte 2.14's included-field extractor: every relationship's `data` (object or list of
    objects) gets the attributes (and relationships) of the matching included resource.
    Returns a new record; `record` is left untouched."""
    relationships = record.get("relationships")
    if not index or not isinstance(relationships, dict):
        return record
    new_relationships = {}
    for name, rel in relationships.items():
        data = rel.get("data") if isinstance(rel, dict) else None
        if isinstance(data, list):
            rel = {**rel, "data": [merged_ref(ref, index) for ref in data]}
        elif isinstance(data, dict):
            rel = {**rel, "data": merged_ref(data, index)}
        new_relationships[name] = rel
    return {**record, "relationships": new_relationships}


def merge_included_page(records: list[Record], page: Page) -> list[Record]:
    """events_detailed: every record with its relationships merged from the page's `included`."""
    index = page.included
    return [merge_included(r, index) for r in records]


def normalize_profiles(records: list[Record], page: Page) -> list[Record]:
    """profiles: `normalize_profile` on every record (in place)."""
    for record in records:
        normalize_profile(record)
    return records


def normalize_profile(record: Record) -> None:
    """Airbyte's profiles schema types `attributes.location.region` as a string and its
    connector casts numbers (2.10.2+); done in place (region is the only such field)."""
    location = record["attributes"].get("location")
    if location:
        region = location.get("region")
        if isinstance(region, int | float) and not isinstance(region, bool):
            location["region"] = str(region)


def suppression_of(record: Record) -> Any:
    """`attributes.subscriptions.email.marketing.suppression` or None."""
    try:
        return record["attributes"]["subscriptions"]["email"]["marketing"].get("suppression")
    except (KeyError, TypeError, AttributeError):
        return None


def global_exclusion(record: Record) -> Record | None:
    """The global_exclusions record for a profile, or None when it has no email suppression.
    As Airbyte 3.x: `...marketing.suppression` is renamed `...marketing.suppressions` (the
    pre-2024-10-15 name) and the top-level `updated` is the suppression time (the cursor)."""
    suppression = suppression_of(record)
    if not suppression:
        return None
    attributes = record["attributes"]
    subscriptions = attributes["subscriptions"]
    email = subscriptions["email"]
    marketing = {k: v for k, v in email["marketing"].items() if k != "suppression"}
    marketing["suppressions"] = suppression
    first = suppression[0] if isinstance(suppression, list) else suppression
    return {
        **record,
        "updated": first.get("timestamp") if isinstance(first, dict) else record.get("updated"),
        "attributes": {
            **attributes,
            "subscriptions": {**subscriptions, "email": {**email, "marketing": marketing}},
        },
    }


def global_exclusions(records: list[Record], page: Page) -> list[Record]:
    """global_exclusions: the suppressed profiles of a page, shaped by `global_exclusion`."""
    return [g for r in records if (g := global_exclusion(r)) is not None]


def group_with_profile_count(record: Record, detail: Record | None, page: Page) -> Record | None:
    """lists_detailed, segments_detailed: the group as GET /api/{lists|segments}/{id} with
    `additional-fields[...]=profile_count` returned it (the engine adds the top-level cursor
    copy); None when the group was deleted between the listing and the detail fetch (404)."""
    if detail is None or not isinstance(detail.get("data"), dict):
        return None
    detailed: Record = detail["data"]
    return detailed


def campaign_with_estimation(record: Record, detail: Record | None, page: Page) -> Record:
    """campaigns_detailed: the campaign plus `estimated_recipient_count` (0 when Klaviyo has no
    estimation: 404) and its `campaign_messages` from the listing's `included`."""
    count = 0
    if detail is not None and isinstance(detail.get("data"), dict):
        count = (detail["data"].get("attributes") or {}).get("estimated_recipient_count") or 0
    return {
        **record,
        "estimated_recipient_count": count,
        "campaign_messages": campaign_messages(record, page.included),
    }


def membership(parent_key: str) -> Callable[[Record, Record], Record]:
    """A membership row from a group (list, segment) and one member profile of its listing."""

    def row(group: Record, member: Record) -> Record:
        return {
            parent_key: group["id"],
            "profile_id": member["id"],
            "joined_group_at": member["attributes"]["joined_group_at"],
        }

    return row


def included_children(
    relationship: str, *, cursor: str, parent_key: str
) -> Callable[[list[Record], Page], list[Record]]:
    """The included resources a page's records point to through `relationship` (a flow's
    `flow-actions`), each with its top-level cursor copy and its parent's id as `parent_key`."""

    def rows(records: list[Record], page: Page) -> list[Record]:
        index = page.included
        out: list[Record] = []
        for record in records:
            rel = (record.get("relationships") or {}).get(relationship)
            refs = rel.get("data") if isinstance(rel, dict) else None
            for ref in refs if isinstance(refs, list) else ():
                item = (
                    index.get((str(ref.get("type")), str(ref.get("id")))) if isinstance(ref, dict) else None
                )
                if item is not None:
                    out.append({**item, cursor: item["attributes"][cursor], parent_key: record["id"]})
        return out

    return rows


# Derived streams: rows the connector builds from the records of a listing that is read anyway
# (no request of their own). Each row carries its parent's id and the top-level cursor copy.
Shaper = Callable[[list[Record], Page], list[Record]]


def _related_ids(record: Record, name: str) -> list[str]:
    """The ids of a to-many relationship's `data` (present when the listing asked to include it)."""
    rel = (record.get("relationships") or {}).get(name)
    refs = rel.get("data") if isinstance(rel, dict) else None
    if not isinstance(refs, list):
        return []
    return [str(ref["id"]) for ref in refs if isinstance(ref, dict) and ref.get("id") is not None]


def tag_links(parent_key: str, cursor: str) -> Shaper:
    """campaign_tags, flow_tags, list_tags, segment_tags: one row per (parent, tag) from the
    parent's `relationships.tags.data` (the listing includes tags), with the parent's cursor."""

    def rows(records: list[Record], page: Page) -> list[Record]:
        return [
            {parent_key: record["id"], "tag_id": tag_id, cursor: record[cursor]}
            for record in records
            for tag_id in dict.fromkeys(_related_ids(record, "tags"))
        ]

    return rows


def has_any(path: tuple[str, ...], keys: tuple[str, ...]) -> Callable[[Record], bool]:
    """True for a record whose object at `path` has one of `keys` (a flow action whose
    definition data holds a `message` or an experiment's `main_action`)."""

    def test(record: Record) -> bool:
        value = cursor_value(record, path)
        return isinstance(value, dict) and any(key in value for key in keys)

    return test


def child_resource(parent_key: str, *, cursor: str) -> Callable[[Record, Record], Record]:
    """A fan-out child listed as is, with its top-level cursor copy and its parent's id."""

    def row(parent: Record, child: Record) -> Record:
        return {**child, cursor: child["attributes"][cursor], parent_key: parent["id"]}

    return row


def campaign_message_rows(records: list[Record], page: Page) -> list[Record]:
    """campaign_messages: every campaign's messages from the page's `included`
    (include=campaign-messages), with `campaign_id` and the top-level `updated_at` (the
    message's own; the campaign's when the message has none)."""
    index = page.included
    out = []
    for record in records:
        for message in campaign_messages(record, index):
            updated = (message.get("attributes") or {}).get("updated_at") or record["updated_at"]
            out.append({**message, "campaign_id": record["id"], "updated_at": updated})
    return out


def campaign_audience_rows(records: list[Record], page: Page) -> list[Record]:
    """campaign_audiences: one row per (campaign, audience, inclusion) from the campaign's
    `attributes.audiences.included` / `.excluded` (list or segment ids)."""
    out = []
    for record in records:
        audiences = record["attributes"].get("audiences") or {}
        for inclusion in ("included", "excluded"):
            for audience_id in dict.fromkeys(audiences.get(inclusion) or ()):
                out.append(
                    {
                        "campaign_id": record["id"],
                        "audience_id": str(audience_id),
                        "inclusion": inclusion,
                        "updated_at": record["updated_at"],
                    }
                )
    return out


def _subscriptions(record: Record) -> dict[str, Any]:
    subscriptions = record["attributes"].get("subscriptions")
    return subscriptions if isinstance(subscriptions, dict) else {}


def profile_subscription_rows(records: list[Record], page: Page) -> list[Record]:
    """profile_subscriptions: one row per (profile, channel, kind) of the profile's
    `subscriptions` as Klaviyo nests them (email: marketing, open_tracking; sms: marketing,
    transactional; mobile_push: marketing; whatsapp: marketing, transactional, conversational),
    with the kind's fields as columns; `can_receive_<channel>_<kind>` becomes `can_receive`."""
    out = []
    for record in records:
        for channel, kinds in _subscriptions(record).items():
            if not isinstance(kinds, dict):
                continue
            for kind, fields in kinds.items():
                if not isinstance(fields, dict):
                    continue
                row: Record = {"profile_id": record["id"], "channel": channel, "kind": kind}
                row["updated"] = record["updated"]
                can_receive = fields.get("can_receive")
                for name, value in fields.items():
                    if name.startswith("can_receive_"):
                        can_receive = value
                    elif name != "can_receive":
                        row[name] = value
                row["can_receive"] = can_receive
                out.append(row)
    return out


def list_exclusion_rows(records: list[Record], page: Page) -> list[Record]:
    """list_exclusions: one row per (profile, list) of the profile's
    `subscriptions.email.marketing.list_suppressions` (the latest when a list repeats)."""
    out = []
    for record in records:
        try:
            suppressions = _subscriptions(record)["email"]["marketing"].get("list_suppressions")
        except (KeyError, TypeError, AttributeError):
            continue
        latest: dict[str, Record] = {}
        for item in suppressions or ():
            if not isinstance(item, dict) or item.get("list_id") is None:
                continue
            list_id = str(item["list_id"])
            previous = latest.get(list_id)
            if previous is None or str(item.get("timestamp") or "") > str(previous.get("timestamp") or ""):
                latest[list_id] = item
        for list_id, item in latest.items():
            out.append(
                {
                    "profile_id": record["id"],
                    "list_id": list_id,
                    "reason": item.get("reason"),
                    "timestamp": item.get("timestamp"),
                    "updated": record["updated"],
                }
            )
    return out


def child_of(parent_key: str, cursor: str | None) -> Callable[[Record, Record], Record]:
    """A child resource as listed, plus its parent's id under `parent_key` and the top-level
    copy of its `cursor` attribute (none when the child listing has no cursor)."""

    def row(parent: Record, child: Record) -> Record:
        out = {**child, parent_key: parent["id"]}
        if cursor is not None:
            out[cursor] = child["attributes"][cursor]
        return out

    return row


def campaign_messages(record: Record, index: IncludedIndex) -> list[Record]:
    """The campaign's messages from the listing's `included` (include=campaign-messages)."""
    rel = (record.get("relationships") or {}).get("campaign-messages")
    refs = rel.get("data") if isinstance(rel, dict) else None
    if not isinstance(refs, list):
        return []
    out = []
    for ref in refs:
        if isinstance(ref, dict):
            item = index.get((ref.get("type"), ref.get("id")))  # type: ignore[arg-type]
            if item is not None:
                out.append(item)
    return out


def cursor_value(record: Record, path: tuple[str, ...]) -> Any:
    """The value at `path` (e.g. ("attributes", "updated")) or None; a list on the way stands for
    its first item (a profile's `suppression` array)."""
    value: Any = record
    for key in path:
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
