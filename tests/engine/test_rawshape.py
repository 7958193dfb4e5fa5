# ruff: noqa: E501
"""The pre-serialized fast path gives byte for byte the records of the dict path: over a socket
for every stream of the events and profiles listings (and the passthrough listings beside them),
and record by record for data shaped in ways the simulator never sends."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Sequence
from typing import Any

import orjson

from kit.sim import run_against_simulator, simulator
from kit.sink import CollectingSink
from klaviyo_simulator.server import Simulator
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus
from klaviyo_source.engine.rawpage import page_decoder
from klaviyo_source.errors import MalformedResponseError
from klaviyo_source.streams import records as shape
from klaviyo_source.streams.rawshape import RawSlice
from klaviyo_source.streams.table import STREAMS_BY_NAME

FAST = [
    "events", "events_detailed", "profiles", "global_exclusions", "profile_subscriptions",
    "list_exclusions", "email_templates", "forms", "images",
]  # fmt: skip
SIZES = {"events": 2500, "profiles": 450, "templates": 25, "lists": 3}


class RawSink(CollectingSink):
    async def raw_records(self, stream: str, records: Sequence[Any]) -> None:
        await self.records(stream, records)


def config(sim: Simulator, **overrides: Any) -> Config:
    return Config(api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, **overrides)


def timeless(state: dict[str, Any]) -> dict[str, Any]:
    """A state without the time of its read (the deletion check's `_reconcile.at`)."""
    reconcile = state.get("_reconcile")
    if not isinstance(reconcile, dict):
        return state
    return {**state, "_reconcile": {k: v for k, v in reconcile.items() if k != "at"}}


def dumped(sink: CollectingSink, stream: str) -> list[bytes]:
    return sorted(orjson.dumps(r) for r in sink.records_of(stream))


def test_fast_path_records_and_states_are_the_dict_paths_byte_for_byte() -> None:
    async def body(sim: Simulator) -> None:
        selections = [StreamSelection(n) for n in FAST]
        plain, raw = CollectingSink(), RawSink()
        for sink in (plain, raw):
            outcomes = await read(config(sim, num_workers=4), selections, {}, sink)
            assert all(o.status is StreamStatus.COMPLETE for o in outcomes)
        for name in FAST:
            records = raw.records_of(name)
            assert records, name
            # global_exclusions starts at the epoch: alone on its suppression listing (dicts)
            kind = dict if name == "global_exclusions" else orjson.Fragment
            assert all(isinstance(r, kind) for r in records), name
            assert all(isinstance(r, dict) for r in plain.records_of(name)), name
            assert dumped(raw, name) == dumped(plain, name), name
            assert timeless(raw.states_of(name)[-1]) == timeless(plain.states_of(name)[-1]), name
        # incremental from mid states: each member starts elsewhere in the shared pages
        states = {}
        for name in ("events", "profiles", "list_exclusions"):
            cursor = STREAMS_BY_NAME[name].cursor_field
            assert cursor is not None
            values = sorted(orjson.loads(r)[cursor] for r in dumped(plain, name))
            states[name] = {cursor: values[len(values) // 2]}
        # global_exclusions rides on the profiles scan when it starts no earlier than profiles
        states["global_exclusions"] = {"updated": values[-1]}
        again_plain, again_raw = CollectingSink(), RawSink()
        for sink in (again_plain, again_raw):
            await read(config(sim), selections, states, sink)
        for name in FAST:
            assert dumped(again_raw, name) == dumped(again_plain, name), name
        # riding on the profiles pages, global_exclusions takes the fast path
        assert all(isinstance(r, orjson.Fragment) for r in again_raw.records_of("global_exclusions"))
        assert len(again_raw.records_of("events")) < len(raw.records_of("events"))

    run_against_simulator(body, seed=42, sizes=SIZES)


def page(
    records: list[dict[str, Any]], cursor: str, reads: Any, included: list[dict[str, Any]] | None = None
) -> RawSlice:
    """The records as the fast path gets them: a page split by the engine's page decoder."""
    body = orjson.dumps({"data": records, "included": included or []})
    split = page_decoder(("attributes", cursor), reads)(body)
    return RawSlice(split.records, split.ids, split.cursors, cursor, split.included, split.parts)


def dict_way(
    records: list[dict[str, Any]], cursor: str, shaper: shape.Shaper, included: Any = None
) -> list[bytes]:
    copies = [orjson.loads(orjson.dumps(r)) | {cursor: r["attributes"][cursor]} for r in records]
    return [orjson.dumps(r) for r in shaper(copies, shape.Page({"included": included or []}))]


def fast_way(stream: str, records: list[dict[str, Any]], cursor: str, included: Any = None) -> list[bytes]:
    row = STREAMS_BY_NAME[stream]
    assert row.raw_shape is not None
    fragments, keys = row.raw_shape(page(records, cursor, row.raw_reads, included))
    assert len(keys) == len(fragments)
    assert all(
        k[c] == orjson.loads(orjson.dumps(f))[c]
        for k, f in zip(keys, fragments, strict=True)
        for c in row.primary_key
    )
    return [orjson.dumps(f) for f in fragments]


T = "2025-01-01T00:00:00+00:00"
PROFILES: list[dict[str, Any]] = [
    {"type": "profile", "id": "a", "attributes": {"updated": T, "location": {"region": 7}}},
    {"type": "profile", "id": "b", "attributes": {"updated": T, "location": {"region": -1.5, "zip": "1"}}},
    {"type": "profile", "id": "c", "attributes": {"updated": T, "location": None}},
    {"type": "profile", "id": "e", "attributes": {"updated": T, "location": {"region": "Ohio"}}},
    {"type": "profile", "id": "f", "attributes": {"updated": T}},
    {"type": "profile", "id": "g", "attributes": {"updated": T, "location": {"region": True}}},
    {
        "type": "profile",
        "id": "h",
        "attributes": {
            "updated": T,
            "subscriptions": {
                "email": {
                    "marketing": {
                        "can_receive_email_marketing": False,
                        "suppression": [{"reason": "HARD_BOUNCE", "timestamp": "2024-05-01T00:00:00+00:00"}],
                        "list_suppressions": [
                            {"list_id": "L1", "reason": "USER_SUPPRESSED", "timestamp": "2024-01-01T00:00:00+00:00"},
                            {"list_id": "L1", "reason": "HARD_BOUNCE", "timestamp": "2024-02-01T00:00:00+00:00"},
                            {"list_id": None},
                        ],
                    }
                },
                "sms": {"marketing": {"can_receive_sms_marketing": True, "consent": "SUBSCRIBED"}},
                "odd": [1, 2],
            },
        },
    },
    {"type": "profile", "id": "i", "attributes": {"updated": T, "subscriptions": None}},
    {"type": "profile", "id": "j", "attributes": {"updated": T, "subscriptions": {"email": []}}},
    {"type": "profile", "id": "k", "attributes": {"updated": T, "subscriptions": {"email": {"marketing": {"suppression": []}}}}},
    {"type": "profile", "id": "l", "attributes": {"updated": T, "subscriptions": {"email": {"marketing": {"suppression": {"timestamp": T}}}}}},
    {"type": "profile", "id": "m", "attributes": {"updated": T, "subscriptions": {"email": {"marketing": {"suppression": ""}}}}},
]  # fmt: skip


def test_profile_shapers_match_the_dict_shapers_on_odd_data() -> None:
    for stream in ("profiles", "global_exclusions", "profile_subscriptions", "list_exclusions"):
        dict_shaper = STREAMS_BY_NAME[stream].shape
        assert dict_shaper is not None
        assert fast_way(stream, PROFILES, "updated") == dict_way(PROFILES, "updated", dict_shaper), stream
    assert len(fast_way("global_exclusions", PROFILES, "updated")) == 2
    normalized = fast_way("profiles", PROFILES[:2], "updated")
    regions = [orjson.loads(r)["attributes"].get("location") for r in normalized]
    assert regions == [{"region": "7"}, {"region": "-1.5", "zip": "1"}]


def event(i: int, **extra: Any) -> dict[str, Any]:
    return {"type": "event", "id": f"e{i}", "attributes": {"datetime": T, "n": i}, **extra}


def rel(metric: str, attributions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "profile": {"data": {"type": "profile", "id": "p"}, "links": {"self": "x"}},
        "metric": {"data": {"type": "metric", "id": metric}},
        "attributions": {"data": attributions or []},
    }


EVENTS: list[dict[str, Any]] = [
    event(1, relationships=rel("M1"), links={"self": "u"}),
    event(2, relationships=rel("M2", [{"type": "attribution", "id": "A1"}])),
    event(3, relationships=rel("unknown")),
    event(4),  # no relationships
    {"relationships": rel("M1"), **event(5)},  # relationships first
    event(6, relationships=None),
    event(7, relationships=rel("M1"), links={"relationships": {"metric": 1}}),  # the key again, later
    {"type": "event", "id": "e8", "attributes": {"datetime": T, "relationships": rel("M2")}, "relationships": rel("M2")},
    event(9, relationships={"metric": None, "profile": {"data": {"type": "metric", "id": "M1"}}}),
    event(10, relationships={"metric": {"data": {"id": "M1", "type": "metric"}}, "x": {"data": None}, "y": {}}),
    event(11, relationships={"metric": {"data": {"type": "metric", "id": "M1", "meta": {"data": {"type": "metric", "id": "M2"}}}}}),
    event(12, relationships={"a": {"data": [{"type": "metric", "id": "M2"}, {"type": "profile", "id": "p"}, 3]}, "b": {"data": "M1"}}),
    event(13, relationships={"a": {"data": {"type": "met\"ric", "id": "M1"}}, "b": {"data": {"type": "metric", "id": "M1"}}}),
    event(14, relationships={"a": {"data": {"type": "metric", "id": "M1"}}, "b": {"data": {"type": "metric", "id": "M1"}}}),
    event(15, relationships=[]),
]  # fmt: skip
INCLUDED = [
    {"type": "metric", "id": "M1", "attributes": {"name": "Placed Order"}},
    {
        "type": "metric",
        "id": "M2",
        "attributes": {"name": "Opened Email"},
        "relationships": {"x": {"data": None}},
    },
    {"type": "attribution", "id": "A1", "attributes": {"send_time": T}},
]


def test_merge_included_matches_the_dict_shaper_on_odd_data() -> None:
    for included in (INCLUDED, []):
        expected = dict_way(EVENTS, "datetime", shape.merge_included_page, included)
        assert fast_way("events_detailed", EVENTS, "datetime", included) == expected
    merged = orjson.loads(fast_way("events_detailed", EVENTS[:1], "datetime", INCLUDED)[0])
    assert merged["relationships"]["metric"]["data"] == {"type": "metric", "id": "M1", "name": "Placed Order"}
    assert list(merged) == ["type", "id", "attributes", "relationships", "links", "datetime"]


def test_each_odd_event_among_plain_ones_matches_the_dict_shaper() -> None:
    """A page is merged in one pass when its relationships decode together: each odd record on
    a page of plain ones (and alone) still comes out as the dict shaper makes it."""
    plain = [event(20 + i, relationships=rel(("M1", "M2", "unknown")[i % 3])) for i in range(3)]
    for odd in EVENTS:
        for page in ([*plain, odd], [odd]):
            expected = dict_way(page, "datetime", shape.merge_included_page, INCLUDED)
            assert fast_way("events_detailed", page, "datetime", INCLUDED) == expected, odd


def drift(base_url: str, **rule: Any) -> None:
    request = urllib.request.Request(f"{base_url}/__sim/drift", data=json.dumps(rule).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def read_both(sim: Simulator, names: list[str]) -> tuple[CollectingSink, RawSink, list[Any], list[Any]]:
    plain, raw = CollectingSink(), RawSink()
    selections = [StreamSelection(n) for n in names]
    plain_outcomes = asyncio.run(read(config(sim, num_workers=4), selections, {}, plain).outcomes())
    raw_outcomes = asyncio.run(read(config(sim, num_workers=4), selections, {}, raw).outcomes())
    return plain, raw, plain_outcomes, raw_outcomes


PROFILE_STREAMS = ["profiles", "profile_subscriptions", "list_exclusions"]


def test_drifted_profiles_and_events_still_match_the_dict_path() -> None:
    with simulator(seed=42, sizes={"events": 1200, "profiles": 250}) as sim:
        drift(
            sim.base_url, resource="profile", field="attributes.location.region", to="number", from_record=40
        )
        drift(
            sim.base_url, resource="profile", field="attributes.subscriptions.sms", to="array", from_record=90
        )
        drift(sim.base_url, resource="event", field="relationships.attributions", to="null", from_record=300)
        names = [*PROFILE_STREAMS, "events", "events_detailed"]
        plain, raw, plain_outcomes, raw_outcomes = read_both(sim, names)
        assert all(o.status is StreamStatus.COMPLETE for o in plain_outcomes + raw_outcomes)
        for name in names:
            assert dumped(raw, name) == dumped(plain, name), name
        regions = {type(orjson.loads(r)["attributes"]["location"]["region"]) for r in dumped(raw, "profiles")}
        assert regions == {str}  # numbers cast, as the dict path does


def test_a_record_neither_path_can_read_fails_the_listing_on_both() -> None:
    with simulator(seed=42, sizes={"events": 100, "profiles": 150}) as sim:
        drift(sim.base_url, resource="profile", field="attributes.location", to="string", from_record=120)
        plain, raw, plain_outcomes, raw_outcomes = read_both(sim, PROFILE_STREAMS)
        assert all(isinstance(r, orjson.Fragment) for r in raw.records_of("profiles"))  # the fast path
        assert len(raw.records_of("profiles")) == len(plain.records_of("profiles"))
        for outcomes in (plain_outcomes, raw_outcomes):
            assert all(o.status is StreamStatus.INCOMPLETE for o in outcomes)
            assert all(isinstance(o.error, MalformedResponseError) for o in outcomes)
