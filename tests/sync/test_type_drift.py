"""Type drift end to end (issue 12 item 4): the simulator changes fields' JSON types from a given
record on; `sync` loads every record into DuckDB and Postgres, widens the columns with a notice,
and keeps integers beyond 64 bits exact."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from kit.sim import simulator
from klaviyo_source.destinations import open_destination
from klaviyo_source.sync.command import parse_args, run_sync

EVENTS = 2500
START_BIG, START_TEXT = 2000, 1000


def drift(base_url: str, **rule: Any) -> None:
    request = urllib.request.Request(f"{base_url}/__sim/drift", data=json.dumps(rule).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_drifting_fields_widen_columns_and_keep_big_integers(destination_url: str, tmp_path: Path) -> None:
    with simulator(sizes={"events": EVENTS, "profiles": 50}, now=int(time.time()) - 60) as sim:
        drift(
            sim.base_url,
            resource="event",
            field="attributes.timestamp",
            to="big_integer",
            from_record=START_BIG,
        )
        drift(sim.base_url, resource="event", field="attributes.uuid", to="object", from_record=START_TEXT)
        drift(
            sim.base_url,
            resource="event",
            field="attributes.event_properties",
            to="null",
            from_record=START_TEXT,
        )
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"api_key": sim.api_key, "base_url": sim.base_url}))
        args = [
            "--config",
            str(config),
            "--destination",
            destination_url,
            "--progress",
            "none",
            "--streams",
            "events",
        ]
        report = asyncio.run(run_sync(parse_args(args, environ={})))
        assert report.exit_code == 0, report.error
        assert report.counts["events"].inserted == EVENTS

    dest = open_destination(destination_url, "check")
    try:
        table = dest.qualified("events")
        assert dest.table_columns("events")["timestamp"] == "json"  # was bigint: widened
        stamps = [r[0] for r in dest.query(f'SELECT CAST("timestamp" AS TEXT) FROM {table}')]
        big = sorted(int(s) for s in stamps if len(s) > 19)
        assert big == [2**70 + row for row in range(START_BIG, EVENTS)]  # every digit, every record
        assert len(stamps) == EVENTS and all(s.isdigit() for s in stamps)
        uuids = [r[0] for r in dest.query(f"SELECT CAST(uuid AS TEXT) FROM {table}")]
        assert sum(1 for u in uuids if u.startswith("{")) == EVENTS - START_TEXT
        assert all(json.loads(u)["value"] for u in uuids if u.startswith("{"))
        (nulls,) = dest.query(f"SELECT count(*) FROM {table} WHERE event_properties IS NULL")[0]
        assert nulls == EVENTS - START_TEXT
    finally:
        dest.close()
