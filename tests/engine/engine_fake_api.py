"""A tiny JSON:API server on 127.0.0.1 for engine tests that need what the simulator cannot
serve (its fault controls script statuses, resets, hangs and broken bodies, not these): records a
test builds by hand (edge cases such as a record without its cursor), a `links.next` that loops or
points to another host (`hook`), a valid JSON body without `data` (`script`), and the request
headers as sent. Everything else is tested against the real simulator. Records are dicts; a
listing path filters on `op(field,value)` terms, sorts on `sort` and pages with an offset cursor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

Record = dict[str, Any]
_TERM = re.compile(r"(equals|greater-than|greater-or-equal|less-than|less-or-equal)\(([\w.]+),([^()]*)\)")


def _value(record: Record, name: str) -> Any:
    if name == "messages.channel":
        return record["attributes"].get("channel")
    value: Any = record["attributes"]
    for part in name.split("."):
        if isinstance(value, list):  # a multi-valued field (a profile's suppression): its first item
            value = value[0] if value else None
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(record: Record, op: str, name: str, raw: str) -> bool:
    value = _value(record, name)
    if op == "equals":
        literal = raw.strip("'\"")
        return str(value).lower() == literal.lower()
    if value is None:
        return False
    left = datetime.fromisoformat(str(value))
    right = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return {
        "greater-than": left > right,
        "greater-or-equal": left >= right,
        "less-than": left < right,
        "less-or-equal": left <= right,
    }[op]


@dataclass
class FakeApi:
    lists: dict[str, list[Record]] = field(default_factory=dict)  # path -> records
    singles: dict[str, Record] = field(default_factory=dict)  # path -> document
    # path -> scripted responses consumed first: (status, body bytes, headers)
    script: dict[str, list[tuple[int, bytes, dict[str, str]]]] = field(default_factory=dict)
    hook: Callable[[web.Request], web.Response | None] | None = None
    requests: list[str] = field(default_factory=list)
    base_url: str = ""  # set by the test once `kit.tiny_api.serve` runs it

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(str(request.rel_url))
        if "Klaviyo-API-Key" not in request.headers.get("Authorization", ""):
            return web.Response(status=401)
        if self.hook is not None:
            early = self.hook(request)
            if early is not None:
                return early
        path = request.path
        scripted = self.script.get(path)
        if scripted:
            status, body, headers = scripted.pop(0)
            return web.Response(
                status=status, body=body, headers=headers, content_type="application/vnd.api+json"
            )
        if path in self.singles:
            return web.Response(
                body=orjson.dumps(self.singles[path]), content_type="application/vnd.api+json"
            )
        if path not in self.lists:
            return web.json_response({"errors": [{"detail": "Not found", "code": "not_found"}]}, status=404)
        rows = self.lists[path]
        for op, name, raw in _TERM.findall(request.query.get("filter", "")):
            rows = [r for r in rows if _matches(r, op, name, raw)]
        sort = request.query.get("sort")
        if sort:
            rows = sorted(rows, key=lambda r: (datetime.fromisoformat(str(_value(r, sort))), r["id"]))
        size = int(request.query.get("page[size]", "10"))
        offset = int(request.query.get("page[cursor]", "0"))
        page = rows[offset : offset + size]
        next_url = None
        if offset + size < len(rows):
            query = dict(request.query)
            query["page[cursor]"] = str(offset + size)
            next_url = str(request.url.with_query(query))
        body = {"data": page, "links": {"self": str(request.url), "next": next_url}}
        return web.Response(body=orjson.dumps(body), content_type="application/vnd.api+json")
