"""The documents a connector run takes: config, configured catalog and state, and their files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kit.keys import NO_SERVER_KEY
from klaviyo_simulator.server import Simulator
from klaviyo_source.streams.table import DEFAULT_STREAMS

# Every stream whose ground truth is in kit/truth.py (all but the Reporting API's: their numbers
# are checked against a recomputation from the events in tests/engine/test_report_streams.py).
ALL_STREAMS = list(DEFAULT_STREAMS)
# Report settings that keep a read of the report streams to a call or two per endpoint (the
# 2/min tier): yesterday only, one conversion metric, one aggregated metric.
REPORT_SETTINGS: dict[str, Any] = {
    "report_history_days": 1,
    "metric_ids": "Placed Order",
    "metric_aggregate_metrics": "Placed Order",
}


def make_config(sim: Simulator | None, **overrides: Any) -> dict[str, Any]:
    """A config for `sim` (or for no server) with fast failure knobs: small timeouts, waits and
    backoff, a few retries, and no late-events re-scan (tests of incremental boundaries then see
    exactly what changed; tests/engine/test_late_events.py covers the re-scan, whose default is
    168 hours). Overrides replace or add keys."""
    config: dict[str, Any] = {
        "api_key": sim.api_key if sim else NO_SERVER_KEY,
        "base_url": sim.base_url if sim else "http://127.0.0.1:9",
        "start_date": "2020-01-01T00:00:00Z",
        "num_workers": 4,
        "max_retries": 3,
        "backoff_base": 0.01,
        "request_timeout": 5,
        "max_rate_limit_wait": 10,
        "late_events_hours": 0,
        **REPORT_SETTINGS,
    }
    config.update(overrides)
    return config


def make_catalog(streams: list[str], mode: str = "incremental") -> dict[str, Any]:
    """A configured catalog selecting `streams` in sync mode `mode`."""
    return {
        "streams": [
            {
                "stream": {
                    "name": name,
                    "json_schema": {},
                    "supported_sync_modes": ["full_refresh", "incremental"],
                },
                "sync_mode": mode,
                "destination_sync_mode": "append",
            }
            for name in streams
        ]
    }


def state_document(states: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-stream states as the platform passes them back in --state."""
    return [
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": value}}
        for name, value in states.items()
    ]


def write_documents(folder: Path, prefix: str = "", **documents: Any) -> list[str]:
    """Write config/catalog/state files (a str is written as raw text; None is skipped);
    returns their command-line options."""
    argv: list[str] = []
    for name, document in documents.items():
        if document is None:
            continue
        path = folder / f"{prefix}{name}.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        argv += [f"--{name}", str(path)]
    return argv
