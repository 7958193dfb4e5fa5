"""The engine against the Klaviyo simulator over real sockets on 127.0.0.1, compared with the
simulator's ground truth (`sim.store`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from kit.sim import run_against_simulator
from kit.sink import CollectingSink
from kit.truth import expected_ids
from klaviyo_simulator.server import DEFAULT_KEY, Simulator
from klaviyo_source.config import Config
from klaviyo_source.endpoints import rate_for
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamOutcome, StreamSelection, StreamStatus
from klaviyo_source.errors import AccessError, TransientError

ALL = [
    "profiles", "global_exclusions", "events", "events_detailed", "email_templates", "metrics",
    "lists", "lists_detailed", "campaigns", "campaigns_detailed", "flows", "segments",
]  # fmt: skip
FAST = ["profiles", "global_exclusions", "events", "events_detailed", "email_templates", "metrics", "lists",
        "campaigns", "flows", "segments"]  # fmt: skip
SIZES = {"events": 3000, "profiles": 600, "lists": 4, "campaigns": 30}
CURSOR = {
    "profiles": "updated", "global_exclusions": "updated",
    "events": "datetime", "events_detailed": "datetime",
    "email_templates": "updated", "metrics": "updated", "lists": "updated", "lists_detailed": "updated",
    "campaigns": "updated_at", "campaigns_detailed": "updated_at", "flows": "updated", "segments": "updated",
}  # fmt: skip


def truth(sim: Simulator, stream: str) -> set[str]:
    """Ids every complete read of `stream` must contain, from the simulator's store."""
    return expected_ids(sim.store, stream)


def sim_config(sim: Simulator, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(
        api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, max_retries=2, max_rate_limit_wait=10.0
    )
    values["late_events_hours"] = 0  # boundaries exactly at the state; test_late_events.py re-scans
    values.update(overrides)
    return Config(**values)


def with_sim(body: Callable[[Simulator], Awaitable[None]], **arguments: Any) -> None:
    """`await body(sim)` against the kit's simulator with this file's data (seed 42, SIZES)."""
    run_against_simulator(body, **{"seed": 42, "sizes": SIZES, **arguments})


async def sync(
    sim: Simulator, names: list[str], states: dict[str, Any] | None = None, **overrides: Any
) -> tuple[CollectingSink, list[StreamOutcome]]:
    sink = CollectingSink()
    outcomes = await read(
        sim_config(sim, **overrides), [StreamSelection(n) for n in names], states or {}, sink
    )
    return sink, outcomes


def final_states(sink: CollectingSink, names: list[str]) -> dict[str, Any]:
    return {n: sink.states_of(n)[-1] for n in names}


def test_every_stream_full_refresh_equals_the_ground_truth() -> None:
    async def body(sim: Simulator) -> None:
        sink = CollectingSink()
        selections = [StreamSelection(n, incremental=False) for n in ALL]
        run = read(sim_config(sim, num_workers=6), selections, {"events": {"datetime": "garbage"}}, sink)
        outcomes = await run
        live = run.snapshot()
        for outcome in outcomes:
            assert outcome.status is StreamStatus.COMPLETE, (outcome.name, outcome.error)
            records = sink.records_of(outcome.name)
            ids = [r["id"] for r in records]
            assert len(ids) == len(set(ids)), outcome.name
            assert set(ids) == truth(sim, outcome.name), outcome.name
            field = CURSOR[outcome.name]
            if outcome.name == "global_exclusions":  # Airbyte 3.x: the suppression time is the cursor
                marketing = [r["attributes"]["subscriptions"]["email"]["marketing"] for r in records]
                assert [r[field] for r in records] == [m["suppressions"][0]["timestamp"] for m in marketing]
            else:
                assert all(r[field] == r["attributes"][field] for r in records)
            assert live[outcome.name] == outcome.stats and outcome.stats.records == len(records)
            assert outcome.stats.requests > 0
        counts = sim.controls.stats()["requests"]
        assert run.requests_sent == sum(counts.values())  # shared pages count once
        assert counts["get_events"] <= 3000 // 1000 + 8  # one scan feeds events and events_detailed
        assert counts["get_list"] == 4  # one profile_count fetch per list
        detailed = sink.records_of("events_detailed")[0]["relationships"]["metric"]["data"]
        assert isinstance(detailed.get("name"), str)
        for campaign in sink.records_of("campaigns_detailed"):
            estimation = sim.store.get("campaign-recipient-estimation", campaign["id"])
            if estimation is None:  # 404 on the estimation: ignored, count 0 (as Airbyte)
                assert campaign["estimated_recipient_count"] == 0
            else:
                expected = estimation.attributes["estimated_recipient_count"]
                assert campaign["estimated_recipient_count"] == expected
        assert sim.controls.stats()["statuses"].get("404", 0) > 0
        campaign = sink.records_of("campaigns_detailed")[0]
        assert isinstance(campaign["estimated_recipient_count"], int) and isinstance(
            campaign["campaign_messages"], list
        )
        assert {r["attributes"]["channel"] for r in sink.records_of("campaigns")} <= {
            "email",
            "sms",
            "mobile_push",
        }
        marketing = sink.records_of("global_exclusions")[0]["attributes"]["subscriptions"]["email"][
            "marketing"
        ]
        assert marketing["suppressions"] and "suppression" not in marketing  # renamed, as Airbyte 3.x
        assert all("profile_count" in r["attributes"] for r in sink.records_of("lists_detailed"))

    with_sim(body)


def test_incremental_after_advance_misses_nothing_at_the_boundary_second() -> None:
    names = ALL

    async def body(sim: Simulator) -> None:
        first, _ = await sync(sim, names, num_workers=4)
        states = final_states(first, names)
        await asyncio.sleep(1.1)  # the sync reads up to its start second; let "now" pass
        changes = sim.advance(
            events=40, profiles_updated=12, profiles_suppressed=4, profiles_created=3, boundary=True,
            campaigns_updated=4, flows_updated=4, templates_updated=4, lists_updated=2, metrics_updated=2,
            segments_updated=2,
        )  # fmt: skip
        await asyncio.sleep(1.1)
        second, outcomes = await sync(sim, names, states, num_workers=4)
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes)
        got = {n: {r["id"] for r in second.records_of(n)} for n in names}
        assert set(changes["events"]) <= got["events"] and set(changes["events"]) <= got["events_detailed"]
        touched = changes["profiles_updated"] + changes["profiles_suppressed"] + changes["profiles_created"]
        assert set(touched) <= got["profiles"]
        assert set(changes["profiles_suppressed"]) <= got["global_exclusions"]
        for stream, key in (("campaigns", "campaigns_updated"), ("flows", "flows_updated"),
                            ("email_templates", "templates_updated"), ("lists", "lists_updated"),
                            ("metrics", "metrics_updated"), ("segments", "segments_updated")):  # fmt: skip
            assert set(changes[key]) <= got[stream], stream
        assert set(changes["campaigns_updated"]) <= got["campaigns_detailed"]
        assert set(changes["lists_updated"]) <= got["lists_detailed"]
        assert len(got["lists_detailed"]) < len(truth(sim, "lists")) or len(truth(sim, "lists")) <= 2
        # nothing older than the state
        for stream in ("events", "profiles", "email_templates", "lists", "metrics", "segments"):
            field = CURSOR[stream]
            floor = datetime.fromisoformat(states[stream][field])
            assert all(datetime.fromisoformat(r[field]) >= floor for r in second.records_of(stream)), stream
        assert len(got["events"]) < 3000 // 2

    with_sim(body)


def test_parallel_windows_equal_one_worker_and_resume_mid_run_misses_nothing() -> None:
    names = ["events", "profiles"]

    async def body(sim: Simulator) -> None:
        one, _ = await sync(sim, names, num_workers=1)
        many, _ = await sync(sim, names, num_workers=8)
        for name in names:
            assert sorted(r["id"] for r in one.records_of(name)) == sorted(
                r["id"] for r in many.records_of(name)
            )
        # Resume: records passed before some mid-run state + a run from that state = everything.
        for name in names:
            before: set[str] = set()
            mid_state = None
            for kind, stream, value in many.calls:
                if stream != name:
                    continue
                if kind == "records":
                    before |= {r["id"] for r in value}
                if kind == "state" and len(before) > 500:
                    mid_state = value
                    break
            assert mid_state is not None
            resumed, _ = await sync(sim, [name], {name: mid_state}, num_workers=3)
            assert before | {r["id"] for r in resumed.records_of(name)} == truth(sim, name)

    with_sim(body)


def test_429_then_success_and_5xx_then_success() -> None:
    async def body(sim: Simulator) -> None:
        sim.controls.script("/api/metrics", [{"status": 429, "retry_after": 1}, "ok"])
        sim.controls.script("/api/flows", [503, 500])
        sink, outcomes = await sync(sim, ["metrics", "flows"])
        metrics, flows = outcomes
        assert metrics.status is StreamStatus.COMPLETE and metrics.stats.throttled == 1
        assert (StreamStatus.RUNNING, "RATE_LIMITED") in sink.statuses_of("metrics")
        assert {r["id"] for r in sink.records_of("metrics")} == truth(sim, "metrics")
        assert flows.status is StreamStatus.COMPLETE and flows.stats.retries == 2
        assert {r["id"] for r in sink.records_of("flows")} == truth(sim, "flows")

    with_sim(body)


def test_5xx_forever_fails_one_stream_others_complete() -> None:
    async def body(sim: Simulator) -> None:
        sim.controls.script("/api/templates", [500] * 20)
        sink, outcomes = await sync(sim, ["email_templates", "metrics", "events"])
        templates, metrics, events = outcomes
        assert templates.status is StreamStatus.INCOMPLETE and isinstance(templates.error, TransientError)
        assert templates.error.failure_type == "transient_error"
        assert sink.errors_of("email_templates") == [templates.error]
        assert metrics.status is StreamStatus.COMPLETE and events.status is StreamStatus.COMPLETE

    with_sim(body)


def test_403_fails_that_stream_only() -> None:
    async def body(sim: Simulator) -> None:
        key = "pk_limited_scopes"
        sink, outcomes = await sync(sim, ["flows", "metrics", "events"], api_key=key)
        flows, metrics, events = outcomes
        assert flows.status is StreamStatus.INCOMPLETE and isinstance(flows.error, AccessError)
        assert flows.error.failure_type == "config_error" and "flows:read" in flows.error.message
        assert key not in flows.error.message and key not in flows.error.internal_message
        assert metrics.status is StreamStatus.COMPLETE and events.status is StreamStatus.COMPLETE
        assert sink.states_of("metrics") and not sink.records_of("flows")

    with_sim(body, keys={DEFAULT_KEY: None, "pk_limited_scopes": ["metrics:read", "events:read"]})


def test_predictive_503_falls_back_to_smaller_pages_then_fails_with_advice() -> None:
    async def body(sim: Simulator) -> None:
        sink, outcomes = await sync(sim, ["profiles"], max_retries=1)
        assert outcomes[0].status is StreamStatus.COMPLETE
        assert {r["id"] for r in sink.records_of("profiles")} == truth(sim, "profiles")
        sim.controls.set_options(predictive_503_max_page=10)
        _, outcomes = await sync(sim, ["profiles"], max_retries=1)
        error = outcomes[0].error
        assert isinstance(error, TransientError) and "disable_fetching_predictive_analytics" in error.message
        _, outcomes = await sync(sim, ["profiles"], max_retries=1, disable_fetching_predictive_analytics=True)
        assert outcomes[0].status is StreamStatus.COMPLETE

    with_sim(body, predictive_503_max_page=50)


def test_shared_limiters_keep_every_bucket_inside_its_tier() -> None:
    async def body(sim: Simulator) -> None:
        _, outcomes = await sync(
            sim, ["events", "profiles", "campaigns_detailed", "lists_detailed", "flows"], num_workers=10
        )
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes)
        stats = sim.controls.stats()
        assert stats["throttled_total"] == 0, stats["throttled"]
        for bucket, window in stats["windows"].items():
            burst, steady = rate_for(bucket)
            assert window["max_per_second"] <= burst, (bucket, window)
            assert window["max_per_minute"] <= steady, (bucket, window)

    with_sim(body, rate_limits=True, sizes={**SIZES, "campaigns": 40, "lists": 3})


def test_global_exclusions_alone_or_riding_on_profiles() -> None:
    async def body(sim: Simulator) -> None:
        alone, _ = await sync(sim, ["global_exclusions"])
        assert {r["id"] for r in alone.records_of("global_exclusions")} == truth(sim, "global_exclusions")
        assert sim.controls.stats()["requests"]["get_profiles"] <= 3  # only suppressed profiles come back
        both, _ = await sync(sim, ["profiles", "global_exclusions"])
        assert {r["id"] for r in both.records_of("global_exclusions")} == truth(sim, "global_exclusions")
        # profiles starts later than global_exclusions: global_exclusions scans on its own
        profiles_state = both.states_of("profiles")[-1]
        later, _ = await sync(sim, ["profiles", "global_exclusions"], {"profiles": profiles_state})
        assert {r["id"] for r in later.records_of("global_exclusions")} == truth(sim, "global_exclusions")

    with_sim(body)


def test_legacy_states_lookback_and_lists_detailed_changed_only() -> None:
    async def body(sim: Simulator) -> None:
        first, _ = await sync(sim, ["campaigns", "events", "lists_detailed"])
        newest_campaign = max(r["updated_at"] for r in first.records_of("campaigns"))
        newest_event = max(r["datetime"] for r in first.records_of("events"))
        legacy = {
            "campaigns": {"updated_at": newest_campaign, "archived": {"updated_at": newest_campaign}},
            "events": {"datetime": newest_event.replace("T", " ")},  # 2.10.x space separator
            "lists_detailed": first.states_of("lists_detailed")[-1],
        }
        sim.controls.reset_stats()
        second, outcomes = await sync(
            sim, ["campaigns", "events", "lists_detailed"], legacy, lookback_window=30
        )
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes)
        campaigns = second.records_of("campaigns")
        # email partitions resume from the legacy cursor, sms and mobile_push start over
        assert all(
            r["attributes"]["channel"] != "email" or r["updated_at"] >= newest_campaign for r in campaigns
        )
        everything_else = {
            r["id"] for r in first.records_of("campaigns") if r["attributes"]["channel"] != "email"
        }
        assert everything_else <= {r["id"] for r in campaigns}
        state = second.states_of("campaigns")[-1]
        assert len(state["states"]) == 6 and state["use_global_cursor"] is False
        # lookback re-reads 30 days before the saved cursor
        oldest = min(datetime.fromisoformat(r["datetime"]) for r in second.records_of("events"))
        assert (datetime.fromisoformat(newest_event) - oldest).days <= 30
        assert len(second.records_of("events")) > 1
        # lists_detailed: nothing changed, so no profile_count fetch beyond the boundary list(s)
        assert sim.controls.stats()["requests"].get("get_list", 0) <= 1

    with_sim(body)


def test_transport_faults_are_retried_timeouts_included() -> None:
    async def body(sim: Simulator) -> None:
        sim.controls.script("/api/metrics", [{"kind": "hang", "seconds": 5}, "ok"])
        sim.controls.script("/api/flows", ["reset", "reset", "truncated", "invalid_json", "ok"])
        sink, outcomes = await sync(sim, ["metrics", "flows"], request_timeout=0.5, max_retries=4)
        metrics, flows = outcomes
        assert metrics.status is StreamStatus.COMPLETE and metrics.stats.retries == 1
        assert flows.status is StreamStatus.COMPLETE and flows.stats.retries >= 2
        assert sim.controls.stats()["faults_total"] >= 4  # every scripted fault was served
        assert {r["id"] for r in sink.records_of("flows")} == truth(sim, "flows")

    with_sim(body)


def test_long_waits_keep_logging(monkeypatch: Any) -> None:
    from klaviyo_source.http import client

    monkeypatch.setattr(client, "HEARTBEAT_SECONDS", 0.2)

    async def body(sim: Simulator) -> None:
        sim.controls.script("/api/metrics", [{"status": 429, "retry_after": 1}, "ok"])
        sink, outcomes = await sync(sim, ["metrics"])
        assert outcomes[0].status is StreamStatus.COMPLETE
        beats = [m for kind, _, (level, m) in (c for c in sink.calls if c[0] == "log") if "left" in m]
        assert len(beats) >= 3 and sim.api_key not in " ".join(beats)

    with_sim(body)


def test_future_state_makes_no_request_even_for_client_side_streams() -> None:
    future = "2099-01-01T00:00:00+0000"
    names = ["global_exclusions", "metrics", "lists", "events"]

    async def body(sim: Simulator) -> None:
        states = {n: {CURSOR[n]: future} for n in names}
        sink, outcomes = await sync(sim, names, states)
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes)
        assert sim.controls.stats()["requests_total"] == 0
        for name in names:
            assert sink.records_of(name) == []
            assert sink.states_of(name) == [{CURSOR[name]: "2099-01-01T00:00:00+00:00"}]

    with_sim(body)


class RawSink(CollectingSink):
    async def raw_records(self, stream: str, records: Sequence[Any]) -> None:
        await self.records(stream, records)


def test_raw_events_fast_path_gives_the_same_records_and_states() -> None:
    import orjson

    async def body(sim: Simulator) -> None:
        plain, _ = await sync(sim, ["events", "metrics"], num_workers=4)
        raw = RawSink()
        selections = [StreamSelection("events"), StreamSelection("metrics")]
        outcomes = await read(sim_config(sim, num_workers=4), selections, {}, raw)
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes)
        fragments = raw.records_of("events")
        assert all(isinstance(f, orjson.Fragment) for f in fragments)
        decoded = sorted((orjson.loads(orjson.dumps(f)) for f in fragments), key=lambda r: r["id"])
        assert decoded == sorted(plain.records_of("events"), key=lambda r: r["id"])
        assert raw.states_of("events")[-1] == plain.states_of("events")[-1]
        assert raw.records_of("metrics") == plain.records_of("metrics")  # dicts elsewhere
        # incremental from a mid state, with events_detailed: both take the fast path
        # (tests/engine/test_rawshape.py compares them with the dict path byte for byte)
        state = {"events": plain.states_of("events")[-1]}
        again = RawSink()
        await read(
            sim_config(sim), [StreamSelection("events"), StreamSelection("events_detailed")], state, again
        )
        assert all(isinstance(r, orjson.Fragment) for r in again.records_of("events"))
        assert all(isinstance(r, orjson.Fragment) for r in again.records_of("events_detailed"))

    with_sim(body)


def test_predictive_503_mid_window_restarts_without_duplicates_or_gaps() -> None:
    async def body(sim: Simulator) -> None:
        sim.controls.script(
            "/api/profiles", ["ok", "ok", 503, 503, 503], query_contains="predictive_analytics"
        )
        sink, outcomes = await sync(sim, ["profiles"], num_workers=1, max_retries=1)
        assert outcomes[0].status is StreamStatus.COMPLETE
        ids = [r["id"] for r in sink.records_of("profiles")]
        assert len(ids) == len(set(ids)) and set(ids) == truth(sim, "profiles")
        assert any("page size 50" in m for kind, _, (level, m) in (c for c in sink.calls if c[0] == "log"))

    with_sim(body)


# Status sequences and bad bodies, scripted with the simulator's fault controls.


def test_403_with_klaviyos_detail_fails_only_that_stream() -> None:
    async def body(sim: Simulator) -> None:
        denied = {"status": 403, "detail": "You do not have permission to perform this action."}
        sim.controls.script("/api/flows", [denied] * 4)
        sink, (flows, metrics) = await sync(sim, ["flows", "metrics"])
        assert flows.status is StreamStatus.INCOMPLETE and isinstance(flows.error, AccessError)
        assert "flows:read" in str(flows.error) and "You do not have permission" in str(flows.error)
        assert sim.api_key not in str(flows.error)
        assert metrics.status is StreamStatus.COMPLETE
        assert {r["id"] for r in sink.records_of("metrics")} == truth(sim, "metrics")
        assert sink.statuses_of("flows")[-1][0] is StreamStatus.INCOMPLETE

    with_sim(body)


def test_two_429s_with_retry_after_0_then_success() -> None:
    async def body(sim: Simulator) -> None:
        sim.controls.script("/api/metrics", [{"status": 429, "retry_after": 0}] * 2)
        sink, (metrics,) = await sync(sim, ["metrics"])
        assert metrics.status is StreamStatus.COMPLETE
        assert {r["id"] for r in sink.records_of("metrics")} == truth(sim, "metrics")
        assert metrics.stats.throttled == 2
        assert (StreamStatus.RUNNING, "RATE_LIMITED") in sink.statuses_of("metrics")

    with_sim(body)


def test_429_beyond_max_rate_limit_wait_is_transient() -> None:
    async def body(sim: Simulator) -> None:
        sim.controls.script("/api/metrics", [{"status": 429, "retry_after": 30}])
        _, (metrics,) = await sync(sim, ["metrics"], max_rate_limit_wait=1.0)
        assert isinstance(metrics.error, TransientError) and metrics.error.failure_type == "transient_error"

    with_sim(body)


def test_5xx_then_success_and_5xx_forever() -> None:
    async def body(sim: Simulator) -> None:
        sim.controls.script("/api/metrics", [503, 500])
        sim.controls.script("/api/templates", [500] * 50)
        _, (metrics, templates, flows) = await sync(sim, ["metrics", "email_templates", "flows"])
        assert metrics.status is StreamStatus.COMPLETE and metrics.stats.retries == 2
        assert templates.status is StreamStatus.INCOMPLETE and isinstance(templates.error, TransientError)
        assert flows.status is StreamStatus.COMPLETE

    with_sim(body)


def test_a_body_that_is_not_json_is_retried() -> None:
    async def body(sim: Simulator) -> None:
        sim.controls.script("/api/metrics", ["invalid_json"])
        sink, (metrics,) = await sync(sim, ["metrics"])
        assert metrics.status is StreamStatus.COMPLETE
        assert {r["id"] for r in sink.records_of("metrics")} == truth(sim, "metrics")

    with_sim(body)
