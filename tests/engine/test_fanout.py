"""Fan-out streams (a child listing per parent record) against the simulator over a socket:
list_memberships reads GET /api/lists/{id}/profiles for every list, keeps one cursor per list,
and resumes each list where it stopped."""

from __future__ import annotations

from typing import Any

from kit.sim import run_against_simulator
from kit.sink import CollectingSink
from kit.truth import epoch_us, memberships
from klaviyo_simulator.server import Simulator
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus

SIZES = {"events": 200, "profiles": 400, "lists": 6, "campaigns": 6}


def config(sim: Simulator, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(
        api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, max_retries=2
    )
    return Config(**(values | overrides))


def pairs(sink: CollectingSink) -> list[tuple[str, str]]:
    return [(r["list_id"], r["profile_id"]) for r in sink.records_of("list_memberships")]


def test_list_memberships_full_then_incremental_per_list() -> None:
    async def body(sim: Simulator) -> None:
        truth = memberships(sim.store, "list")
        assert truth and len({group for group, _ in truth}) > 1
        sink = CollectingSink()
        run = read(
            config(sim, num_workers=4),
            [StreamSelection("list_memberships"), StreamSelection("lists")],
            {},
            sink,
        )
        outcomes = await run
        assert [o.status for o in outcomes] == [StreamStatus.COMPLETE] * 2, [o.error for o in outcomes]
        got = pairs(sink)
        assert len(got) == len(set(got)) and set(got) == set(truth)
        for record in sink.records_of("list_memberships"):
            assert epoch_us(record["joined_group_at"]) == truth[(record["list_id"], record["profile_id"])]
        requests = sim.controls.stats()["requests"]
        lists = {group for group, _ in truth} | {r["id"] for r in sink.records_of("lists")}
        assert requests["get_profiles_for_list"] >= len(lists)  # one child listing per list, at least
        state = sink.states_of("list_memberships")[-1]
        by_list = {s["partition"]["list_id"]: s["cursor"]["joined_group_at"] for s in state["states"]}
        for group in {g for g, _ in truth}:
            newest = max(v for (g, _), v in truth.items() if g == group)
            assert epoch_us(by_list[group]) == newest
        assert "parent_state" not in state  # every list is read each sync

        # Incremental: each list resumes at its own cursor (inclusive): only boundary repeats.
        again = CollectingSink()
        await read(config(sim), [StreamSelection("list_memberships")], {"list_memberships": state}, again)
        repeated = pairs(again)
        assert len(repeated) == len(set(repeated))
        for group, profile in repeated:
            assert truth[(group, profile)] == epoch_us(by_list[group])
        assert again.states_of("list_memberships")[-1]["states"] == state["states"]

        # A list cut short mid-way resumes from its cursor and misses nothing.
        group = max({g for g, _ in truth}, key=lambda g: sum(1 for x, _ in truth if x == g))
        members = sorted(v for (g, _), v in truth.items() if g == group)
        middle = members[len(members) // 2]
        cut = {
            "states": [
                {"partition": {"list_id": group}, "cursor": {"joined_group_at": _iso(middle)}},
            ]
        }
        resumed = CollectingSink()
        await read(config(sim), [StreamSelection("list_memberships")], {"list_memberships": cut}, resumed)
        of_group = {p for g, p in pairs(resumed) if g == group}
        assert of_group == {p for (g, p), v in truth.items() if g == group and v >= middle}
        others = {g for g, _ in pairs(resumed)} - {group}
        assert others == {g for g, _ in truth} - {group}  # lists without a cursor read from the start

    run_against_simulator(body, seed=42, sizes=SIZES)


def _iso(epoch_us_value: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_us_value / 1_000_000, UTC).isoformat()
