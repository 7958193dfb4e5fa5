"""JSON:API resource objects: links, relationships, sparse fieldsets, included documents."""

from __future__ import annotations

from typing import Any

import orjson

from klaviyo_simulator import records
from klaviyo_simulator.data import Row, mix
from klaviyo_simulator.query import iso_seconds
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
}
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

    # ------------------------------------------------------------------ small collections

    def small(self, row: Row, extra: dict[str, Any] | None = None, nested: bool = False) -> dict[str, Any]:
        attributes = dict(row.attributes, **extra) if extra else row.attributes
        with_data = frozenset() if nested else frozenset(self.includes)
        resource = self.resource(row.type, row.id, attributes, row.relationships, with_data=with_data)
        if not nested:
            for name in self.includes:
                target_type, ids = row.relationships.get(name, ("", None))
                for rid in [ids] if isinstance(ids, str) else ids or []:
                    target = self.store.get(target_type, rid)
                    if target is not None:
                        self.include(self.small(target, nested=True))
        return resource

    # ------------------------------------------------------------------ events

    def event(self, row: int) -> dict[str, Any]:
        """Hot path (a full sync renders every event): built directly rather than via `resource`."""
        store = self.store
        eid = records.event_id(row)
        metric = store.small["metric"][store.cols.event_metric[row]]
        link = f"{self.base}/api/events/{eid}/"
        attributes = store.event_attributes(row)
        wanted = self.fields.get("event")
        if wanted is not None:
            attributes = sparse(attributes, wanted)
        attributions = self._attribution_ids(row)
        rel_attr: dict[str, Any] = {
            "links": {"self": f"{link}relationships/attributions/", "related": f"{link}attributions/"}
        }
        if "attributions" in self.includes:
            rel_attr = {"data": [{"type": "attribution", "id": a} for a in attributions], **rel_attr}
        relationships: dict[str, Any] = {
            "metric": {
                "data": {"type": "metric", "id": metric.id},
                "links": {"self": f"{link}relationships/metric/", "related": f"{link}metric/"},
            },
            "attributions": rel_attr,
        }
        if store.profile_count:
            profile_row = store.cols.event_profile[row]
            relationships["profile"] = {
                "data": {"type": "profile", "id": store.profile_id(profile_row)},
                "links": {"self": f"{link}relationships/profile/", "related": f"{link}profile/"},
            }
            if "profile" in self.includes:
                self.include(self.profile(profile_row, nested=True))
        if "metric" in self.includes:
            self.include(self.small(metric, nested=True))
        if "attributions" in self.includes:
            for index, aid in enumerate(attributions):
                self.include(self._attribution(aid, eid, row, index))
        return {"type": "event", "id": eid, "attributes": attributes, "relationships": relationships,
                "links": {"self": link}}  # fmt: skip

    def events_json(self, rows: list[int]) -> orjson.Fragment:
        """`[event(row) ...]` pre-serialized by string templating: the serving hot path.

        Equivalent to the dict path (a test compares them); used when no sparse fieldset applies.
        """
        store = self.store
        cols = store.cols
        ts_col, rand_col, metric_col, profile_col = (
            cols.event_ts,
            cols.event_rand,
            cols.event_metric,
            cols.event_profile,
        )
        metrics = [(m, m.id, m.attributes["name"]) for m in store.small["metric"]]
        names_json = store.campaign_names_json
        include_attributions = "attributions" in self.includes
        include_profile = "profile" in self.includes
        include_metric = "metric" in self.includes
        has_profiles = store.profile_count > 0
        included = self.included
        prefix = f"{self.base_json}/api/events/"
        event_id, properties, uuid, iso, profile_id = (
            records.event_id,
            records.event_properties_json,
            records.event_uuid,
            iso_seconds,
            store.profile_id,
        )
        out = []
        for row in rows:
            eid = event_id(row)
            metric, metric_id, metric_name = metrics[metric_col[row]]
            ts, h = ts_col[row], rand_col[row]
            link = f"{prefix}{eid}/"
            attribution_data = ""
            if include_attributions:
                attributions = self._attribution_ids(row)
                items = ",".join(f'{{"type":"attribution","id":"{a}"}}' for a in attributions)
                attribution_data = f'"data":[{items}],'
                for index, aid in enumerate(attributions):
                    self.include(self._attribution(aid, eid, row, index))
            profile = ""
            if has_profiles:
                profile_row = profile_col[row]
                pid = profile_id(profile_row)
                profile = (
                    f'"profile":{{"data":{{"type":"profile","id":"{pid}"}},'
                    f'"links":{{"self":"{link}relationships/profile/","related":"{link}profile/"}}}},'
                )
                if include_profile and ("profile", pid) not in included:
                    self.include(self.profile(profile_row, nested=True))
            if include_metric and ("metric", metric_id) not in included:
                self.include(self.small(metric, nested=True))
            out.append(
                f'{{"type":"event","id":"{eid}","attributes":{{"timestamp":{ts},'
                f'"event_properties":{properties(h, metric_name, names_json)},'
                f'"datetime":"{iso(ts)}","uuid":"{uuid(h)}"}},"relationships":{{{profile}'
                f'"metric":{{"data":{{"type":"metric","id":"{metric_id}"}},'
                f'"links":{{"self":"{link}relationships/metric/","related":"{link}metric/"}}}},'
                f'"attributions":{{{attribution_data}"links":{{"self":"{link}relationships/attributions/",'
                f'"related":"{link}attributions/"}}}}}},"links":{{"self":"{link}"}}}}'
            )
        return orjson.Fragment("[" + ",".join(out) + "]")

    def _attribution_ids(self, row: int) -> list[str]:
        name = self.store.small["metric"][self.store.cols.event_metric[row]].attributes["name"]
        if (
            name != "Placed Order"
            or (self.store.cols.event_rand[row] >> 56) % 10 >= 3
            or not self.store.small["campaign"]
        ):
            return []
        return [f"{records.event_id(row)}-1"]

    def _attribution(self, aid: str, eid: str, row: int, index: int) -> dict[str, Any]:
        campaigns = self.store.small["campaign"]
        campaign = campaigns[mix(self.store.seed, 50, row, index) % len(campaigns)]
        message_ids = campaign.relationships["campaign-messages"][1] or []
        rels: dict[str, tuple[str, Any]] = {"event": ("event", eid), "campaign": ("campaign", campaign.id)}
        if message_ids:
            rels["campaign-message"] = ("campaign-message", message_ids[0])
        return self.resource("attribution", aid, None, rels)

    # ------------------------------------------------------------------ profiles

    def profile(
        self,
        row: int,
        additional: frozenset[str] = frozenset(),
        joined: int | None = None,
        nested: bool = False,
    ) -> dict[str, Any]:
        store = self.store
        attributes = store.profile_attributes(row)
        if joined is not None:
            attributes["joined_group_at"] = iso_seconds(joined)
        if "subscriptions" in additional:
            attributes["subscriptions"] = store.subscriptions(row)
        if "predictive_analytics" in additional:
            attributes["predictive_analytics"] = store.predictive_analytics(row)
        pid = store.profile_id(row)
        token = store.push_token(row)
        rels: dict[str, tuple[str, Any]] = {}
        if joined is None and not nested:
            rels = {
                "push-tokens": ("push-token", [token] if token else []),
                "conversations": ("conversation", []),
            }
        resource = self.resource("profile", pid, attributes, rels, with_data=frozenset(self.includes))
        if not nested and "push-tokens" in self.includes and token:
            self.include(self._push_token(row, pid, token))
        return resource

    def _push_token(self, row: int, pid: str, token: str) -> dict[str, Any]:
        created = iso_seconds(self.store.cols.profile_created[row])
        ios = mix(self.store.seed, 51, row) % 2 == 0
        attributes = {
            "created": created,
            "token": token,
            "enablement_status": "AUTHORIZED",
            "platform": "ios" if ios else "android",
            "vendor": "apns" if ios else "fcm",
            "background": "AVAILABLE",
            "recorded_date": created,
            "metadata": None,
        }
        return self.resource("push-token", token, attributes, {"profile": ("profile", pid)})
