"""PyAirbyte (the real `airbyte` package from PyPI) reads every stream from our `source-klaviyo`
executable into its DuckDB cache, against the simulator; a second read is incremental.

PyAirbyte pins its own airbyte-cdk/pydantic stack, so it lives in its own venv
(`.venv-pyairbyte` at the repository root), created on first use and reused afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

import pytest

from kit.documents import make_config
from kit.keys import FULL_KEY
from kit.sim import simulator
from kit.truth import report_ids
from klaviyo_source.streams.table import REPORT_STREAMS, STREAMS

ROOT = Path(__file__).resolve().parents[2]
PYAIRBYTE_VENV = ROOT / ".venv-pyairbyte"
PYAIRBYTE_REQUIREMENT = "airbyte==0.71.3"
SOURCE_EXECUTABLE = Path(sys.executable).parent / "source-klaviyo"

SCRIPT = """
import json, sys
import airbyte as ab

config, executable, cache_dir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
source = ab.get_source("source-klaviyo", config=config, local_executable=executable)
source.check()
source.select_all_streams()
cache = ab.DuckDBCache(db_path=cache_dir + "/cache.duckdb", cache_dir=cache_dir)
result = source.read(cache=cache)
counts = {name: len(dataset) for name, dataset in result.streams.items()}
print("RESULT " + json.dumps({"counts": counts, "processed": result.processed_records}))
"""


def pyairbyte_python() -> Path:
    """The venv's python with PyAirbyte installed (installing it once if needed)."""
    python = PYAIRBYTE_VENV / "bin" / "python"
    stamp = PYAIRBYTE_VENV / ".installed"
    if not (python.exists() and stamp.exists() and stamp.read_text() == PYAIRBYTE_REQUIREMENT):
        venv.create(PYAIRBYTE_VENV, with_pip=True, clear=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                PYAIRBYTE_REQUIREMENT,
            ],
            check=True,
            timeout=1800,
        )
        stamp.write_text(PYAIRBYTE_REQUIREMENT)
    return python


def pyairbyte_read(python: Path, config: dict[str, Any], workdir: Path) -> dict[str, Any]:
    script = workdir / "read_with_pyairbyte.py"
    script.write_text(SCRIPT)
    cache_dir = workdir / "cache"
    cache_dir.mkdir(exist_ok=True)
    env = os.environ | {
        "DO_NOT_TRACK": "1",
        "AIRBYTE_OFFLINE_MODE": "1",
        "AIRBYTE_LOGGING_ROOT": str(workdir / "logs"),
    }
    env.pop("KLAVIYO_API_KEY", None)
    done = subprocess.run(
        [str(python), str(script), json.dumps(config), str(SOURCE_EXECUTABLE), str(cache_dir)],
        capture_output=True,
        cwd=workdir,
        env=env,
        timeout=600,
        check=False,
    )
    output = done.stdout.decode() + done.stderr.decode()
    assert FULL_KEY not in output
    assert done.returncode == 0, output[-4000:]
    line = next(line for line in done.stdout.decode().splitlines() if line.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


@pytest.mark.slow
def test_pyairbyte_reads_every_stream_into_duckdb(tmp_path: Path) -> None:
    python = pyairbyte_python()
    sizes = {"events": 300, "profiles": 60, "campaigns": 12, "flows": 6, "lists": 4, "templates": 5}
    with simulator(sizes=sizes, keys={FULL_KEY: None}) as sim:
        config = make_config(sim)
        first = pyairbyte_read(python, config, tmp_path)
        counts = first["counts"]
        assert sorted(counts) == sorted(row.name for row in STREAMS)
        assert all(counts[name] > 0 for name in counts if name not in REPORT_STREAMS), counts
        # the report streams: yesterday's rows (kit.documents.REPORT_SETTINGS), as the simulator has them
        assert {name: counts[name] for name in REPORT_STREAMS} == {
            name: len(report_ids(sim.store, name)) for name in REPORT_STREAMS
        }
        assert counts["segment_series_reports"] > 0
        assert counts["events"] == counts["events_detailed"] == sizes["events"]
        assert counts["profiles"] == sizes["profiles"]

        changed = sim.advance(events=7, profiles_created=2, profiles_updated=3)
        time.sleep(1.1)  # the next sync's windows end at its start second
        second = pyairbyte_read(python, config, tmp_path)
    assert second["counts"]["events"] == counts["events"] + len(changed["events"])
    assert second["counts"]["profiles"] == counts["profiles"] + len(changed["profiles_created"])
    assert second["processed"] < first["processed"]  # incremental: PyAirbyte passed the saved state
