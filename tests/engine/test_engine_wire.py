"""The engine against a tiny JSON:API server on 127.0.0.1 (engine_fake_api.py), for what the
simulator cannot serve: a hand-made data set with edge-case records (suppressions, a record
without its cursor), a `links.next` that loops or points to another host, a JSON body without
`data`, and the request headers as sent. Status sequences and broken bodies the simulator's fault
controls can script are tested against the simulator (test_engine_simulator.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from engine_fake_api import FakeApi

from kit.sink import CollectingSink
from kit.tiny_api import serve
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamOutcome, StreamSelection, StreamStatus
from klaviyo_source.errors import AccessError, ConfigError, MalformedResponseError
from klaviyo_source.http.client import KlaviyoClient
from klaviyo_source.http.ratelimit import Limits, RateLimiters

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.isoformat()


def _resource(kind: str, i: int, field: str, when: datetime, **attributes: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "id": f"{kind}{i}",
        "attributes": {field: _iso(when), **attributes},
        "links": {"self": "x"},
    }


def dataset() -> FakeApi:
    events = []
    for i in range(2500):
        event = _resource("event", i, "datetime", BASE + timedelta(minutes=53 * i), timestamp=0)
        event["relationships"] = {"metric": {"data": {"type": "metric", "id": "m1"}}}
        events.append(event)
    profiles = []
    for i in range(300):
        marketing = (
            {"suppression": [{"reason": "UNSUBSCRIBE", "timestamp": _iso(BASE)}]} if i % 7 == 0 else {}
        )
        profiles.append(
            _resource(
                "profile",
                i,
                "updated",
                BASE + timedelta(hours=5 * i),
                subscriptions={"email": {"marketing": marketing}},
            )
        )
    campaigns = []
    for i in range(30):
        channel = ("email", "sms", "mobile_push")[i % 3]
        campaigns.append(
            _resource(
                "campaign", i, "updated_at", BASE + timedelta(days=i), channel=channel, archived=i % 2 == 0
            )
        )
    flows = [
        _resource("flow", i, "updated", BASE + timedelta(days=i), archived=i % 4 == 0) for i in range(12)
    ]
    lists = [_resource("list", i, "updated", BASE + timedelta(days=3 * i), name=f"L{i}") for i in range(25)]
    metrics = [_resource("metric", i, "updated", BASE + timedelta(days=i), name=f"M{i}") for i in range(15)]
    templates = [
        _resource("template", i, "updated", BASE + timedelta(days=i), name=f"T{i}") for i in range(23)
    ]
    api = FakeApi(
        lists={
            "/api/events": events,
            "/api/profiles": profiles,
            "/api/campaigns": campaigns,
            "/api/flows": flows,
            "/api/lists": lists,
            "/api/metrics": metrics,
            "/api/templates": templates,
        }
    )
    for i, lst in enumerate(lists):
        api.singles[f"/api/lists/list{i}"] = {
            "data": {**lst, "attributes": {**lst["attributes"], "profile_count": i}}
        }
    for i in range(30):
        if i != 4:  # campaign4 has no estimation: 404
            api.singles[f"/api/campaign-recipient-estimations/campaign{i}"] = {
                "data": {
                    "type": "campaign-recipient-estimation",
                    "id": f"campaign{i}",
                    "attributes": {"estimated_recipient_count": 10 * i},
                }
            }
    return api


def config(api: FakeApi, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(
        api_key="pk_secret_key_123",
        base_url=api.base_url,
        backoff_base=0.01,
        max_retries=2,
        max_rate_limit_wait=5.0,
    )
    values.update(overrides)
    return Config(**values)


def run(api: FakeApi, body: Callable[[FakeApi], Awaitable[None]]) -> None:
    with serve({"/{tail:.*}": api.handle}) as base_url:
        api.base_url = base_url
        asyncio.run(body(api))


ALL = [
    "profiles", "global_exclusions", "events", "events_detailed", "email_templates", "metrics",
    "lists", "lists_detailed", "campaigns", "campaigns_detailed", "flows",
]  # fmt: skip


def _read(
    api: FakeApi, names: list[str], states: dict[str, Any] | None = None, **overrides: Any
) -> tuple[CollectingSink, list[StreamOutcome]]:
    sink = CollectingSink()
    outcomes: list[StreamOutcome] = []

    async def body(api: FakeApi) -> None:
        fast = RateLimiters(override=Limits(1000, 100_000))  # pacing is tested against the simulator
        selections = [StreamSelection(n) for n in names]
        outcomes.extend(await read(config(api, **overrides), selections, states or {}, sink, limiters=fast))

    run(api, body)
    return sink, outcomes


def test_every_stream_full_sync_matches_the_data() -> None:
    api = dataset()
    sink, outcomes = _read(api, ALL, num_workers=4)
    assert [o.status for o in outcomes] == [StreamStatus.COMPLETE] * len(ALL)
    counts = {n: len(sink.records_of(n)) for n in ALL}
    assert counts == {
        "profiles": 300, "global_exclusions": 43, "events": 2500, "events_detailed": 2500,
        "email_templates": 23, "metrics": 15, "lists": 25, "lists_detailed": 25,
        "campaigns": 30, "campaigns_detailed": 30, "flows": 12,
    }  # fmt: skip
    for name in ALL:
        ids = [r["id"] for r in sink.records_of(name)]
        assert len(ids) == len(set(ids)), name
        assert sink.statuses_of(name)[0][0] is StreamStatus.STARTED
        assert sink.statuses_of(name)[-1][0] is StreamStatus.COMPLETE
    event = sink.records_of("events")[0]
    assert event["datetime"] == event["attributes"]["datetime"]
    detailed = sink.records_of("events_detailed")[0]
    assert detailed["relationships"]["metric"]["data"]["id"] == "m1"
    assert (
        "suppressions"
        in sink.records_of("global_exclusions")[0]["attributes"]["subscriptions"]["email"]["marketing"]
    )
    by_id = {r["id"]: r for r in sink.records_of("campaigns_detailed")}
    assert by_id["campaign4"]["estimated_recipient_count"] == 0  # 404 ignored
    assert by_id["campaign5"]["estimated_recipient_count"] == 50
    assert by_id["campaign5"]["attributes"]["channel"] == "mobile_push"
    assert {r["attributes"]["profile_count"] for r in sink.records_of("lists_detailed")} == set(range(25))
    # shared fetches: one listing scan feeds both members
    event_pages = [u for u in api.requests if u.startswith("/api/events")]
    assert len(event_pages) <= 2500 // 1000 + 8
    assert outcomes[2].stats.partitions_done == outcomes[2].stats.partitions_total >= 1
    last_events_state = sink.states_of("events")[-1]
    assert last_events_state == {"datetime": sink.records_of("events")[-1]["datetime"]} or last_events_state[
        "datetime"
    ] >= max(r["datetime"] for r in sink.records_of("events"))
    campaigns_state = sink.states_of("campaigns")[-1]
    assert len(campaigns_state["states"]) == 6 and campaigns_state["use_global_cursor"] is False


def test_state_follows_records_and_never_decreases() -> None:
    api = dataset()
    sink, _ = _read(api, ["events", "profiles"], num_workers=3)
    for stream, field in (("events", "datetime"), ("profiles", "updated")):
        emitted: list[str] = []
        previous = ""
        for kind, name, value in sink.calls:
            if name != stream:
                continue
            if kind == "records":
                emitted.extend(r[field] for r in value)
            if kind == "state":
                assert value[field] >= previous
                previous = value[field]
        assert previous >= max(emitted)


def test_incremental_reads_only_from_the_state_and_future_state_makes_no_request() -> None:
    api = dataset()
    cut = BASE + timedelta(minutes=53 * 2000)
    sink, _ = _read(api, ["events"], {"events": {"datetime": _iso(cut)}}, late_events_hours=0)
    records = sink.records_of("events")
    assert len(records) == 500 and min(r["datetime"] for r in records) == _iso(cut)  # inclusive
    # the default trailing re-scan (168 h) starts 7 days earlier: 190 events at 53 min apart
    sink, _ = _read(api, ["events"], {"events": {"datetime": _iso(cut)}})
    records = sink.records_of("events")
    assert len(records) == 690 and min(r["datetime"] for r in records) == _iso(
        cut - timedelta(minutes=53 * 190)
    )
    assert sink.states_of("events")[-1]["datetime"] >= _iso(cut)  # never moved back
    api.requests.clear()
    future = {"datetime": "2099-01-01T00:00:00+0000"}
    sink, outcomes = _read(api, ["events"], {"events": future})
    assert api.requests == [] and sink.records_of("events") == []
    assert sink.states_of("events") == [{"datetime": "2099-01-01T00:00:00+00:00"}]
    assert outcomes[0].status is StreamStatus.COMPLETE


def test_parallel_windows_give_the_same_set_as_one_worker() -> None:
    one, _ = _read(dataset(), ["events", "profiles"], num_workers=1)
    many, _ = _read(dataset(), ["events", "profiles"], num_workers=8)
    for name in ("events", "profiles"):
        assert sorted(r["id"] for r in one.records_of(name)) == sorted(r["id"] for r in many.records_of(name))


def test_a_body_without_data_is_retried_then_named() -> None:
    api = dataset()
    api.script["/api/metrics"] = [(200, b'{"nodata": 1}', {})] * 10
    _, outcomes = _read(api, ["metrics"])
    assert isinstance(outcomes[0].error, MalformedResponseError)
    assert "/api/metrics" in str(outcomes[0].error) and "data" in str(outcomes[0].error)


def test_repeating_links_next_fails_the_stream_clearly() -> None:
    api = dataset()
    loop = {"data": [api.lists["/api/metrics"][0]], "links": {"next": None}}

    def hook(request: Any) -> Any:
        from aiohttp import web

        if request.path == "/api/metrics":
            loop["links"]["next"] = f"{api.base_url}/api/metrics?page%5Bcursor%5D=same"  # type: ignore[index]
            return web.Response(body=orjson.dumps(loop), content_type="application/json")
        return None

    api.hook = hook
    _, outcomes = _read(api, ["metrics"])
    assert outcomes[0].status is StreamStatus.INCOMPLETE and "loop" in str(outcomes[0].error).lower()


def test_unknown_stream_raises_and_a_corrupt_state_fails_only_its_stream() -> None:
    api = dataset()
    with pytest.raises(ConfigError, match="nope"):
        _read(api, ["nope"])
    sink, outcomes = _read(api, ["events", "metrics"], {"events": {"datetime": "garbage"}})
    events, metrics = outcomes
    assert events.status is StreamStatus.INCOMPLETE and isinstance(events.error, ConfigError)
    assert "Invalid state for stream 'events'" in str(events.error)
    assert "klaviyo-source state reset --streams events" in str(events.error)
    assert sink.records_of("events") == [] and sink.states_of("events") == []
    assert metrics.status is StreamStatus.COMPLETE and sink.records_of("metrics")


def test_client_401_message_and_headers() -> None:
    api = dataset()
    seen: dict[str, str] = {}

    def hook(request: Any) -> Any:
        from aiohttp import web

        seen.update(request.headers)
        return web.json_response(
            {"errors": [{"detail": "Incorrect authentication credentials."}]}, status=401
        )

    api.hook = hook

    async def body(api: FakeApi) -> None:
        async with KlaviyoClient(config(api)) as client:
            with pytest.raises(AccessError) as caught:
                await client.get_json("/api/metrics")
        assert (
            "401" in caught.value.message and "Incorrect authentication credentials." in caught.value.message
        )
        assert "pk_secret_key_123" not in caught.value.message + caught.value.internal_message

    run(api, body)
    assert seen["revision"] == "2026-07-15"
    assert seen["Authorization"] == "Klaviyo-API-Key pk_secret_key_123"
    assert seen["Accept"] == "application/vnd.api+json"


def test_record_without_its_cursor_is_a_malformed_response() -> None:
    api = dataset()
    api.lists["/api/metrics"][3]["attributes"].pop("updated")
    _, outcomes = _read(api, ["metrics", "flows"])
    assert isinstance(outcomes[0].error, MalformedResponseError) and "attributes.updated" in str(
        outcomes[0].error
    )
    assert outcomes[1].status is StreamStatus.COMPLETE


def test_links_to_another_host_are_followed_through_the_configured_base_url() -> None:
    api = dataset()

    def hook(request: Any) -> Any:
        from aiohttp import web

        if request.path == "/api/metrics" and "page[cursor]" not in request.query:
            body = {
                "data": api.lists["/api/metrics"][:5],
                "links": {"next": "https://a.klaviyo.com/api/metrics?page%5Bcursor%5D=5&page%5Bsize%5D=10"},
            }
            return web.Response(body=orjson.dumps(body), content_type="application/json")
        return None

    api.hook = hook
    sink, outcomes = _read(api, ["metrics"])
    assert outcomes[0].status is StreamStatus.COMPLETE
    assert len(sink.records_of("metrics")) == 15
