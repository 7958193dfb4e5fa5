"""Which streams a key can read, found cheaply: one GET per distinct scope the streams need.

Klaviyo has no endpoint that lists a key's scopes, so each scope is tried on one listing
endpoint that needs it (the smallest page the spec allows, plus the filter the endpoint
requires); a 403 there means the key lacks that endpoint's scopes. Detail endpoints (`{id}`
paths) are not requested: their scopes are the listings' (checked in tests/http).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from klaviyo_source.endpoints import Endpoint, endpoint_for, scopes_for
from klaviyo_source.errors import ScopeError
from klaviyo_source.http.client import KlaviyoClient
from klaviyo_source.streams.table import endpoint_paths

PROBE_ID = "klaviyo-source-scope-probe"


def probe_params(endpoint: Endpoint) -> dict[str, str]:
    """The cheapest valid query for a listing: the smallest page, the required filter if any."""
    params: dict[str, str] = {}
    if endpoint.page_size is not None:
        params["page[size]"] = str(endpoint.page_size.minimum)
    if endpoint.filter_required:
        # A required parent (coupon codes: "a coupon/coupons or a profile/profiles must be
        # provided") takes an id no account has, answered with no data; else an enum's first value.
        parents = [n for n, r in endpoint.filters.items() if n.endswith(".id") and "any" in r.lists]
        parent = parents[0] if parents else None
        if parent is not None:
            params["filter"] = f'any({parent},["{PROBE_ID}"])'
        else:
            name, rule = next((n, r) for n, r in endpoint.filters.items() if r.enum and "equals" in r.single)
            params["filter"] = f"equals({name},'{rule.enum[0]}')"
    return params


def probes_for(streams: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Listing path to request -> the scopes its answer tells about; one path per needed scope."""
    probes: dict[str, tuple[str, ...]] = {}
    covered: set[str] = set()
    for stream in streams:
        for path in endpoint_paths(stream):
            scopes = scopes_for(path)
            if "{" not in path and not set(scopes) <= covered:
                probes[path] = scopes
                covered.update(scopes)
    return probes


async def _granted(client: KlaviyoClient, path: str) -> bool:
    """False when the key lacks the path's scope (403); other errors are raised."""
    endpoint = endpoint_for(path)
    try:
        await client.get_json(path, probe_params(endpoint) if endpoint is not None else None)
    except ScopeError:
        return False
    return True


async def missing_scopes(client: KlaviyoClient, streams: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Stream -> the scopes it needs that the key lacks, for each stream it cannot read. The
    first error other than a missing scope (in probe order) is raised."""
    probes = probes_for(streams)
    answers = await asyncio.gather(*(_granted(client, path) for path in probes), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    verdicts = list(zip(probes.values(), answers, strict=True))
    # a 403 on a path needing two scopes (push-tokens: profiles + push-tokens) blames only the
    # scopes no granted probe vouches for
    granted_scopes = {scope for scopes, granted in verdicts if granted for scope in scopes}
    missing = {scope for scopes, granted in verdicts if not granted for scope in scopes} - granted_scopes
    needs = {stream: {s for path in endpoint_paths(stream) for s in scopes_for(path)} for stream in streams}
    return {stream: tuple(sorted(needs[stream] & missing)) for stream in streams if needs[stream] & missing}
