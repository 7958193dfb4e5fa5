"""docs/streams.md is generated from the stream rows and the spec: it must match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from klaviyo_source.streams.table import STREAMS

ROOT = Path(__file__).resolve().parents[2]


def test_streams_reference_is_fresh_and_lists_every_stream() -> None:
    done = subprocess.run(
        [sys.executable, "tools/gen_streams_doc.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    text = (ROOT / "docs" / "streams.md").read_text()
    for stream in STREAMS:
        assert f"| `{stream.name}` |" in text
