"""`klaviyo-source demo` end to end at small scale: simulator -> sync -> advance -> sync -> answers."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from klaviyo_source.streams.table import DEFAULT_STREAMS
from klaviyo_source.sync.demo import QUESTIONS, main


def test_demo_syncs_twice_and_answers_the_questions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "demo.duckdb"
    path.write_text("an old demo file is replaced")
    assert main(["demo", "--scale", "small", "--path", str(path), "--progress", "none"]) == 0
    out = capsys.readouterr().out
    for title, _ in QUESTIONS:
        assert title in out
    assert "first sync" in out and "incremental sync" in out
    with duckdb.connect(str(path), read_only=True) as con:
        ((syncs,),) = con.execute("SELECT count(DISTINCT _sync_id) FROM klaviyo.events").fetchall()
        ((streams,),) = con.execute("SELECT count(*) FROM klaviyo._klaviyo_state").fetchall()
    assert syncs == 2  # the incremental sync added the new events
    assert streams == len(DEFAULT_STREAMS)  # every stream's state committed (reports are opt-in)
