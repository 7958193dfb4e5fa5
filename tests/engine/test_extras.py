"""The "go beyond" streams of issue 10 (metric_properties, universal_content, reviews, web_feeds,
webhooks, custom_metrics, tracking_settings) against the simulator over a socket: exact sets
against the ground truth without duplicates, records valid against their schemas, both sync
modes, incremental after `advance` (new and changed found; cursorless streams re-read everything
with state {}), the request counts, and a key missing one scope failing only the streams that
need it. Pacing is tested elsewhere: these reads use fast limiters (several streams are XS)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from jsonschema import Draft7Validator

from kit.sim import simulator_in_loop
from kit.sink import CollectingSink, without_keys
from kit.truth import epoch_us, expected
from klaviyo_simulator.server import Simulator
from klaviyo_simulator.spec import all_scopes
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamOutcome, StreamSelection, StreamStatus
from klaviyo_source.errors import AccessError
from klaviyo_source.http.ratelimit import Limits, RateLimiters
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import STREAMS, STREAMS_BY_NAME

NAMES = [
    "metric_properties", "universal_content", "reviews", "web_feeds", "webhooks", "custom_metrics",
    "tracking_settings",
]  # fmt: skip
CURSORLESS = [n for n in NAMES if STREAMS_BY_NAME[n].cursor_field is None]
# web feeds: 2 pages of 20; reviews: 2 pages of 100; universal content: 2 pages of 100
SIZES = {"events": 100, "profiles": 50, "lists": 1, "campaigns": 2, "catalog_items": 5,
         "reviews": 130, "universal_content": 104, "web_feeds": 23}  # fmt: skip
CHANGES = {
    "metric_properties_created": 2, "universal_content_updated": 2, "universal_content_created": 1,
    "reviews_updated": 3, "reviews_created": 2, "web_feeds_updated": 1, "web_feeds_created": 1,
    "webhooks_created": 1, "custom_metrics_updated": 1, "custom_metrics_created": 1,
    "tracking_settings_updated": 1,
}  # fmt: skip
WITH_CURSOR = {"universal_content", "reviews", "web_feeds", "custom_metrics"}


def config(sim: Simulator, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(
        api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, max_retries=2, num_workers=4
    )
    return Config(**(values | overrides))


def with_sim(body: Callable[[Simulator], Awaitable[None]], **arguments: Any) -> None:
    async def go() -> None:
        async with simulator_in_loop(sizes=SIZES, **arguments) as sim:
            await body(sim)

    asyncio.run(go())


async def sync(
    sim: Simulator,
    states: dict[str, Any] | None = None,
    *,
    incremental: bool = True,
    names: list[str] = NAMES,
    **overrides: Any,
) -> tuple[CollectingSink, list[StreamOutcome]]:
    sink = CollectingSink()
    selections = [StreamSelection(n, incremental=incremental) for n in names]
    fast = RateLimiters(override=Limits(1000, 100_000))
    run = read(config(sim, **overrides), selections, states or {}, sink, limiters=fast)
    return sink, await run.outcomes()


def keys(sink: CollectingSink, stream: str) -> list[str]:
    return [str(r["id"]) for r in sink.records_of(stream)]


def requests(sim: Simulator) -> dict[str, int]:
    return dict(sim.controls.stats()["requests"])


def test_the_streams_come_together_in_the_table() -> None:
    names = [s.name for s in STREAMS]
    start = names.index(NAMES[0])
    assert names[start : start + len(NAMES)] == NAMES


def test_full_refresh_reads_exactly_the_ground_truth_with_valid_records() -> None:
    async def body(sim: Simulator) -> None:
        before = requests(sim)
        sink, outcomes = await sync(sim, incremental=False)
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes), [o.error for o in outcomes]
        truth = expected(sim.store)
        for name in NAMES:
            got = keys(sink, name)
            assert got and len(got) == len(set(got)), name
            assert set(got) == set(truth[name]), name
            validator = Draft7Validator(load_schema(name))
            cursor = STREAMS_BY_NAME[name].cursor_field
            for record in sink.records_of(name):
                errors = list(validator.iter_errors(record))
                assert not errors, (name, errors[0].message)
                if cursor is not None:
                    assert record[cursor] == record["attributes"][cursor]
                    assert epoch_us(record[cursor]) == truth[name][record["id"]]
            if name in CURSORLESS:
                assert without_keys(sink.states_of(name)[-1]) == {}, name
        for prop in sink.records_of("metric_properties"):
            assert prop["relationships"]["metric"]["data"]["id"] == prop["metric_id"]
        hooks = sink.records_of("webhooks")  # topics as relationship data (include=webhook-topics)
        assert all(
            [t["id"] for t in h["relationships"]["webhook-topics"]["data"]]
            == sim.store.get("webhook", h["id"]).related_ids("webhook-topics")  # type: ignore[union-attr]
            for h in hooks
        )
        assert any(h["attributes"]["updated_at"] is None for h in hooks)  # why it has no cursor
        metrics = sim.store.records("metric")
        owners = [p["metric_id"] for p in sink.records_of("metric_properties")]
        per_metric = [owners.count(m.id) for m in metrics]
        assert 0 in per_metric and 1 in per_metric and max(per_metric) > 1  # none, one, many
        spent = {k: v - before.get(k, 0) for k, v in requests(sim).items() if v != before.get(k, 0)}
        assert spent.pop("get_tags") == 1  # the pre-flight
        assert spent == {
            "get_metrics": 1,
            "get_properties_for_metric": len(metrics),  # one page per metric, every metric
            "get_all_universal_content": 2,
            "get_reviews": 2,
            "get_web_feeds": 2,
            "get_webhooks": 1,
            "get_custom_metrics": 1,
            "get_tracking_settings": 1,
        }

    with_sim(body)


def test_incremental_after_advance_finds_new_and_changed_and_rereads_the_cursorless() -> None:
    async def body(sim: Simulator) -> None:
        first, outcomes = await sync(sim)
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes), [o.error for o in outcomes]
        states = {n: first.states_of(n)[-1] for n in NAMES}
        assert all(without_keys(states[n]) == {} for n in CURSORLESS)
        assert all(set(without_keys(states[n])) == {"updated"} for n in WITH_CURSOR), states
        await asyncio.sleep(1.1)  # a sync reads up to its start second
        changes = sim.advance(boundary=True, **CHANGES)
        await asyncio.sleep(1.1)
        before = requests(sim)
        # metric_properties would rest until slow_refresh_hours passed: 0 = read it every sync;
        # no deletion check (its id scans would add get_reviews pages: tests/engine/test_deletions.py)
        second, outcomes = await sync(sim, states, slow_refresh_hours=0, detect_deletions=False)
        # reviews come newest first (sort=-updated): the first page reaches below the state
        assert requests(sim)["get_reviews"] - before["get_reviews"] == 1  # of 2 pages
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes), [o.error for o in outcomes]
        truth = expected(sim.store)
        for name in NAMES:
            got = keys(second, name)
            assert len(got) == len(set(got)), name
        for name in sorted(WITH_CURSOR):
            touched = set(changes.get(f"{name}_updated", [])) | set(changes.get(f"{name}_created", []))
            got = set(keys(second, name))
            assert touched and touched <= got, name
            saved = epoch_us(states[name]["updated"])
            # only records at or after the saved cursor (boundary repeats), never the whole set
            assert all(epoch_us(r["updated"]) >= saved for r in second.records_of(name)), name  # type: ignore[operator]
            assert got < set(truth[name]) or len(truth[name]) <= len(touched), name
        for name in CURSORLESS:  # no cursor: every record again (new ones too), and still no state
            assert set(keys(second, name)) == set(truth[name]), name
            assert without_keys(second.states_of(name)[-1]) == {}, name
        assert set(changes["metric_properties_created"]) <= set(keys(second, "metric_properties"))
        assert set(changes["webhooks_created"]) <= set(keys(second, "webhooks"))
        settings = second.records_of("tracking_settings")
        assert [s["attributes"]["auto_add_parameters"] for s in settings] == [False]  # the change is read

    with_sim(body)


def test_a_key_missing_one_scope_fails_only_the_streams_needing_it() -> None:
    key = "pk_extras_no_reviews_feeds_hooks_tracking"
    lacking = {"reviews:read", "web-feeds:read", "webhooks:read", "tracking-settings:read"}
    scopes = sorted(all_scopes() - lacking)

    async def body(sim: Simulator) -> None:
        sink, outcomes = await sync(sim, incremental=False, api_key=key)
        status = {o.name: o for o in outcomes}
        for name in ("reviews", "web_feeds", "webhooks", "tracking_settings"):
            assert status[name].status is StreamStatus.INCOMPLETE, name
            assert isinstance(status[name].error, AccessError), status[name].error
            assert "403" in str(status[name].error)
        truth = expected(sim.store)
        for name in ("metric_properties", "universal_content", "custom_metrics"):
            assert status[name].status is StreamStatus.COMPLETE, (name, status[name].error)
            assert set(keys(sink, name)) == set(truth[name]), name

    with_sim(body, keys={"pk_full": None, key: scopes})
