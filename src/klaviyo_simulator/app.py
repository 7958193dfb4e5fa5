"""The simulator's aiohttp application: routing, auth, revision, query validation, JSON:API envelope.

Per API request, in order: path -> 404, verb -> 405, `Authorization` -> 401, scopes -> 403,
`revision` -> 400, `controls.before` (429 / scripted faults), query validation -> 400,
unknown id -> 404, then the page goes out through `controls.respond`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from aiohttp import web

from klaviyo_simulator import quirks
from klaviyo_simulator.controls import Controls, RouteInfo
from klaviyo_simulator.drift import Drift
from klaviyo_simulator.errors import ApiError
from klaviyo_simulator.model import Page
from klaviyo_simulator.query import (
    Condition,
    CursorCodec,
    Listing,
    Query,
    QueryError,
    parse_filter,
    parse_list,
    parse_page_size,
    parse_sort,
)
from klaviyo_simulator.render import SINGULAR, Renderer
from klaviyo_simulator.resources import Resource
from klaviyo_simulator.resources.reports import Reports, report_paths
from klaviyo_simulator.spec import EndpointRule, endpoint_rules
from klaviyo_simulator.store import Store
from klaviyo_source.endpoints import Endpoint

_REVISION_FORMAT = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(\.pre)?$")
METRICS_PAGE_SIZE = 200  # GET /api/metrics has no page[size] parameter: fixed 200 per page
APP_KEY_STATE: web.AppKey[SimulatorState] = web.AppKey("simulator_state")
LOG = logging.getLogger("klaviyo_simulator")


@dataclass(frozen=True)
class Route:
    """A served path template: its rule, and the parent type of a nested collection."""

    pattern: re.Pattern[str]
    rule: EndpointRule
    parent_type: str | None  # `/api/lists/{id}/profiles` -> "list"; None for top-level paths
    identifiers: bool = False  # `/api/lists/{id}/relationships/profiles`: resource identifiers only


@dataclass
class SimulatorState:
    """What the request handlers share."""

    store: Store
    controls: Controls
    keys: dict[str, frozenset[str] | None]  # key -> scopes (None = every scope)
    codec: CursorCodec
    routes: list[Route] = field(default_factory=list)
    reports: Reports | None = None
    drift: Drift = field(default_factory=Drift)  # fields whose type changes (POST /__sim/drift)


def compile_routes() -> list[Route]:
    routes = []
    for template, rule in endpoint_rules().items():
        pattern = "^" + re.escape(template).replace(re.escape("{id}"), "(?P<id>[^/]+)") + "/?$"
        parts = template.split("/")  # "", "api", parent plural, "{id}", ["relationships",] child plural
        identifiers = len(parts) == 6 and parts[4] == "relationships"
        nested = (len(parts) == 5 or identifiers) and parts[3] == "{id}"
        parent = SINGULAR[parts[2]] if nested else None
        routes.append(Route(re.compile(pattern), rule, parent, identifiers))
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


def check_auth(state: SimulatorState, request: web.Request, rule: Endpoint) -> None:
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


def parse_query(request: web.Request, rule: EndpointRule, kind: Resource, collection: bool) -> Query:
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
    if not collection:
        for name in ("filter", "sort", "page[size]", "page[cursor]"):
            if name in params:
                raise QueryError(name, f"'{name}' is not supported by this endpoint.")
    sort = parse_sort(params.get("sort"), rule) if "sort" in params else None
    if not rule.has_cursor and "page[cursor]" in params:
        raise QueryError("page[cursor]", "Pagination is not supported by this endpoint.")
    size = parse_page_size(params.get("page[size]"), rule, METRICS_PAGE_SIZE)
    query = Query(conditions, sort, size, params.get("page[cursor]"), fields, includes, additional)
    kind.check(rule.resource_type, query, collection)
    return query


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


def fetch_page(
    state: SimulatorState, route: Route, kind: Resource, query: Query, parent: Any
) -> tuple[Page, str | None, str | None]:
    """The requested page and its next/prev cursors."""
    rule = route.rule
    sort_field, desc = query.sort or (kind.default_sort(rule.resource_type, parent is not None), False)
    sort_text = ("-" if desc else "") + sort_field
    after: Any = None
    backwards = False
    if query.cursor is not None:
        decoded = state.codec.decode(query.cursor, sort_text)
        if not isinstance(decoded, dict) or decoded.get("d") not in ("next", "prev") or "k" not in decoded:
            raise QueryError("page[cursor]", "Invalid cursor provided.")
        backwards, after = decoded["d"] == "prev", decoded["k"]
    size = query.page_size if rule.has_cursor else None
    listing = Listing(query.conditions, sort_field, desc != backwards, after, size, parent)
    page = kind.page(rule.resource_type, listing)

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
    if path.rstrip("/") in report_paths():
        return await serve_report(state, request, path.rstrip("/"))
    found = [(m, r) for m, r in ((r.pattern.match(path), r) for r in state.routes) if m is not None]
    if not found:
        missing = ApiError(404, "not_found", f"The path {path} was not found.")
        return await _error(state, request, None, missing)
    matched, route = found[0]
    rule = route.rule
    if request.method not in ("GET", "HEAD"):
        err = ApiError(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        return await _error(state, request, None, err, {"Allow": "GET, HEAD"})
    info = route_info(request, rule)
    try:
        check_auth(state, request, rule)
        check_revision(request)
    except ApiError as err:
        return await _error(state, request, info, err)
    early = await state.controls.before(request, info)
    if early is not None:
        return early
    rid = matched.groupdict().get("id")
    collection = rid is None or route.parent_type is not None
    kind = state.store.kind(rule.resource_type)
    options = state.controls.options
    try:
        query = parse_query(request, rule, kind, collection)
        query.conditions = quirks.conditions(query.conditions, options)
        base = f"{request.scheme}://{request.host}"
        renderer = Renderer(state.store, base, query.fields, query.includes)
        if collection:
            parent = None
            if route.parent_type is not None:
                parent = state.store.kind(route.parent_type).find(route.parent_type, str(rid))
                if parent is None:
                    raise ApiError(404, "not_found", f"A {route.parent_type} with id {rid} does not exist.")
            page, next_cursor, prev_cursor = fetch_page(state, route, kind, query, parent)
            quirks.reorder(rule.resource_type, query, page, options)
            data: Any = kind.render(rule.resource_type, page, renderer, query)
            data = state.drift.apply(state.store, rule.resource_type, page.rows, data)
            if route.identifiers:
                rendered = orjson.loads(orjson.dumps(data)) if isinstance(data, orjson.Fragment) else data
                data = [{"type": item["type"], "id": item["id"]} for item in rendered]
            body: dict[str, Any] = {"data": data, "links": _links(request, base, next_cursor, prev_cursor)}
            records = len(page.rows)
        else:
            item = kind.find(rule.resource_type, str(rid))
            if item is None:
                raise ApiError(404, "not_found", f"A {rule.resource_type} with id {rid} does not exist.")
            data = kind.render_one(rule.resource_type, item, renderer, query)
            data = state.drift.apply_one(state.store, rule.resource_type, item, data)
            body = {"data": data, "links": {"self": f"{base}{request.path_qs}"}}
            next_cursor, records = None, 1
    except QueryError as err:
        return await _error(state, request, info, ApiError(400, "invalid", err.detail, err.parameter))
    except ApiError as err:
        return await _error(state, request, info, err)
    if "include" in request.query:
        body["included"] = list(renderer.included.values())
    body["meta"] = _meta(next_cursor is not None)
    payload = quirks.body(orjson.dumps(body), options)
    return await state.controls.respond(request, info, payload, records=records)


async def serve_report(state: SimulatorState, request: web.Request, path: str) -> web.StreamResponse:
    """A POST report or aggregate query (resources/reports.py): auth, scopes, revision, the
    rate tiers and the daily quota, then the body's validation and the numbers."""
    endpoint = report_paths()[path]
    if request.method != "POST":
        err = ApiError(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        return await _error(state, request, None, err, {"Allow": "POST"})
    info = RouteInfo(
        endpoint.operation,
        request.path,
        endpoint.operation,
        endpoint.burst,
        endpoint.steady,
        daily=endpoint.daily,
    )
    try:
        check_auth(state, request, endpoint)
        check_revision(request)
    except ApiError as err:
        return await _error(state, request, info, err)
    early = await state.controls.before(request, info)
    if early is not None:
        return early
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        malformed = ApiError(
            400, "parse_error", "The request body is not valid JSON.", title="Malformed request."
        )
        return await _error(state, request, info, malformed)
    if state.reports is None:
        state.reports = Reports(state.store)
    try:
        document = state.reports.answer(path, body, f"{request.scheme}://{request.host}")
    except ApiError as err:
        return await _error(state, request, info, err)
    return await state.controls.respond(request, info, orjson.dumps(document), records=1)


async def _error(
    state: SimulatorState,
    request: web.Request,
    route: RouteInfo | None,
    err: ApiError,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    return await state.controls.respond(
        request, route, err.body(), records=0, status=err.status, headers=headers
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


async def handle_change(request: web.Request) -> web.Response:
    """`POST /__sim/delete|unsuppress|remove-members` (Store.change)."""
    state = request.app[APP_KEY_STATE]
    try:
        payload = await request.json(loads=orjson.loads) if request.can_read_body else {}
    except orjson.JSONDecodeError:
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    if not isinstance(payload, dict):
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    try:
        result = state.store.change(request.match_info["action"], payload)
    except ValueError as err:
        return web.json_response({"error": str(err)}, status=400)
    return web.json_response(result, dumps=lambda v: orjson.dumps(v).decode())


def build_app(
    store: Store, controls: Controls, keys: dict[str, frozenset[str] | None], secret: bytes
) -> web.Application:
    app = web.Application()
    state = SimulatorState(store, controls, keys, CursorCodec(secret), compile_routes())
    app[APP_KEY_STATE] = state
    app.router.add_post("/__sim/advance", handle_advance)
    state.drift.add_admin_routes(app, [t for kind in store.kinds for t in kind.types])
    for action in Store.CHANGES:
        app.router.add_post(f"/__sim/{{action:{action}}}", handle_change)
    controls.add_admin_routes(app)
    app.router.add_route("*", "/{tail:.*}", handle_api)
    return app
