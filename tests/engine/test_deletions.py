"""Deleted records through the engine (Airbyte's view: deletion records with `_ab_cdc_deleted_at`):
records deleted in the simulator, a lifted suppression and removed members come out as deletions
on the next incremental read, once, and never for records that are still live."""

from __future__ import annotations

import asyncio
from typing import Any

from kit.sim import run_against_simulator
from kit.sink import CollectingSink
from klaviyo_simulator.server import Simulator
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus
from klaviyo_source.engine.known import DELETED_AT, KnownKeys, decode_keys, encode_keys

SIZES = {"events": 20, "profiles": 60, "campaigns": 8, "flows": 3, "lists": 3, "templates": 12}
STREAMS = [
    "campaigns", "campaign_messages", "profiles", "global_exclusions", "profile_subscriptions",
    "list_memberships", "tags", "email_templates",
]  # fmt: skip


def config(sim: Simulator, **overrides: Any) -> Config:
    values: dict[str, Any] = {"api_key": sim.api_key, "base_url": sim.base_url, "backoff_base": 0.01}
    return Config(**{**values, "deletion_check_days": 0, **overrides})


async def sync(sim: Simulator, states: dict[str, Any], **overrides: Any) -> CollectingSink:
    sink = CollectingSink()
    outcomes = await read(config(sim, **overrides), [StreamSelection(n) for n in STREAMS], states, sink)
    assert all(o.status is StreamStatus.COMPLETE for o in outcomes), [(o.name, o.error) for o in outcomes]
    for name in STREAMS:
        if sink.states_of(name):
            states[name] = sink.states_of(name)[-1]
    return sink


def deleted(sink: CollectingSink, stream: str) -> list[dict[str, Any]]:
    return [r for r in sink.records_of(stream) if DELETED_AT in r]


def test_the_key_codec_round_trips() -> None:
    keys = {("a",), ("b",), ("01JBWCS93GRSV7V5GE169E6000",)}
    assert decode_keys(encode_keys(keys)) == keys
    assert decode_keys(encode_keys(set())) == set()
    assert KnownKeys.from_state(("id",), {"updated": "2024-01-01T00:00:00+00:00"}).keys == set()
    assert KnownKeys.from_state(("id",), {"_reconcile": {"keys": "not base64!"}}).keys == set()


def test_deletions_lifted_suppressions_and_removed_members_come_out_once() -> None:
    async def body(sim: Simulator) -> None:
        states: dict[str, Any] = {}
        first = await sync(sim, states)
        assert all(not deleted(first, n) for n in STREAMS)
        store = sim.store
        await asyncio.sleep(1.1)
        campaign = store.records("campaign")[0]
        messages = set(campaign.related_ids("campaign-messages"))
        sim.change("delete", type="campaign", ids=[campaign.id])
        gone_profiles = store.profile_ids()[:2]
        sim.change("delete", type="profile", ids=gone_profiles)
        suppressed = next(store.profile_id(r) for r in store.profiles.cols.suppression)
        sim.change("unsuppress", ids=[suppressed])
        group = store.records("list")[0].id
        members = [store.profile_id(k & 0xFFFFFFFF) for k in store.members("list", group)[:1]]
        sim.change("remove-members", group_type="list", group_id=group, profile_ids=members)
        template = store.records("template")[0].id
        sim.change("delete", type="template", ids=[template])
        tag = store.records("tag")[0].id
        sim.change("delete", type="tag", ids=[tag])
        await asyncio.sleep(1.1)

        second = await sync(sim, states)
        assert [r["id"] for r in deleted(second, "campaigns")] == [campaign.id]
        assert {r["id"] for r in deleted(second, "campaign_messages")} == messages
        assert {r["id"] for r in deleted(second, "profiles")} == set(gone_profiles)
        assert suppressed in {r["id"] for r in deleted(second, "global_exclusions")}
        assert {r["profile_id"] for r in deleted(second, "profile_subscriptions")} == set(gone_profiles)
        pairs = {(r["list_id"], r["profile_id"]) for r in deleted(second, "list_memberships")}
        assert {(group, p) for p in members} <= pairs
        assert all(p in gone_profiles or (lid, p) in {(group, m) for m in members} for lid, p in pairs)
        assert [r["id"] for r in deleted(second, "email_templates")] == [template]
        assert [r["id"] for r in deleted(second, "tags")] == [tag]
        for record in deleted(second, "campaigns"):  # the key, the cursor (deletion time), the marker
            assert set(record) == {"id", "updated_at", DELETED_AT}

        third = await sync(sim, states)
        assert all(not deleted(third, n) for n in STREAMS)

    run_against_simulator(body, seed=3, sizes=SIZES)


def test_large_collections_wait_for_their_cadence_and_the_switch_turns_it_off() -> None:
    async def body(sim: Simulator) -> None:
        states: dict[str, Any] = {}
        await sync(sim, states, deletion_check_days=7)
        await asyncio.sleep(1.1)
        sim.change("delete", type="profile", ids=sim.store.profile_ids()[:1])
        sim.change("delete", type="campaign", ids=[sim.store.records("campaign")[0].id])
        await asyncio.sleep(1.1)
        off = await sync(sim, dict(states), detect_deletions=False)
        assert all(not deleted(off, n) for n in STREAMS)
        weekly = await sync(sim, states, deletion_check_days=7)
        assert not deleted(weekly, "profiles")  # the first read counts as a check: due in 7 days
        assert len(deleted(weekly, "campaigns")) == 1  # small collections: every sync

    run_against_simulator(body, seed=3, sizes=SIZES)
