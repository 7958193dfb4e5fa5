"""Shared by the front-door tests: a small simulated account, a config for it, the pinned
clients (each in its own cached venv, see toolvenv.py) and the ground truth per stream."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.documents import REPORT_SETTINGS
from kit.sim import simulator as kit_simulator
from kit.truth import expected_ids
from klaviyo_simulator.server import Simulator
from klaviyo_source.streams.table import STREAMS, STREAMS_BY_NAME

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY = "pk_frontdoors_0123456789abcdef"
SIZES = {"events": 240, "profiles": 50, "campaigns": 8, "flows": 4, "lists": 3, "templates": 4}
STREAM_NAMES = [row.name for row in STREAMS]

# The real clients, pinned (a new pin makes a new cached venv).
TARGET_JSONL = ["target-jsonl==0.1.4"]
# target-duckdb (0.8.0) was tried first: it installs, but its headerless CSV COPY loses the first
# row of every batch (DuckDB sniffs it as a header), so the database target is Postgres.
TARGET_POSTGRES = ["meltanolabs-target-postgres==0.8.1"]
MELTANO = ["meltano==4.4.1"]
CDK = ["airbyte-cdk==7.39.1", "pytest==8.4.2"]
DAGSTER = ["dagster-dlt==0.29.27", "dlt[duckdb]"]  # + this checkout, editable


def simulator(seed: int = 7) -> AbstractContextManager[Simulator]:
    """A small account whose clock is a minute behind, so changes made now sort after it."""
    return kit_simulator(seed=seed, sizes=SIZES, keys={KEY: None}, now=int(time.time()) - 60)


def config(sim: Simulator) -> dict[str, Any]:
    return {
        "api_key": KEY,
        "base_url": sim.base_url,
        "start_date": "2020-01-01T00:00:00Z",
        "num_workers": 4,
        "max_retries": 1,
        "backoff_base": 0.01,
        **REPORT_SETTINGS,  # a call or two per report endpoint (2/min, 225/day)
    }


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def record_id(stream: str, record: dict[str, Any]) -> str:
    """A record's key as `truth` spells it: its primary key's values joined by '/'."""
    return stored_key(stream, "/".join(str(record[key]) for key in STREAMS_BY_NAME[stream].primary_key))


def key_sql(stream: str) -> str:
    """SQL for the same key (Postgres and DuckDB)."""
    return " || '/' || ".join(f'"{key}"' for key in STREAMS_BY_NAME[stream].primary_key)


def stored_key(stream: str, key: str) -> str:
    """A key as read back from a database, comparable with `truth`: a report stream's `date`
    (a timestamp column, rendered by each database its own way) becomes its UTC instant."""
    if STREAMS_BY_NAME[stream].report is None:
        return key
    moment, _, rest = key.partition("/")
    parsed = datetime.fromisoformat(moment.replace(" ", "T"))
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return f"{parsed.astimezone(UTC).isoformat()}/{rest}"


def truth(sim: Simulator) -> dict[str, set[str]]:
    """stream -> the ids a complete read must return (database keys: pass them to `stored_key`)."""
    return {name: {stored_key(name, key) for key in expected_ids(sim.store, name)} for name in STREAM_NAMES}


def advance(sim: Simulator) -> dict[str, Any]:
    """New and changed records stamped now; then wait a second (a sync's windows end at its start
    second, so the changes must be in the past when the next sync starts)."""
    changed = sim.advance(events=9, profiles_created=2, profiles_updated=3)
    time.sleep(1.1)
    return changed


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a client: no key from the outside, no usage tracking."""
    env = {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"}
    env |= {"DO_NOT_TRACK": "1", "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return env | extra
