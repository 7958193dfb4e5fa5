"""The Airbyte face's time guards over real sockets: a start_date in the future is refused with a
config_error naming it (no traceback, no request); the trailing re-scan re-reads late events on
`read` with state, and its records keep their ids."""

from __future__ import annotations

import time
from pathlib import Path

from kit.cli import run_cli
from kit.documents import make_catalog, make_config, state_document
from kit.sim import simulator

SIZES = {"events": 200, "profiles": 20, "campaigns": 2, "lists": 1, "templates": 1, "flows": 1}


def test_a_future_start_date_is_refused_before_any_request(tmp_path: Path) -> None:
    with simulator(sizes=SIZES) as sim:
        config = make_config(sim, start_date="2099-01-01")
        for verb, documents in (("check", {}), ("read", {"catalog": make_catalog(["events"])})):
            ran = run_cli(tmp_path, verb, in_process=True, config=config, **documents)
            text = ran.stdout.decode()
            assert "'start_date' 2099-01-01 is in the future" in text and "Traceback" not in text, verb
        errors = ran.errors()
        assert ran.code == 1 and errors and errors[-1]["failure_type"] == "config_error"
        assert sim.controls.stats()["requests_total"] == 0


def test_read_with_state_re_reads_late_events(tmp_path: Path) -> None:
    with simulator(sizes=SIZES, now=int(time.time()) - 60) as sim:
        sim.advance(events=1)
        time.sleep(1.1)
        config = make_config(sim, late_events_hours=24)
        catalog = make_catalog(["events"])
        first = run_cli(tmp_path, "read", in_process=True, config=config, catalog=catalog)
        late = sim.advance(late_events=2, late_events_age=3 * 3600)["late_events"]
        second = run_cli(
            tmp_path,
            "read",
            in_process=True,
            config=config,
            catalog=catalog,
            state=state_document(first.final_states()),
        )
        assert second.code == 0 and set(late) <= second.ids("events")
        assert second.final_states()["events"]["datetime"] >= first.final_states()["events"]["datetime"]


def test_space_separated_datetimes_go_out_as_iso_8601(tmp_path: Path) -> None:
    with simulator(sizes=SIZES, quirk_space_datetimes=True) as sim:
        catalog = make_catalog(["events", "profile_subscriptions"])
        ran = run_cli(tmp_path, "read", in_process=True, config=make_config(sim), catalog=catalog)
        assert ran.code == 0
        events = ran.records("events")  # the pre-serialized fast path
        assert len(events) == sim.store.event_count
        assert all(r["datetime"][10] == "T" and r["attributes"]["datetime"] == r["datetime"] for r in events)
        consents = [
            r["consent_timestamp"] for r in ran.records("profile_subscriptions") if r["consent_timestamp"]
        ]
        assert consents and all(c[10] == "T" and c.endswith("+00:00") for c in consents)
