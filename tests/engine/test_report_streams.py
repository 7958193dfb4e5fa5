"""The Reporting API streams over a real socket: values equal a recomputation from the events and
memberships read in the same run; whole days with no gap or repeat (start_date with a time of
day, resume, lookback); the quota ledger with a short "day"; fail-fast on a multi-hour
Retry-After; refused conversion metrics; Airbyte 3.x report states accepted and continued."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kit import report_truth as truth
from kit.documents import make_config
from kit.sim import simulator
from kit.sink import CollectingSink
from klaviyo_simulator import Simulator
from klaviyo_source.config import parse_config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus
from klaviyo_source.errors import ReportQuotaError
from klaviyo_source.http.ratelimit import Limits, RateLimiter, RateLimiters

REPORTS = [
    "campaign_values_reports",
    "flow_series_reports",
    "flow_values_reports",
    "segment_series_reports",
    "form_series_reports",
    "metric_aggregates",
]
ZONE = ZoneInfo("America/New_York")  # the simulated account's timezone
SIZES = {"events": 20000, "profiles": 300, "campaigns": 10, "flows": 3, "segments": 4, "forms": 4}
STATES = Path(__file__).parent / "report_states"


class _Unpaced(RateLimiter):
    def observe(self, headers: Any, sent_at: float | None = None) -> None:
        """Ignore the server's 2/min window: pacing is tested elsewhere, not here."""


class Unpaced(RateLimiters):
    def get(self, bucket: str) -> RateLimiter:
        limiter = self._by_bucket.get(bucket)
        if limiter is None:
            limiter = self._by_bucket[bucket] = _Unpaced(Limits(1000, 100_000))
        return limiter


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with simulator(seed=4, sizes=SIZES) as running:
        yield running


def yesterday() -> date:
    return datetime.now(ZONE).date() - timedelta(days=1)


def metric_id(sim: Simulator, name: str) -> str:
    return next(m.id for m in sim.store.records_view("metric") if m.attributes["name"] == name)


def sync(
    sim: Simulator, streams: list[str], states: dict[str, Any] | None = None, **config: Any
) -> tuple[CollectingSink, dict[str, Any], int]:
    """One in-process read: the sink, outcome by stream, requests sent."""
    settings = {"metric_ids": "Placed Order", "metric_aggregate_metrics": "Placed Order", **config}
    parsed = parse_config(make_config(sim, **settings))
    sink = CollectingSink()

    async def go() -> tuple[list[Any], int]:
        run = read(parsed, [StreamSelection(s) for s in streams], states or {}, sink, limiters=Unpaced())
        outcomes = await run
        return outcomes, run.requests_sent

    outcomes, sent = asyncio.run(go())
    return sink, {o.name: o for o in outcomes}, sent


def day_of(record: dict[str, Any]) -> date:
    return datetime.fromisoformat(record["date"]).date()


def last_states(sink: CollectingSink, streams: list[str]) -> dict[str, Any]:
    return {s: sink.states_of(s)[-1] for s in streams if sink.states_of(s)}


MESSAGE_STATS = ("recipients", "opens", "clicks", "bounced", "conversions", "conversion_value")


def _stats(counts: Any) -> dict[str, Any]:
    return {k: round(counts[k], 2) if k == "conversion_value" else counts[k] for k in MESSAGE_STATS}


def test_every_report_equals_a_recomputation_from_the_events(sim: Simulator) -> None:
    streams = [*REPORTS, "events_detailed", "segment_memberships"]
    sink, outcomes, _ = sync(
        sim, streams, report_history_days=8, metric_aggregate_measurements="count,sum_value"
    )
    assert all(o.status is StreamStatus.COMPLETE for o in outcomes.values()), {
        n: o.error for n, o in outcomes.items()
    }
    days = [yesterday() - timedelta(days=k) for k in range(7, -1, -1)]
    events = sink.records_of("events_detailed")
    names = {m.id: m.attributes["name"] for m in sim.store.records_view("metric")}

    for stream, kind in (("campaign_values_reports", "campaign"), ("flow_values_reports", "flow"),
                         ("flow_series_reports", "flow")):  # fmt: skip
        records = sink.records_of(stream)
        key = f"{kind}_message_id"
        got = Counter((r[key], day_of(r)) for r in records)
        assert max(got.values()) == 1, f"{stream}: a (message, day) twice"
        assert {day_of(r) for r in records} <= set(days)
        expected = {
            k: c for k, c in truth.messages(events, names, ZONE, kind, "Placed Order").items() if k[1] in days
        }
        by_key = {(r[key], day_of(r)): r["statistics"] for r in records}
        for k, counts in expected.items():
            assert _stats(by_key.get(k, Counter())) == _stats(counts), (stream, k)
        for k, stats in by_key.items():  # groups without events in the day are all zeros
            if k not in expected:
                assert all(not stats[s] for s in MESSAGE_STATS), (stream, k)
        assert sum(c["recipients"] for c in expected.values()) > 0

    members = truth.joined(sink.records_of("segment_memberships"), ZONE)
    segment_rows = sink.records_of("segment_series_reports")
    assert {(r["segment_id"], day_of(r)) for r in segment_rows} == {
        (s.id, d) for s in sim.store.records_view("segment") for d in days
    }
    for row in segment_rows:
        joined = members.get(row["segment_id"], [])
        day = day_of(row)
        assert row["statistics"]["members_added"] == sum(1 for j in joined if j == day)
        assert row["statistics"]["total_members"] == sum(1 for j in joined if j <= day)
    assert any(r["statistics"]["members_added"] for r in segment_rows)

    form_counts = truth.forms(events, names, ZONE)
    got_forms = Counter()
    for row in sink.records_of("form_series_reports"):
        for stat in ("viewed_form", "submits"):
            if row["statistics"][stat]:
                got_forms[(row["form_id"], row["form_version_id"], day_of(row), stat)] = row["statistics"][
                    stat
                ]
    assert got_forms == Counter({k: v for k, v in form_counts.items() if k[2] in days}) and got_forms

    orders = truth.metric_days(events, metric_id(sim, "Placed Order"), ZONE)
    aggregates = {(day_of(r), r["measurement"]): r["value"] for r in sink.records_of("metric_aggregates")}
    for day in days:
        count, value = orders.get(day, (0, 0.0))
        assert aggregates[(day, "count")] == count
        assert aggregates[(day, "sum_value")] == pytest.approx(value)


def test_whole_days_from_a_start_date_with_a_time_of_day_resume_and_lookback(sim: Simulator) -> None:
    stream = ["campaign_values_reports"]
    start = datetime.now(UTC) - timedelta(days=4, hours=3)
    first = start.astimezone(ZONE).date()
    config = {
        "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reporting_lookback_window": 2,
        "report_history_days": 30,
    }
    sink, outcomes, _ = sync(sim, stream, **config)
    assert outcomes[stream[0]].status is StreamStatus.COMPLETE
    requested = (yesterday() - first).days + 1
    assert outcomes[stream[0]].stats.requests == requested + 2  # one POST per day + accounts + metrics
    state = last_states(sink, stream)
    assert state[stream[0]]["states"][0]["covered"] == [[first.isoformat(), yesterday().isoformat()]]

    # the same day again: nothing new, no request at all
    again, outcomes, sent = sync(sim, stream, state, **config)
    assert sent == 0 and not again.records_of(stream[0])
    assert outcomes[stream[0]].status is StreamStatus.COMPLETE

    # as if yesterday were new: it is read with the 2 lookback days before it, nothing else
    older = json.loads(json.dumps(state))
    older[stream[0]]["states"][0]["covered"] = [
        [first.isoformat(), (yesterday() - timedelta(days=1)).isoformat()]
    ]
    resumed, outcomes, _ = sync(sim, stream, older, **config)
    days = {day_of(r) for r in resumed.records_of(stream[0])}
    assert days <= {yesterday() - timedelta(days=k) for k in range(3)} and yesterday() in days
    assert outcomes[stream[0]].stats.requests == 3 + 1  # three days + metrics (the zone is saved)


@pytest.mark.parametrize("fixture", ["campaign_values_reports", "flow_series_reports", "plain_date"])
def test_airbyte_3x_report_states_are_continued(sim: Simulator, fixture: str) -> None:
    stream = "flow_series_reports" if fixture == "flow_series_reports" else "campaign_values_reports"
    cursor = yesterday() - timedelta(days=2)
    text = (STATES / f"{fixture}.json").read_text()
    state = json.loads(
        text.replace("{metric_id}", metric_id(sim, "Placed Order")).replace("{date}", cursor.isoformat())
    )
    sink, outcomes, _ = sync(
        sim, [stream], {stream: state}, reporting_lookback_window=0, report_history_days=30
    )
    assert outcomes[stream].status is StreamStatus.COMPLETE, outcomes[stream].error
    assert {day_of(r) for r in sink.records_of(stream)} <= {cursor + timedelta(days=k) for k in range(3)}
    covered = sink.states_of(stream)[-1]["states"][0]["covered"]
    assert covered[-1][1] == yesterday().isoformat()
    assert covered[0][0] <= cursor.isoformat()


def test_a_refused_conversion_metric_is_skipped_with_a_warning(sim: Simulator) -> None:
    sink, outcomes, _ = sync(
        sim, ["flow_values_reports"], metric_ids="Opened Email,Placed Order", report_history_days=2
    )
    outcome = outcomes["flow_values_reports"]
    assert outcome.status is StreamStatus.COMPLETE
    warnings = [
        m for kind, _, (level, m) in ((k, s, v) for k, s, v in sink.calls if k == "log") if level == "WARN"
    ]
    assert any("does not support querying for values data" in w for w in warnings)
    state = sink.states_of("flow_values_reports")[-1]
    assert state["refused"] == [metric_id(sim, "Opened Email")]
    assert {r["conversion_metric_id"] for r in sink.records_of("flow_values_reports")} == {
        metric_id(sim, "Placed Order")
    }


def test_a_multi_hour_retry_after_fails_fast_with_the_quota_message(sim: Simulator) -> None:
    sim.controls.script("/api/flow-series-reports", [{"status": 429, "retry_after": 73473}])
    try:
        began = time.monotonic()
        _, outcomes, _ = sync(sim, ["flow_series_reports"], report_history_days=3)
        assert time.monotonic() - began < 10
    finally:
        sim.controls.clear_faults()
    outcome = outcomes["flow_series_reports"]
    assert outcome.status is StreamStatus.INCOMPLETE
    assert isinstance(outcome.error, ReportQuotaError)
    assert "max_rate_limit_wait" in outcome.error.message and "The next sync after" in outcome.error.message


def test_the_quota_ledger_with_a_short_day() -> None:
    """2 calls per 3-second "day": each run reads the 2 newest days it lacks, then ends INCOMPLETE
    with the message; a rerun in the same "day" sends no report call; the third "day" completes
    the 6 days with no gap and no day twice, and the ledger never passes 2."""
    day_seconds = 3
    with simulator(seed=4, sizes=SIZES) as sim:
        sim.controls.set_clock(time.time)  # the connector's quota day is on the wall clock too
        sim.controls.set_options(daily_quotas=True, quota_day_seconds=float(day_seconds), daily_quota=2)
        config = {
            "report_daily_quota": 2,
            "report_quota_day_seconds": day_seconds,
            "reporting_lookback_window": 0,
            "report_history_days": 6,
        }
        stream = "campaign_values_reports"
        states: dict[str, Any] = {}
        read_days: list[date] = []
        runs = []

        def next_day() -> None:
            time.sleep(day_seconds - time.time() % day_seconds + 0.05)

        next_day()
        for _ in range(3):
            sink, outcomes, _ = sync(sim, [stream], states, **config)
            runs.append(outcomes[stream])
            read_days += sorted({day_of(r) for r in sink.records_of(stream)})
            for state in sink.states_of(stream):
                assert state["quota"]["query_campaign_values"]["calls"] <= 2
            states = last_states(sink, [stream])
            if outcomes[stream].status is StreamStatus.INCOMPLETE:
                # the same "day" again: the ledger is spent, so no report call goes out
                before = sim.controls.stats()["requests"].get("query_campaign_values", 0)
                _, again, _ = sync(sim, [stream], states, **config)
                assert again[stream].status is StreamStatus.INCOMPLETE
                assert sim.controls.stats()["requests"].get("query_campaign_values", 0) == before
            next_day()
        assert [r.status for r in runs] == [
            StreamStatus.INCOMPLETE,
            StreamStatus.INCOMPLETE,
            StreamStatus.COMPLETE,
        ]
        error = runs[0].error
        assert isinstance(error, ReportQuotaError)
        assert "calls to POST /api/campaign-values-reports are spent" in error.message
        assert "Still to read" in error.message and "The next sync after" in error.message
        assert sorted(read_days) == [yesterday() - timedelta(days=k) for k in range(5, -1, -1)]
        assert read_days[:2] == [yesterday() - timedelta(days=1), yesterday()]  # newest first
        assert sim.controls.stats()["throttled_total"] == 0  # the ledger stopped first: no 429 storm
