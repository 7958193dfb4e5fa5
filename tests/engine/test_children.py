"""Per-parent streams against the simulator over a socket: segment_memberships (a child listing per
segment), segments_detailed (a profile_count fetch per changed segment), flow_actions (the flows
listing's include=flow-actions: no request per flow) and flow_messages (a child listing per flow
action changed since the state). Full and incremental reads against the ground truth, per-parent
resumption, request counts and schema validity; one simulator for the module."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import jsonschema

from kit.sim import sim_fixture
from kit.sink import CollectingSink
from kit.truth import expected, memberships, record_key
from klaviyo_simulator.server import Simulator
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus
from klaviyo_source.http.ratelimit import Limits, RateLimiters
from klaviyo_source.streams.schema import load_schema

CHILDREN = ["segment_memberships", "segments_detailed", "flow_actions", "flow_messages"]
SIZES = {"events": 100, "profiles": 300, "lists": 3, "segments": 6, "flows": 4, "campaigns": 3}


sim = sim_fixture(sizes=SIZES)  # one simulator (served from a thread) for the module's tests


def config(sim: Simulator, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(
        api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, max_retries=2
    )
    return Config(**(values | overrides))


def sync(
    sim: Simulator, names: list[str], states: dict[str, Any] | None = None, incremental: bool = True
) -> CollectingSink:
    sink = CollectingSink()
    selections = [StreamSelection(n, incremental=incremental) for n in names]
    fast = RateLimiters(override=Limits(1000, 100_000))  # pacing is tested against the simulator elsewhere
    outcomes = asyncio.run(
        read(config(sim, num_workers=4), selections, states or {}, sink, limiters=fast).outcomes()
    )
    assert [o.status for o in outcomes] == [StreamStatus.COMPLETE] * len(names), [o.error for o in outcomes]
    return sink


def keys(sink: CollectingSink, stream: str) -> list[str]:
    return [record_key(stream, r) for r in sink.records_of(stream)]


def iso(epoch_us: int) -> str:
    return datetime.fromtimestamp(epoch_us / 1_000_000, UTC).isoformat()


def requests(sim: Simulator) -> dict[str, int]:
    return dict(sim.controls.stats()["requests"])


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def test_full_read_equals_the_ground_truth_and_costs_the_minimum(sim: Simulator) -> None:
    store = sim.store
    truth = expected(store)
    groups = memberships(store, "segment")
    sizes = [sum(1 for g, _ in groups if g == s.id) for s in store.records("segment")]
    assert 0 in sizes and 1 in sizes and max(sizes) > 1  # empty, single-member and large segments
    before = requests(sim)
    for incremental in (False,):
        sink = sync(sim, CHILDREN, incremental=incremental)
        for stream in CHILDREN:
            got = keys(sink, stream)
            assert len(got) == len(set(got)), stream
            assert set(got) == set(truth[stream]), stream
            schema = load_schema(stream)
            for record in sink.records_of(stream):
                jsonschema.validate(record, schema)
                assert record[STREAM_CURSOR[stream]] is not None
    spent = delta(before, requests(sim))
    segments, actions, flows = store.records("segment"), store.records("flow-action"), store.records("flow")
    # every segment once per read; one profile_count per segment; no request per flow
    assert spent["get_profiles_for_segment"] == len(segments)
    assert spent["get_segment"] == len(segments)
    assert spent["get_flows"] <= 2 * (len(flows) // 50 + 1)
    # one child listing per flow action that can hold messages (the spec's send-* and experiment
    # actions; not time delays or splits), first syncs: no state
    senders = [a for a in actions if {"message", "main_action"} & set(a.attributes["definition"]["data"])]
    assert 0 < len(senders) < len(actions)
    assert spent["get_flow_action_messages"] == len(senders)
    assert "get_actions_for_flow" not in spent
    for record in sink.records_of("segments_detailed"):
        assert record["attributes"]["profile_count"] == sum(1 for g, _ in groups if g == record["id"])
    for record in sink.records_of("flow_actions"):
        assert record["flow_id"] == store.get("flow-action", record["id"]).related_ids("flow")[0]
    for record in sink.records_of("flow_messages"):
        assert (
            record["flow_action_id"] == store.get("flow-message", record["id"]).related_ids("flow-action")[0]
        )


STREAM_CURSOR = {
    "segment_memberships": "joined_group_at",
    "segments_detailed": "updated",
    "flow_actions": "updated",
    "flow_messages": "updated",
}


def test_incremental_after_advance_finds_new_and_changed_only(sim: Simulator) -> None:
    first = sync(sim, CHILDREN)
    states = {n: first.states_of(n)[-1] for n in CHILDREN}
    assert "parent_state" in states["flow_messages"]  # only changed actions are listed again
    assert "parent_state" not in states["segment_memberships"]  # every segment, every sync
    time.sleep(1.1)
    changes = sim.advance(
        segment_members_added=5, segments_updated=2, flow_actions_updated=3, flow_messages_updated=3,
        flow_actions_created=2, boundary=True,
    )  # fmt: skip
    time.sleep(1.1)
    before = requests(sim)
    second = sync(sim, CHILDREN, states)
    spent = delta(before, requests(sim))
    truth = expected(sim.store)
    got = {n: keys(second, n) for n in CHILDREN}
    for stream in CHILDREN:
        assert len(got[stream]) == len(set(got[stream])), stream
        assert set(got[stream]) <= set(truth[stream]), stream
    assert set(changes["segment_members_added"]) <= set(got["segment_memberships"])
    assert set(changes["segments_updated"]) <= set(got["segments_detailed"])
    changed_actions = set(changes["flow_actions_updated"]) | set(changes["flow_actions_created"])
    new_messages = {
        sim.store.get("flow-action", a).related_ids("flow-messages")[0]
        for a in changes["flow_actions_created"]
    }
    assert changed_actions <= set(got["flow_actions"])
    assert set(changes["flow_messages_updated"]) | new_messages <= set(got["flow_messages"])
    # nothing unchanged but boundary repeats: the flows' boundary second (actions, segments) or
    # the cursor its action's listing resumed from (messages, inclusive)
    boundary = changes["boundary"]
    changed = (
        changed_actions
        | new_messages
        | set(changes["flow_messages_updated"])
        | set(changes["segments_updated"])
    )
    for stream in ("flow_actions", "segments_detailed"):
        floor = boundary["flows" if stream == "flow_actions" else "segments"]
        assert all(r["updated"] >= floor for r in second.records_of(stream) if r["id"] not in changed), stream
    resumed = {
        s["partition"]["flow_action_id"]: s["cursor"]["updated"] for s in states["flow_messages"]["states"]
    }
    for record in second.records_of("flow_messages"):
        if record["id"] not in changed:
            assert record["updated"] == resumed[record["flow_action_id"]]
    assert len(got["segment_memberships"]) < len(truth["segment_memberships"]) // 2
    # only the actions changed since the state (or at its boundary second) are listed again
    parent_starts = {
        s["partition"]["archived"]: s["cursor"]["updated"]
        for s in states["flow_messages"]["parent_state"]["states"]
    }
    store = sim.store

    def start_of(action: Any) -> str:
        flow = store.get("flow", action.related_ids("flow")[0])
        return parent_starts[str(flow.attributes["archived"]).lower()]

    relisted = [
        a
        for a in store.records("flow-action")
        if a.attributes["updated"] >= start_of(a) and "message" in a.attributes["definition"]["data"]
    ]
    assert spent["get_flow_action_messages"] == len(relisted) < len(store.records("flow-action"))
    assert spent["get_profiles_for_segment"] == len(sim.store.records("segment"))


def test_resume_from_a_per_parent_state(sim: Simulator) -> None:
    store = sim.store
    groups = memberships(store, "segment")
    segment = max({g for g, _ in groups}, key=lambda g: sum(1 for x, _ in groups if x == g))
    joined = sorted(v for (g, _), v in groups.items() if g == segment)
    middle = joined[len(joined) // 2]
    cut = {"states": [{"partition": {"segment_id": segment}, "cursor": {"joined_group_at": iso(middle)}}]}
    sink = sync(sim, ["segment_memberships"], {"segment_memberships": cut})
    pairs = [(r["segment_id"], r["profile_id"]) for r in sink.records_of("segment_memberships")]
    assert {p for g, p in pairs if g == segment} == {
        p for (g, p), v in groups.items() if g == segment and v >= middle
    }
    assert {g for g, _ in pairs} == {g for g, _ in groups}  # segments without a cursor from the start

    # flow_messages: one action's cursor after its messages, parents read from an old parent_state
    messages = {m.id: m for m in store.records("flow-message")}
    action = next(a for a in store.records("flow-action") if a.related_ids("flow-messages"))
    own = messages[action.related_ids("flow-messages")[0]].attributes["updated"]
    later = datetime.fromisoformat(own).replace(year=2100).isoformat()
    state = {
        "states": [{"partition": {"flow_action_id": action.id}, "cursor": {"updated": later}}],
        "parent_state": {"updated": "2012-01-01T00:00:00+00:00"},
    }
    sink = sync(sim, ["flow_messages"], {"flow_messages": state})
    got = {r["id"] for r in sink.records_of("flow_messages")}
    assert got == set(messages) - set(action.related_ids("flow-messages"))
