"""Real-socket HTTP helpers for the simulator tests (aiohttp against 127.0.0.1)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from klaviyo_simulator import Simulator
from klaviyo_source.revision import REVISION


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def fetch(
    sim: Simulator,
    path_or_url: str,
    params: dict[str, str] | None = None,
    *,
    key: str | None = None,
    revision: str | None = REVISION,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    json: Any = None,
) -> Reply:
    """One real HTTP request to the simulator."""
    url = path_or_url if path_or_url.startswith("http") else sim.base_url + path_or_url
    sent: dict[str, str] = {}
    if key != "":
        sent["Authorization"] = f"Klaviyo-API-Key {key or sim.api_key}"
    if revision is not None:
        sent["revision"] = revision
    sent.update(headers or {})

    async def go() -> Reply:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, params=params, headers=sent, json=json) as response,
        ):
            raw = await response.read()
            return Reply(response.status, orjson.loads(raw) if raw else {}, dict(response.headers))

    return asyncio.run(go())


def fetch_all(sim: Simulator, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every record of a collection, following links.next."""
    reply = fetch(sim, path, params)
    assert reply.status == 200, reply.body
    out = list(reply.body["data"])
    while reply.body["links"].get("next"):
        reply = fetch(sim, reply.body["links"]["next"])
        assert reply.status == 200, reply.body
        out += reply.body["data"]
    return out
