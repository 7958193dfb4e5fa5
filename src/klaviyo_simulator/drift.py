"""Type drift: a field whose JSON type changes from a given record on (docs/simulator-controls.md).

`POST /__sim/drift {"resource": "event", "field": "attributes.event_properties.$value",
"to": "string", "from_record": 100}` makes every `event` at position 100 or later (its place in
the store: events and profiles by row, the small collections in their stored order) carry the
field with another type, in listings and single GETs alike. Rules add up; `GET /__sim/drift`
lists them, `DELETE /__sim/drift` removes them all. Deterministic: the drifted value depends only
on the original value and the record's position. Without a rule for a type, nothing changes
(its pages keep their pre-serialized fast path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store

KINDS = ("string", "number", "big_integer", "boolean", "object", "array", "null")


@dataclass(frozen=True)
class DriftRule:
    resource: str  # a JSON:API type ("event", "profile", "campaign", ...)
    field: str  # a dotted path inside the resource object ("attributes.uuid")
    to: str  # one of KINDS
    from_record: int = 0

    @property
    def path(self) -> list[str]:
        return self.field.split(".")


def drifted(kind: str, value: Any, position: int) -> Any:
    """`value` as a value of another JSON type."""
    match kind:
        case "string":
            return value if isinstance(value, str) else orjson.dumps(value).decode()
        case "number":
            return position + 0.5
        case "big_integer":  # beyond 64 bits: orjson cannot write it as a Python int
            return orjson.Fragment(str(2**70 + position).encode())
        case "boolean":
            return position % 2 == 0
        case "object":
            return {"value": value}
        case "array":
            return [value]
        case _:
            return None


def _set(record: Any, path: Sequence[str], value: Any) -> None:
    node = record
    for key in path[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value


def _get(record: Any, path: Sequence[str]) -> Any:
    node = record
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


@dataclass
class Drift:
    rules: list[DriftRule] = field(default_factory=list)

    def add(self, body: Any, known_types: Sequence[str]) -> DriftRule:
        """ValueError for a bad rule."""
        if not isinstance(body, dict) or set(body) - {"resource", "field", "to", "from_record"}:
            raise ValueError("body must be {resource, field, to, from_record}")
        resource, path, kind = body.get("resource"), body.get("field"), body.get("to")
        start = body.get("from_record", 0)
        if resource not in known_types:
            raise ValueError(f"unknown resource {resource!r}")
        if not isinstance(path, str) or not path or "" in path.split("."):
            raise ValueError("field must be a dotted path such as attributes.uuid")
        if kind not in KINDS:
            raise ValueError(f"to must be one of {', '.join(KINDS)}")
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise ValueError("from_record must be a non-negative integer")
        rule = DriftRule(str(resource), path, str(kind), start)
        self.rules.append(rule)
        return rule

    def apply(self, store: Store, rtype: str, rows: Sequence[Any], data: Any) -> Any:
        """A page's `data` (a list, or a pre-serialized array) with the rules of `rtype` applied."""
        rules = [r for r in self.rules if r.resource == rtype]
        if not rules:
            return data
        records = orjson.loads(orjson.dumps(data)) if isinstance(data, orjson.Fragment) else data
        positions = self._positions(store, rtype, rows)
        for position, record in zip(positions, records, strict=False):
            for rule in rules:
                if position >= rule.from_record:
                    _set(record, rule.path, drifted(rule.to, _get(record, rule.path), position))
        return records

    def apply_one(self, store: Store, rtype: str, item: Any, data: Any) -> Any:
        if not any(r.resource == rtype for r in self.rules):
            return data
        (record,) = self.apply(store, rtype, [item], [data])
        return record

    @staticmethod
    def _positions(store: Store, rtype: str, rows: Sequence[Any]) -> list[int]:
        if all(isinstance(row, int) for row in rows):
            return list(rows)
        order = {row.id: index for index, row in enumerate(store.records_view(rtype))}
        return [order.get(str(getattr(row, "id", "")), 0) for row in rows]

    def add_admin_routes(self, app: web.Application, known_types: Sequence[str]) -> None:
        async def post(request: web.Request) -> web.Response:
            try:
                body = await request.json(loads=orjson.loads)
                rule = self.add(body, known_types)
            except (ValueError, orjson.JSONDecodeError) as error:
                return web.json_response({"error": str(error)}, status=400)
            return web.json_response(asdict(rule))

        async def get(request: web.Request) -> web.Response:
            return web.json_response([asdict(rule) for rule in self.rules])

        async def delete(request: web.Request) -> web.Response:
            self.rules.clear()
            return web.json_response([])

        app.router.add_post("/__sim/drift", post)
        app.router.add_get("/__sim/drift", get)
        app.router.add_delete("/__sim/drift", delete)
