"""The Dagster example of docs/dlt.md, as written there, materialized with dagster-dlt (pinned,
in its own cached venv holding this checkout editable) from the simulator, with the report
streams selected by name: every stream becomes an asset and lands in DuckDB with the
simulator's rows."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from frontdoors.harness import DAGSTER, KEY, ROOT, STREAM_NAMES, clean_env, simulator, truth
from frontdoors.toolvenv import tool_venv
from klaviyo_source.streams.table import REPORT_STREAMS

RUN = """

from dagster import materialize
import json
result = materialize([klaviyo_assets], resources={"dlt": DagsterDltResource()})
assert result.success
pipeline = dlt.attach("klaviyo_pipeline")
tables = pipeline.default_schema.data_table_names(seen_data_only=True)
with pipeline.sql_client() as client:
    counts = {t: client.execute_sql(f'select count(*) from "{t}"')[0][0] for t in tables}
print("RESULT " + json.dumps(counts))
"""


def dagster_example() -> str:
    text = (ROOT / "docs" / "dlt.md").read_text()
    section = text[text.index("## Dagster") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match
    return match.group(1)


def every_stream(example: str) -> str:
    """The example with the report streams selected too (by default they are not: their 2/min
    tier and 225/day quota make them opt-in, as for `klaviyo-source sync`)."""
    call = 'klaviyo(start_date="2024-01-01")'
    assert example.count(call) == 1
    return f"STREAMS = {STREAM_NAMES!r}\n" + example.replace(call, call[:-1] + ", streams=STREAMS)")


def test_the_documented_dagster_asset_materializes_every_stream(tmp_path: Path) -> None:
    python = tool_venv("dagster", [*DAGSTER, "-e", str(ROOT)]) / "python"
    (tmp_path / "definitions.py").write_text(every_stream(dagster_example()) + RUN)
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with simulator(seed=14) as sim:
        env = clean_env(
            HOME=str(tmp_path),
            DLT_DATA_DIR=str(tmp_path / "dlt"),  # as root, dlt would keep pipelines in /var/dlt
            DAGSTER_HOME=str(tmp_path),
            RUNTIME__DLTHUB_TELEMETRY="false",
            SOURCES__KLAVIYO__API_KEY=KEY,
            SOURCES__KLAVIYO__BASE_URL=sim.base_url,
            SOURCES__KLAVIYO__NUM_WORKERS="4",
        )
        done = subprocess.run(
            [str(python), "definitions.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        expected = truth(sim)
    assert KEY not in done.stdout + done.stderr
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    counts = json.loads(line.removeprefix("RESULT "))
    # dlt creates a table once a row arrives; start_date 2024-01-01 (the documented example) keeps all
    # the report streams, selected by name, read with their defaults (30 days, every metric): not
    # kit.truth's one day of one metric; their numbers are checked in tests/engine/test_report_streams.py
    reports = {name: counts.pop(name, 0) for name in REPORT_STREAMS}
    assert reports["segment_series_reports"] == 30 * len(sim.store.records_view("segment")), reports
    assert counts == {name: len(ids) for name, ids in expected.items() if ids and name not in reports}, counts
