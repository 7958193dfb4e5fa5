"""JSON:API resource objects for one request: links, relationships, sparse fieldsets, `included`.

Resource kinds (`resources/`) build their attributes; this module gives every kind the same
envelope of a resource object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from klaviyo_simulator.model import Row

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store

PLURAL = {
    "event": "events",
    "profile": "profiles",
    "metric": "metrics",
    "list": "lists",
    "segment": "segments",
    "template": "templates",
    "campaign": "campaigns",
    "campaign-message": "campaign-messages",
    "campaign-recipient-estimation": "campaign-recipient-estimations",
    "flow": "flows",
    "flow-action": "flow-actions",
    "flow-message": "flow-messages",
    "tag": "tags",
    "tag-group": "tag-groups",
    "attribution": "attributions",
    "push-token": "push-tokens",
    "conversation": "conversations",
    "image": "images",
    "coupon": "coupons",
    "coupon-code": "coupon-codes",
    "form": "forms",
    "form-version": "form-versions",
    "catalog-item": "catalog-items",
    "catalog-variant": "catalog-variants",
    "catalog-category": "catalog-categories",
    "account": "accounts",
    "metric-property": "metric-properties",
    "template-universal-content": "template-universal-content",
    "review": "reviews",
    "web-feed": "web-feeds",
    "webhook": "webhooks",
    "webhook-topic": "webhook-topics",
    "custom-metric": "custom-metrics",
    "tracking-setting": "tracking-settings",
}
SINGULAR = {plural: rtype for rtype, plural in PLURAL.items()}
TO_ONE = frozenset(
    {
        "profile",
        "metric",
        "campaign",
        "template",
        "flow",
        "flow-action",
        "tag-group",
        "image",
        "event",
        "attributed-event",
        "campaign-message",
        "flow-message",
        "coupon",
        "form",
        "item",
    }
)


def sparse(attributes: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    """Keep only the requested attributes; dotted paths (`location.city`) keep nested members."""
    if wanted is None:
        return attributes
    tree: dict[str, Any] = {}
    for path in wanted:
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if child is True:
                break
            node = child
        else:
            node[parts[-1]] = True
    return _prune(attributes, tree)


def _prune(value: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub in tree.items():
        if key not in value:
            continue
        if sub is True or not isinstance(value[key], dict):
            out[key] = value[key]
        else:
            out[key] = _prune(value[key], sub)
    return out


class Renderer:
    """Builds resource objects for one request (base URL, sparse fieldsets, includes)."""

    def __init__(self, store: Store, base: str, fields: dict[str, list[str]], includes: list[str]) -> None:
        self.store = store
        self.base = base
        self.fields = fields
        self.includes = includes
        self.included: dict[tuple[str, str], dict[str, Any]] = {}
        self.base_json = orjson.dumps(base).decode()[1:-1]  # the base URL as a JSON string body

    def link(self, rtype: str, rid: str) -> str:
        return f"{self.base}/api/{PLURAL[rtype]}/{rid}/"

    def resource(
        self,
        rtype: str,
        rid: str,
        attributes: dict[str, Any] | None,
        relationships: dict[str, tuple[str, Any]],
        *,
        with_data: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        self_link = self.link(rtype, rid)
        out: dict[str, Any] = {"type": rtype, "id": rid}
        if attributes is not None:
            out["attributes"] = sparse(attributes, self.fields.get(rtype))
        if relationships:
            rels: dict[str, Any] = {}
            for name, (target_type, ids) in relationships.items():
                rel: dict[str, Any] = {}
                if name in TO_ONE:
                    if ids is not None:
                        rel["data"] = {"type": target_type, "id": ids}
                elif name in with_data:
                    rel["data"] = [{"type": target_type, "id": i} for i in ids or []]
                rel["links"] = {"self": f"{self_link}relationships/{name}/", "related": f"{self_link}{name}/"}
                rels[name] = rel
            out["relationships"] = rels
        out["links"] = {"self": self_link}
        return out

    def include(self, resource: dict[str, Any]) -> None:
        self.included.setdefault((resource["type"], resource["id"]), resource)

    def row(self, row: Row, extra: dict[str, Any] | None = None, nested: bool = False) -> dict[str, Any]:
        """A small-collection row; its included relations go to `included` (one level deep)."""
        attributes = dict(row.attributes, **extra) if extra else row.attributes
        with_data = frozenset() if nested else frozenset(self.includes)
        resource = self.resource(row.type, row.id, attributes, row.relationships, with_data=with_data)
        if not nested:
            for name in self.includes:
                target_type = row.relationships.get(name, ("", None))[0]
                for rid in row.related_ids(name):
                    target = self.store.get(target_type, rid)
                    if target is not None:
                        self.include(self.row(target, nested=True))
        return resource
