"""The simulator's aiohttp application: routing, auth, revision, query validation, JSON:API envelope.

Per API request, in order: path -> 404, verb -> 405, `Authorization` -> 401, scopes -> 403,
`revision` -> 400, `controls.before` (429 / scripted faults), query validation -> 400,
unknown id -> 404, then the page goes out through `controls.respond`.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from aiohttp import web

from klaviyo_simulator.controls import Controls, RouteInfo
from klaviyo_simulator.query import (
    Condition,
    CursorCodec,
    QueryError,
    parse_filter,
    parse_list,
    parse_page_size,
    parse_sort,
)
from klaviyo_simulator.resources import Renderer
from klaviyo_simulator.spec import EndpointRule, endpoint_rules
from klaviyo_simulator.store import Page, Store

_REVISION_FORMAT = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(\.pre)?$")
METRICS_PAGE_SIZE = 200  # GET /api/metrics has no page[size] parameter: fixed 200 per page
# Default order when `sort` is absent (documented in docs/simulator.md).
DEFAULT_SORT = {"event": "datetime", "member": "joined_group_at"}
TITLES = {
    400: "Invalid input.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
}
APP_KEY_STATE: web.AppKey[SimulatorState] = web.AppKey("simulator_state")
LOG = logging.getLogger("klaviyo_simulator")


@dataclass
class SimulatorState:
    """What the request handlers share."""

    store: Store
    controls: Controls
    keys: dict[str, frozenset[str] | None]  # key -> scopes (None = every scope)
    codec: CursorCodec
    routes: list[tuple[re.Pattern[str], EndpointRule]] = field(default_factory=list)


class ApiError(Exception):
    """An error answered in Klaviyo's JSON:API error shape."""

    def __init__(
        self, status: int, code: str, detail: str, parameter: str | None = None, title: str = ""
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.parameter = status, code, detail, parameter
        self.title = title or TITLES.get(status, "Error.")


def error_body(err: ApiError) -> bytes:
    item: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": err.status,
        "code": err.code,
        "title": err.title,
        "detail": err.detail,
        "source": {},
    }
    if err.parameter:
        item["source"] = {"parameter": err.parameter}
    return orjson.dumps({"errors": [item]})


def compile_routes() -> list[tuple[re.Pattern[str], EndpointRule]]:
    routes = []
    for template, rule in endpoint_rules().items():
        pattern = "^" + re.escape(template).replace(re.escape("{id}"), "(?P<id>[^/]+)") + "/?$"
        routes.append((re.compile(pattern), rule))
    return routes


def route_info(request: web.Request, rule: EndpointRule) -> RouteInfo:
    for tier in rule.conditional_tiers:
        if tier.value in request.query.get(tier.param, "").split(","):
            return RouteInfo(
                rule.operation,
                request.path,
                f"{rule.operation}:{tier.value}",
                tier.burst,
                tier.steady,
                frozenset({tier.value}),
            )
    return RouteInfo(rule.operation, request.path, rule.operation, rule.burst, rule.steady)


def check_auth(state: SimulatorState, request: web.Request, rule: EndpointRule) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme != "Klaviyo-API-Key" or not key.strip():
        raise ApiError(401, "not_authenticated", "Authentication credentials were not provided.")
    key = key.strip()
    if key not in state.keys:
        raise ApiError(
            401,
            "authentication_failed",
            "Incorrect authentication credentials.",
            title="Incorrect authentication credentials.",
        )
    scopes = state.keys[key]
    missing = [s for s in rule.scopes if scopes is not None and s not in scopes]
    if missing:
        raise ApiError(
            403,
            "permission_denied",
            f"You do not have permission to perform this action. Missing scope(s): {', '.join(missing)}.",
        )


def check_revision(request: web.Request) -> str:
    revision = request.headers.get("revision")  # header lookup is case-insensitive
    if revision is None:
        raise ApiError(400, "invalid", "The 'revision' header is required.", title="Invalid input.")
    if not _REVISION_FORMAT.match(revision.strip()):
        raise ApiError(
            400, "invalid", f"Invalid revision '{revision}': expected YYYY-MM-DD or YYYY-MM-DD.pre."
        )
    return revision.strip()


@dataclass
class Query:
    """The validated query of one request."""

    conditions: list[Condition]
    sort: tuple[str, bool] | None
    page_size: int
    cursor: str | None
    fields: dict[str, list[str]]
    includes: list[str]
    additional: dict[str, frozenset[str]]


def parse_query(request: web.Request, rule: EndpointRule, collection: bool) -> Query:
    params = request.query
    for name in set(params):
        if len(params.getall(name)) > 1:
            raise QueryError(name, f"The parameter '{name}' may only be given once.")
    fields: dict[str, list[str]] = {}
    additional: dict[str, frozenset[str]] = {}
    for name, value in params.items():
        if name.startswith("fields["):
            rtype = name[7:-1]
            if rtype not in rule.fields:
                raise QueryError(name, f"'{name}' is not a valid sparse fieldset for this endpoint.")
            fields[rtype] = parse_list(value, rule.fields[rtype], name)
        elif name.startswith("additional-fields["):
            rtype = name[18:-1]
            if rtype not in rule.additional_fields:
                raise QueryError(name, f"'{name}' is not supported by this endpoint.")
            additional[rtype] = frozenset(parse_list(value, rule.additional_fields[rtype], name))
    includes = parse_list(params.get("include"), rule.includes, "include") if "include" in params else []
    raw_filter = params.get("filter")
    conditions: list[Condition] = []
    if raw_filter is not None:
        if not rule.filters:
            raise QueryError("filter", "Filtering is not supported by this endpoint.")
        conditions = parse_filter(raw_filter, rule)
    elif rule.filter_required:
        raise QueryError("filter", "A filter is required for this endpoint.")
    if rule.resource_type == "campaign" and collection:
        channels = [c for c in conditions if c.field == "messages.channel" and c.op == "equals"]
        if not channels:
            raise QueryError(
                "filter",
                "A channel filter is required: equals(messages.channel,'email'|'sms'|'mobile_push').",
            )
    if not collection:
        for name in ("filter", "sort", "page[size]", "page[cursor]"):
            if name in params:
                raise QueryError(name, f"'{name}' is not supported by this endpoint.")
    sort = parse_sort(params.get("sort"), rule) if "sort" in params else None
    if not rule.has_cursor and "page[cursor]" in params:
        raise QueryError("page[cursor]", "Pagination is not supported by this endpoint.")
    size = parse_page_size(params.get("page[size]"), rule, METRICS_PAGE_SIZE)
    return Query(conditions, sort, size, params.get("page[cursor]"), fields, includes, additional)


def _links(
    request: web.Request, base: str, next_cursor: str | None, prev_cursor: str | None
) -> dict[str, Any]:
    path = request.path if request.path.endswith("/") else request.path + "/"
    own = [(k, v) for k, v in request.query.items() if k != "page[cursor]"]

    def url(cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return f"{base}{path}?" + urlencode([*own, ("page[cursor]", cursor)], quote_via=quote, safe="")

    self_query = request.query_string
    return {
        "self": f"{base}{request.path}" + (f"?{self_query}" if self_query else ""),
        "next": url(next_cursor),
        "prev": url(prev_cursor),
    }


def _meta(has_next: bool) -> dict[str, Any]:
    hints = ["Follow links.next to fetch the next page of results."] if has_next else []
    return {"agent_hints": {"next_steps": hints}}


def _kind(rule: EndpointRule) -> str:
    if rule.resource_type == "event":
        return "event"
    if rule.resource_type == "profile":
        return "member" if "{id}" in rule.path else "profile"
    return rule.resource_type


PARENT_TYPES = {
    "/api/lists/{id}/profiles": "list",
    "/api/segments/{id}/profiles": "segment",
    "/api/campaigns/{id}/campaign-messages": "campaign",
    "/api/flows/{id}/flow-actions": "flow",
    "/api/flow-actions/{id}/flow-messages": "flow-action",
}
PARENT_RELS = {
    "campaign-message": "campaign-messages",
    "flow-action": "flow-actions",
    "flow-message": "flow-messages",
}


def _ids(row: Any, rel: str) -> list[str]:
    if row is None:
        return []
    value = row.relationships.get(rel, ("", None))[1]
    return [value] if isinstance(value, str) else list(value or [])


def fetch_page(
    state: SimulatorState, rule: EndpointRule, query: Query, rid: str | None
) -> tuple[Page, str | None, str | None]:
    """The requested page and its next/prev cursors."""
    store = state.store
    kind = _kind(rule)
    sort_field, desc = query.sort or (DEFAULT_SORT.get(kind, "id"), False)
    sort_text = ("-" if desc else "") + sort_field
    after: Any = None
    backwards = False
    if query.cursor is not None:
        decoded = state.codec.decode(query.cursor, sort_text)
        if not isinstance(decoded, dict) or decoded.get("d") not in ("next", "prev") or "k" not in decoded:
            raise QueryError("page[cursor]", "Invalid cursor provided.")
        backwards, after = decoded["d"] == "prev", decoded["k"]
    descending = desc != backwards
    conds = query.conditions
    if kind == "event":
        page = store.page_events(conds, descending, after, query.page_size)
    elif kind == "profile":
        page = store.page_profiles(conds, sort_field, descending, after, query.page_size)
    elif kind == "member":
        assert rid is not None
        page = store.page_members(PARENT_TYPES[rule.path], rid, conds, descending, after, query.page_size)
    else:
        rows = store.small.get(rule.resource_type, [])
        if rid is not None:
            ids = set(_ids(store.get(PARENT_TYPES[rule.path], rid), PARENT_RELS[rule.resource_type]))
            rows = [r for r in rows if r.id in ids]
        if kind == "campaign" and not any(c.field == "archived" for c in conds):
            conds = [*conds, Condition("archived", "equals", False)]  # archived campaigns only when asked for
        size = query.page_size if rule.has_cursor else len(rows) + 1
        page = store.page_small(rows, conds, sort_field, descending, after, size)

    def cursor(direction: str, key: Any) -> str:
        return state.codec.encode(sort_text, {"d": direction, "k": key})

    if backwards:
        page.rows.reverse()
        page.keys.reverse()
        next_cursor = cursor("next", page.keys[-1]) if page.keys else cursor("next", after)
        prev_cursor = cursor("prev", page.keys[0]) if page.more and page.keys else None
        return page, next_cursor, prev_cursor
    forward_next = cursor("next", page.keys[-1]) if page.more and page.keys else None
    forward_prev = cursor("prev", page.keys[0]) if after is not None and page.keys else None
    return page, forward_next, forward_prev


def render_rows(
    renderer: Renderer, rule: EndpointRule, page: Page, query: Query
) -> list[Any] | orjson.Fragment:
    kind = _kind(rule)
    if kind == "event":
        if "event" in query.fields:
            return [renderer.event(row) for row in page.rows]
        return renderer.events_json(page.rows)
    if kind in ("profile", "member"):
        additional = query.additional.get("profile", frozenset())
        if kind == "profile":
            return [renderer.profile(row, additional) for row in page.rows]
        return [renderer.profile(key & 0xFFFFFFFF, additional, joined=key >> 32) for key in page.rows]
    return [renderer.small(row) for row in page.rows]


def single(
    state: SimulatorState, rule: EndpointRule, query: Query, rid: str, renderer: Renderer
) -> dict[str, Any]:
    row = state.store.get(rule.resource_type, rid)
    if row is None:
        raise ApiError(404, "not_found", f"A {rule.resource_type} with id {rid} does not exist.")
    extra = None
    if "profile_count" in query.additional.get(rule.resource_type, frozenset()):
        extra = {"profile_count": len(state.store.members(rule.resource_type, rid))}
    return renderer.small(row, extra)


async def handle_api(request: web.Request) -> web.StreamResponse:
    """Serve one API request; a bug in the simulator answers 500 in Klaviyo's error shape."""
    try:
        return await serve_api(request)
    except web.HTTPException:
        raise
    except Exception:
        LOG.exception("simulator error on %s %s", request.method, request.path)  # path only, no headers
        state = request.app[APP_KEY_STATE]
        err = ApiError(500, "error", "A server error occurred.", title="A server error occurred.")
        return await _error(state, request, None, err)


async def serve_api(request: web.Request) -> web.StreamResponse:
    state = request.app[APP_KEY_STATE]
    path = request.path
    found = [(m, r) for m, r in ((p.match(path), r) for p, r in state.routes) if m is not None]
    if not found:
        missing = ApiError(404, "not_found", f"The path {path} was not found.")
        return await _error(state, request, None, missing)
    matched, rule = found[0]
    if request.method not in ("GET", "HEAD"):
        err = ApiError(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        return await _error(state, request, None, err, {"Allow": "GET, HEAD"})
    route = route_info(request, rule)
    try:
        check_auth(state, request, rule)
        check_revision(request)
    except ApiError as err:
        return await _error(state, request, route, err)
    early = await state.controls.before(request, route)
    if early is not None:
        return early
    rid = matched.groupdict().get("id")
    collection = rid is None or rule.path in PARENT_TYPES
    try:
        query = parse_query(request, rule, collection)
        base = f"{request.scheme}://{request.host}"
        renderer = Renderer(state.store, base, query.fields, query.includes)
        if collection:
            if rid is not None and state.store.get(PARENT_TYPES[rule.path], rid) is None:
                raise ApiError(404, "not_found", f"A {PARENT_TYPES[rule.path]} with id {rid} does not exist.")
            page, next_cursor, prev_cursor = fetch_page(state, rule, query, rid)
            data: Any = render_rows(renderer, rule, page, query)
            body: dict[str, Any] = {"data": data, "links": _links(request, base, next_cursor, prev_cursor)}
            records = len(page.rows)
        else:
            data = single(state, rule, query, str(rid), renderer)
            body = {"data": data, "links": {"self": f"{base}{request.path_qs}"}}
            next_cursor, records = None, 1
    except QueryError as err:
        return await _error(state, request, route, ApiError(400, "invalid", err.detail, err.parameter))
    except ApiError as err:
        return await _error(state, request, route, err)
    if "include" in request.query:
        body["included"] = list(renderer.included.values())
    body["meta"] = _meta(next_cursor is not None)
    return await state.controls.respond(request, route, orjson.dumps(body), records=records)


async def _error(
    state: SimulatorState,
    request: web.Request,
    route: RouteInfo | None,
    err: ApiError,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    return await state.controls.respond(
        request, route, error_body(err), records=0, status=err.status, headers=headers
    )


async def handle_advance(request: web.Request) -> web.Response:
    state = request.app[APP_KEY_STATE]
    try:
        changes = await request.json(loads=orjson.loads) if request.can_read_body else {}
    except orjson.JSONDecodeError:
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    if not isinstance(changes, dict):
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    try:
        result = state.store.advance(changes)
    except ValueError as err:
        return web.json_response({"error": str(err)}, status=400)
    return web.json_response(result, dumps=lambda v: orjson.dumps(v).decode())


def build_app(
    store: Store, controls: Controls, keys: dict[str, frozenset[str] | None], secret: bytes
) -> web.Application:
    app = web.Application()
    app[APP_KEY_STATE] = SimulatorState(store, controls, keys, CursorCodec(secret), compile_routes())
    app.router.add_post("/__sim/advance", handle_advance)
    controls.add_admin_routes(app)
    app.router.add_route("*", "/{tail:.*}", handle_api)
    return app
