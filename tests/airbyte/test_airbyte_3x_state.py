"""Every state shape Airbyte's source-klaviyo 3.x (and the versions before it) saved is accepted and
continued from: one fixture per shape in fixtures/state_3x/, each read incrementally through the
CLI against the simulator after `advance`. The fixture's `expect` says, per stream and partition,
where the saved state leaves off (None: never read, from start_date); the test then checks
against the simulator's own data that every record at or after it is read (no gap) and none
before it (only boundary repeats, or the stream's documented lookback)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kit.cli import Output, read_in_process
from kit.documents import make_catalog, make_config
from kit.sim import simulator
from kit.truth import expected
from klaviyo_simulator.server import Simulator
from klaviyo_source.state import read_state
from klaviyo_source.streams.table import LISTINGS, STREAMS_BY_NAME, PartitionKey
from klaviyo_source.times import format_time, parse_time

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "state_3x").glob("*.json"))
NOW = int(datetime(2024, 7, 1, tzinfo=UTC).timestamp())  # the data the fixtures' cursors point into
SIZES = {"events": 300, "profiles": 120, "campaigns": 12, "flows": 4, "lists": 3, "templates": 5}
LOOKBACK_US = {"global_exclusions": 3600 * 1_000_000}  # Airbyte 3.x re-reads the last hour
ADVANCE = {
    "events": 40, "profiles_updated": 6, "profiles_suppressed": 3, "profiles_created": 2,
    "campaigns_updated": 3, "flows_updated": 2, "templates_updated": 2, "lists_updated": 1,
    "metrics_updated": 1, "segments_updated": 1, "boundary": True,
}  # fmt: skip


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with simulator(sizes=SIZES, now=NOW) as running:
        yield running


def partitions(sim: Simulator, stream: str) -> dict[str, str]:
    """Record id -> the label of its partition, as the fixtures name them ('*' when unpartitioned)."""
    store = sim.store
    if stream.startswith("events"):
        metrics = store.records_view("metric")
        return {
            event: metrics[store.events.cols.metric[row]].id for row, event in enumerate(store.event_ids())
        }
    if stream.startswith("campaigns"):
        return {
            c.id: f"{c.hidden['messages.channel']}/{str(c.attributes['archived']).lower()}"
            for c in store.records("campaign")
        }
    if stream == "flows":
        return {f.id: str(f.attributes["archived"]).lower() for f in store.records("flow")}
    return {}


def us(text: str | None) -> int | None:
    if text is None:
        return None
    moment = parse_time(text)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def check_continued(sim: Simulator, out: Output, bounds_by_stream: dict[str, dict[str, str | None]]) -> None:
    """Every record at or after its partition's bound was read, none before it (less the lookback)."""
    assert out.code == 0, out.errors()
    truth = expected(sim.store)
    for stream, bounds in bounds_by_stream.items():
        labels = partitions(sim, stream)
        got = [r["id"] for r in out.records(stream)]
        assert len(got) == len(set(got)), f"{stream}: a record read twice in one sync"
        must, may = set(), set()
        for record_id, cursor in truth[stream].items():
            label = labels.get(record_id, "*")
            if label not in bounds and "*" not in bounds:
                continue  # a partition the config does not read (a metric not in event_metric_ids)
            bound = us(bounds.get(label, bounds.get("*")))
            assert cursor is not None
            if bound is None or cursor >= bound:
                must.add(record_id)
            if bound is None or cursor >= bound - LOOKBACK_US.get(stream, 0):
                may.add(record_id)
        assert must, f"{stream}: the state should leave something to read"
        assert must <= set(got), f"{stream}: missing after the saved state: {sorted(must - set(got))[:5]}"
        assert set(got) <= may, f"{stream}: re-read before the saved state: {sorted(set(got) - may)[:5]}"
        assert out.states(stream), f"{stream}: no state emitted"


def label_of(key: PartitionKey) -> str:
    """Our partition key as the fixtures label partitions."""
    values = dict(key)
    if "campaign_type" in values:
        return f"{values['campaign_type']}/{values['archived']}"
    return next(iter(values.values()), "*")


def bounds_of(stream: str, state: Any, config: dict[str, Any]) -> dict[str, str | None]:
    """Where an emitted state leaves off, per partition label (None: never read)."""
    row = STREAMS_BY_NAME[stream]
    ids = tuple(i.strip() for i in config.get("event_metric_ids", "").split(",") if i.strip())
    listing = LISTINGS[row.listing].configured(ids)
    saved = read_state(row, state, listing)
    return {
        label_of(p.key): format_time(saved[p.key]) if p.key in saved else None for p in listing.partitions
    }


@pytest.mark.parametrize("fixture", FIXTURES, ids=[path.stem for path in FIXTURES])
def test_state_shape_is_continued_without_gap_or_reread(
    sim: Simulator, fixture: Path, tmp_path: Path
) -> None:
    doc: dict[str, Any] = json.loads(fixture.read_text())
    config = make_config(sim, **doc["config"])
    streams = list(doc["expect"])
    sim.advance(**ADVANCE)
    time.sleep(1.1)  # a read stops at its start second: let the new records' second pass
    out = read_in_process(tmp_path, config=config, catalog=make_catalog(streams), state=doc["state"])
    check_continued(sim, out, doc["expect"])
    ids = doc["config"].get("event_metric_ids")
    for stream in (s for s in streams if s.startswith("events") and ids):
        final = out.states(stream)[-1]  # Airbyte 3.x's shape: one partition per metric id
        assert [p["partition"] for p in final["states"]] == [
            {"event_metric_id": i.strip()} for i in ids.split(",")
        ]
    # and our state continues from there: the next changes, boundary second included
    states = out.final_states()
    sim.advance(**ADVANCE)
    time.sleep(1.1)
    again = read_in_process(tmp_path, config=config, catalog=make_catalog(streams), state=states)
    check_continued(sim, again, {s: bounds_of(s, states[s], doc["config"]) for s in streams})


def test_metric_names_in_event_metric_ids_are_resolved_to_ids(sim: Simulator, tmp_path: Path) -> None:
    """Going beyond Airbyte: a metric name stands for its id(s); an unknown value is kept (warned)."""
    out = read_in_process(
        tmp_path,
        config=make_config(sim, event_metric_ids="Opened Email, FJMnd0,nope"),
        catalog=make_catalog(["events"], "full_refresh"),
    )
    assert out.code == 0, out.errors()
    labels = partitions(sim, "events")
    want = {e for e, metric in labels.items() if metric in ("pqW3j3", "FJMnd0")}
    assert {r["id"] for r in out.records("events")} == want
    final = out.states("events")[-1]
    assert [p["partition"]["event_metric_id"] for p in final["states"]] == ["pqW3j3", "FJMnd0", "nope"]
    logs = "\n".join(out.logs())
    assert "'Opened Email' is the name of pqW3j3" in logs and "'nope' is neither an id nor a name" in logs


def test_a_blank_start_date_reads_everything_and_says_so(sim: Simulator, tmp_path: Path) -> None:
    """Airbyte 3.x would start one year back; we read all data (as 2.x) and say so in the log."""
    config = make_config(sim, start_date="")
    out = read_in_process(tmp_path, config=config, catalog=make_catalog(["lists", "metrics"]))
    assert out.code == 0, out.errors()
    assert {r["id"] for r in out.records("lists")} == set(expected(sim.store)["lists"])
    assert any("start_date is not set" in line and "since 2012-01-01" in line for line in out.logs())
    resumed = read_in_process(
        tmp_path, config=config, catalog=make_catalog(["lists"]), state=out.final_states()
    )
    assert not any("start_date is not set" in line for line in resumed.logs())  # every stream has state
