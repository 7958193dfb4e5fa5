"""PyAirbyte in merge mode over a short stretch of the three months (kit/timeline.py): after the
deletions, lifted suppressions and removed members, the cache's rows without
`_ab_cdc_deleted_at` are exactly the simulator's live records, and every vanished key's row
carries the marker.

PyAirbyte 0.71's merge updates a row with the deletion record (it does not drop it; Airbyte's
destinations in dedup mode do), so the live set is `WHERE _ab_cdc_deleted_at IS NULL`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_pyairbyte import SOURCE_EXECUTABLE, pyairbyte_python

from kit.documents import make_config
from kit.keys import FULL_KEY
from kit.sim import simulator
from kit.timeline import SIZES, TIMELINE, apply
from kit.truth import expected
from klaviyo_source.streams.table import STREAMS_BY_NAME

STREAMS = ["campaigns", "profiles", "global_exclusions", "list_memberships", "email_templates"]

SCRIPT = """
import json, sys
import airbyte as ab

config, executable, cache_dir, streams = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
source = ab.get_source("source-klaviyo", config=config, local_executable=executable)
source.select_streams(streams.split(","))
cache = ab.DuckDBCache(db_path=cache_dir + "/cache.duckdb", cache_dir=cache_dir)
result = source.read(cache=cache, write_strategy="merge")
print("RESULT " + json.dumps({"processed": result.processed_records}))
"""


def merge_read(python: Path, config: dict[str, Any], workdir: Path) -> None:
    script = workdir / "merge_with_pyairbyte.py"
    script.write_text(SCRIPT)
    cache = workdir / "cache"
    cache.mkdir(exist_ok=True)
    env = os.environ | {
        "DO_NOT_TRACK": "1",
        "AIRBYTE_OFFLINE_MODE": "1",
        "AIRBYTE_LOGGING_ROOT": str(workdir),
    }
    env.pop("KLAVIYO_API_KEY", None)
    argv = [
        str(python),
        str(script),
        json.dumps(config),
        str(SOURCE_EXECUTABLE),
        str(cache),
        ",".join(STREAMS),
    ]
    done = subprocess.run(argv, capture_output=True, cwd=workdir, env=env, timeout=600, check=False)
    output = done.stdout.decode() + done.stderr.decode()
    assert FULL_KEY not in output
    assert done.returncode == 0, output[-4000:]


def cached(workdir: Path) -> dict[str, tuple[set[str], set[str]]]:
    """Per stream: (keys without the marker, keys with it), from PyAirbyte's DuckDB cache."""
    out = {}
    with duckdb.connect(str(workdir / "cache" / "cache.duckdb"), read_only=True) as con:
        for stream in STREAMS:
            key = " || '/' || ".join(STREAMS_BY_NAME[stream].primary_key)
            rows = con.execute(f"SELECT {key}, _ab_cdc_deleted_at IS NOT NULL FROM main.{stream}").fetchall()
            out[stream] = ({k for k, gone in rows if not gone}, {k for k, gone in rows if gone})
    return out


@pytest.mark.slow
def test_pyairbyte_merge_mode_ends_with_the_live_set(tmp_path: Path) -> None:
    python = pyairbyte_python()
    with simulator(sizes=SIZES, seed=5, keys={FULL_KEY: None}, now=int(time.time()) - 60) as sim:
        config = {**make_config(sim), "deletion_check_days": 0}
        merge_read(python, config, tmp_path)
        before = {stream: set(rows) for stream, rows in expected(sim.store).items() if stream in STREAMS}
        for step in TIMELINE[1:4]:  # deletions, GDPR deletions and a lifted suppression, removed members
            apply(sim, step)
        time.sleep(1.1)  # the next sync's windows end at its start second
        merge_read(python, config, tmp_path)
        truth = expected(sim.store)
    found = cached(tmp_path)
    for stream in STREAMS:
        live, marked = found[stream]
        assert live == set(truth[stream]), stream
        assert marked == before[stream] - set(truth[stream]), stream
    assert all(
        found[stream][1] for stream in ("campaigns", "profiles", "global_exclusions", "list_memberships")
    )
