"""Derived streams (rows built from the pages of a listing read anyway) against the simulator
over a socket: exact sets vs the store's ground truth, both sync modes, incremental after
`advance`, rows valid against their schemas, and zero extra requests."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import jsonschema

from kit.sim import run_against_simulator
from kit.sink import CollectingSink
from kit.truth import derived, epoch_us, record_key
from klaviyo_simulator.server import DEFAULT_KEY, Simulator
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import STREAMS_BY_NAME

SIZES = {"events": 50, "profiles": 500, "lists": 5, "segments": 4, "campaigns": 40, "flows": 8, "tags": 8}
# derived stream -> (its parent's id column, the parent's resource type in the store)
PARENT: dict[str, tuple[str, str]] = {
    "campaign_messages": ("campaign_id", "campaign"),
    "campaign_audiences": ("campaign_id", "campaign"),
    "campaign_tags": ("campaign_id", "campaign"),
    "flow_tags": ("flow_id", "flow"),
    "list_tags": ("list_id", "list"),
    "segment_tags": ("segment_id", "segment"),
    "profile_subscriptions": ("profile_id", "profile"),
    "list_exclusions": ("profile_id", "profile"),
}
DERIVED = list(PARENT)
PARENTS = ["campaigns", "flows", "lists", "segments", "profiles"]
NO_KEY = "pk_no_campaigns"


def config(sim: Simulator, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(
        api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, max_retries=2
    )
    return Config(**(values | overrides))


async def sync(
    sim: Simulator,
    names: list[str],
    states: dict[str, Any] | None = None,
    *,
    incremental: bool = True,
    **kw: Any,
) -> CollectingSink:
    sink = CollectingSink()
    selections = [StreamSelection(n, incremental=incremental) for n in names]
    outcomes = await read(config(sim, **kw), selections, states or {}, sink)
    assert all(o.status is StreamStatus.COMPLETE for o in outcomes), [(o.name, o.error) for o in outcomes]
    return sink


def keys(sink: CollectingSink, stream: str) -> list[str]:
    return [record_key(stream, r) for r in sink.records_of(stream)]


def parent_cursor(sim: Simulator, stream: str, parent_id: str) -> int | None:
    """The parent's cursor (epoch µs) in the store."""
    _, resource = PARENT[stream]
    if resource == "profile":
        row = sim.store.profile_row(parent_id)
        assert row is not None
        return sim.store.profiles.cols.updated[row] * 1_000_000
    parent = sim.store.get(resource, parent_id)
    assert parent is not None
    return epoch_us(parent.attributes[STREAMS_BY_NAME[stream].cursor_field])


def requests(sim: Simulator) -> dict[str, int]:
    counts: dict[str, int] = sim.controls.stats()["requests"]
    return counts


def test_derived_streams_equal_the_ground_truth_in_both_modes_for_no_extra_request() -> None:
    async def body(sim: Simulator) -> None:
        truth = derived(sim.store)
        assert all(truth[stream] for stream in DERIVED), {s: len(truth[s]) for s in DERIVED}

        # Full refresh, parents and derived streams together: the parents' requests and no more.
        sim.controls.reset_stats()
        both = await sync(sim, PARENTS + DERIVED, incremental=False, num_workers=1)
        with_derived = requests(sim)
        sim.controls.reset_stats()
        await sync(sim, PARENTS, incremental=False, num_workers=1)
        assert requests(sim) == with_derived
        # Alone, a derived stream costs its parent listing's pages (profiles without predictive
        # analytics: same page count, the cheaper variant).
        sim.controls.reset_stats()
        await sync(sim, DERIVED, incremental=False, num_workers=1)
        assert sum(requests(sim).values()) == sum(with_derived.values())

        # Incremental from no state: the same rows, and a state per stream.
        first = await sync(sim, DERIVED, num_workers=2)
        for sink in (both, first):
            for stream in DERIVED:
                got = keys(sink, stream)
                assert len(got) == len(set(got)), stream
                assert set(got) == set(truth[stream]), stream
                validator = jsonschema.Draft7Validator(load_schema(stream))
                cursor = STREAMS_BY_NAME[stream].cursor_field
                for record in sink.records_of(stream):
                    assert list(validator.iter_errors(record)) == [], (stream, record)
                    assert epoch_us(record[cursor]) == truth[stream][record_key(stream, record)], stream
        message = first.records_of("campaign_messages")[0]
        assert message["type"] == "campaign-message" and message["attributes"]["definition"]
        assert {r["channel"] for r in first.records_of("profile_subscriptions")} >= {"email", "sms"}
        exclusion = first.records_of("list_exclusions")[0]
        assert exclusion["reason"] and exclusion["timestamp"]
        states = {stream: first.states_of(stream)[-1] for stream in DERIVED}
        assert "states" in states["campaign_tags"] and "updated" in states["list_tags"]

        # Incremental after an advance: every row of a changed parent comes back, and nothing
        # from before the saved cursor but the boundary second's repeats.
        await asyncio.sleep(1.1)
        changes = sim.advance(
            campaigns_updated=4, flows_updated=3, lists_updated=2, segments_updated=2,
            profiles_updated=8, profiles_created=3,
        )  # fmt: skip
        changed = {
            "campaign": set(changes["campaigns_updated"]),
            "flow": set(changes["flows_updated"]),
            "list": set(changes["lists_updated"]),
            "segment": set(changes["segments_updated"]),
            "profile": set(changes["profiles_updated"] + changes["profiles_created"]),
        }
        await asyncio.sleep(1.1)
        sim.controls.reset_stats()
        # Id scans for deletions cost requests of their own (tests/reliability/test_three_months.py).
        second = await sync(sim, DERIVED, states, detect_deletions=False)
        assert sum(requests(sim).values()) < sum(with_derived.values())
        truth = derived(sim.store)
        for stream in DERIVED:
            parent_key, resource = PARENT[stream]
            got = keys(second, stream)
            assert len(got) == len(set(got)), stream
            assert set(got) <= set(truth[stream]), stream
            if stream == "campaign_messages":  # keyed by the message id
                wanted = {r.id for r in _messages_of(sim, changed["campaign"])}
            else:  # composite keys start with the parent's id
                wanted = {key for key in truth[stream] if key.split("/")[0] in changed[resource]}
            assert wanted <= set(got), stream
            saved = _saved_floor(states[stream], STREAMS_BY_NAME[stream].cursor_field)
            for record in second.records_of(stream):
                assert parent_cursor(sim, stream, record[parent_key]) >= saved, stream  # type: ignore[operator]

    run_against_simulator(body, sizes=SIZES)


def test_a_key_without_a_parents_scope_fails_only_the_streams_of_that_parent() -> None:
    async def body(sim: Simulator) -> None:
        sink = CollectingSink()
        names = ["campaign_tags", "campaign_messages", "list_tags", "segment_tags"]
        selections = [StreamSelection(n) for n in names]
        outcomes = await read(config(sim, api_key=NO_KEY), selections, {}, sink)
        status = {o.name: o.status for o in outcomes}
        assert status == {
            "campaign_tags": StreamStatus.INCOMPLETE,
            "campaign_messages": StreamStatus.INCOMPLETE,
            "list_tags": StreamStatus.COMPLETE,
            "segment_tags": StreamStatus.COMPLETE,
        }
        error = next(o.error for o in outcomes if o.name == "campaign_tags")
        assert error is not None and "campaigns:read" in str(error) and NO_KEY not in str(error)
        assert set(keys(sink, "list_tags")) == set(derived(sim.store)["list_tags"])

    scopes = ["lists:read", "segments:read"]
    run_against_simulator(body, sizes=SIZES, keys={DEFAULT_KEY: None, NO_KEY: scopes})


def _messages_of(sim: Simulator, campaign_ids: set[str]) -> list[Any]:
    return [
        message
        for cid in campaign_ids
        for message in sim.store.records("campaign-message")
        if message.relationships["campaign"][1] == cid
    ]


def _saved_floor(state: dict[str, Any], cursor: str) -> int | None:
    """The lowest cursor a saved state resumes from (epoch µs)."""
    if "states" in state:
        return min(epoch_us(datetime.fromisoformat(s["cursor"][cursor])) or 0 for s in state["states"])
    return epoch_us(state[cursor])


def test_list_exclusions_alone_read_only_the_profiles_holding_a_list_suppression() -> None:
    """Alone, list_exclusions filters the profiles listing on having a list suppression (every
    other profile yields no row): fewer pages, the same rows; with profile_subscriptions it rides
    the profiles scan (no request of its own)."""

    async def body(sim: Simulator) -> None:
        store = sim.store
        holders = [row for row in range(store.profile_count) if store.profiles.list_suppressions(row)]
        all_pages, holder_pages = -(-store.profile_count // 100), max(1, -(-len(holders) // 100))
        assert holder_pages < all_pages
        sim.controls.reset_stats()
        alone = await sync(sim, ["list_exclusions"], incremental=False)
        assert requests(sim)["get_profiles"] == holder_pages
        assert sorted(keys(alone, "list_exclusions")) == sorted(derived(store)["list_exclusions"])
        sim.controls.reset_stats()
        both = await sync(sim, ["profile_subscriptions", "list_exclusions"], incremental=False)
        assert requests(sim)["get_profiles"] == all_pages  # one scan feeds both
        assert set(keys(both, "list_exclusions")) == set(keys(alone, "list_exclusions"))

        first = await sync(sim, ["list_exclusions"])
        state = first.states_of("list_exclusions")[-1]
        await asyncio.sleep(1.1)
        changes = sim.advance(profiles_updated=120)
        await asyncio.sleep(1.1)
        second = await sync(sim, ["list_exclusions"], {"list_exclusions": state})
        truth = derived(store)["list_exclusions"]
        changed = set(changes["profiles_updated"])
        wanted = {key for key in truth if key.split("/")[0] in changed}
        assert wanted and wanted <= set(keys(second, "list_exclusions"))
        saved = epoch_us(state["updated"])
        assert all(epoch_us(r["updated"]) >= saved for r in second.records_of("list_exclusions"))  # type: ignore[operator]

    run_against_simulator(body, sizes=SIZES)
