"""Ctrl-C and SIGTERM during `sync` and `read`: what was kept is said, exit 130 / 143, no traceback."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import duckdb
import pytest
from cli_commands import BIN, command_env, sim_config, write_json

from klaviyo_simulator.server import Simulator
from klaviyo_source.streams.table import DEFAULT_STREAMS

CATALOG = {
    "streams": [
        {"stream": {"name": name}, "sync_mode": "incremental", "destination_sync_mode": "append"}
        for name in ("metrics", "profiles", "events", "campaigns_detailed")
    ]
}


def start(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    """One of our commands, its output piped (text)."""
    return subprocess.Popen(
        [str(BIN / argv[0]), *argv[1:]],
        cwd=cwd,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupt_after_a_state(argv: list[str], signum: int, cwd: Path) -> tuple[int, str, str]:
    """Start `read`, send `signum` once it has written a STATE line, and wait for it to end."""
    process = start(argv, cwd)
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    stated = threading.Event()

    def pump(stdout: IO[str]) -> None:
        for line in stdout:
            lines.append(line)
            if '"type":"STATE"' in line:
                stated.set()

    reader = threading.Thread(target=pump, args=(process.stdout,), daemon=True)
    reader.start()
    stated.wait(60)
    process.send_signal(signum)
    err = process.stderr.read()
    process.wait(60)
    reader.join(60)
    return process.returncode, "".join(lines), err


def interrupt(argv: list[str], sim: Simulator, signum: int, cwd: Path) -> tuple[int, str, str]:
    """Start a command, send `signum` once it has made requests, and wait for it to end."""
    started = sim.controls.stats()["requests_total"]
    process = start(argv, cwd)
    deadline = time.monotonic() + 60
    while sim.controls.stats()["requests_total"] < started + 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def committed(err: str) -> dict[str, int]:
    return {
        m[1]: int(m[2].replace(",", "")) for m in re.finditer(r"^  (\w+): ([\d,]+) rows committed", err, re.M)
    }


def test_sigterm_during_sync_commits_what_is_safe_and_says_so(
    slow_sim: Simulator, tmp_path: Path, assert_no_secret: object
) -> None:
    config = write_json(tmp_path / "config.json", sim_config(slow_sim))
    argv = ["klaviyo-source", "sync", "--config", config, "--destination", "k.duckdb", "--progress", "none"]
    code, out, err = interrupt(argv, slow_sim, signal.SIGTERM, tmp_path)
    assert code == 143, err
    assert "klaviyo-source sync: interrupted by SIGTERM; stopped reading and kept what was committed." in err
    assert "Run the same command again to resume." in err and "Traceback" not in err
    kept = committed(err)
    assert set(kept) == set(DEFAULT_STREAMS)
    with duckdb.connect(str(tmp_path / "k.duckdb"), read_only=True) as con:
        run = con.execute("SELECT exit_code, interrupted_by FROM klaviyo._klaviyo_sync_runs").fetchall()
        assert run == [(143, "SIGTERM")]
        for stream, rows in kept.items():
            exists = con.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = 'klaviyo' AND table_name = ?",
                [stream],
            ).fetchone()
            in_table = (
                con.execute(f"SELECT count(*) FROM klaviyo.{stream}").fetchone()
                if exists and exists[0]
                else (0,)
            )
            assert in_table is not None and in_table[0] == rows, stream
    assert "sync " in out and "total" in out  # the summary table still printed
    assert_no_secret(out, err, extra=(slow_sim.api_key,))  # type: ignore[operator]


def test_ctrl_c_during_an_overwrite_sync_says_it_starts_over(slow_sim: Simulator, tmp_path: Path) -> None:
    config = write_json(tmp_path / "config.json", sim_config(slow_sim))
    argv = ["klaviyo-source", "sync", "--config", config, "--destination", "k.duckdb", "--write", "overwrite"]
    code, _, err = interrupt([*argv, "--progress", "none"], slow_sim, signal.SIGINT, tmp_path)
    assert code == 130, err
    assert "interrupted by SIGINT" in err and "resume" not in err
    assert "the next run starts over" in err and "Traceback" not in err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_read_prints_one_line(
    slow_sim: Simulator, tmp_path: Path, signum: int, code: int
) -> None:
    config = write_json(tmp_path / "config.json", sim_config(slow_sim))
    catalog = write_json(tmp_path / "catalog.json", CATALOG)
    argv = ["source-klaviyo", "read", "--config", config, "--catalog", catalog]
    got, out, err = interrupt_after_a_state(argv, signum, tmp_path)
    assert got == code
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    name = signal.Signals(signum).name
    assert lines[0].startswith(f"source-klaviyo: interrupted by {name}; stopped (")
    assert "A read with the last emitted state resumes from there." in lines[0]
    assert slow_sim.api_key not in out + err
    # The counts are each stream's RECORD lines before its last STATE (events come pre-serialized).
    covered: dict[str, int] = {}
    since: dict[str, int] = {}
    for message in map(json.loads, out.splitlines()):
        if message["type"] == "RECORD":
            stream = message["record"]["stream"]
            since[stream] = since.get(stream, 0) + 1
        elif message["type"] == "STATE":
            stream = message["state"]["stream"]["stream_descriptor"]["name"]
            covered[stream] = covered.get(stream, 0) + since.pop(stream, 0)
    said = dict(re.findall(r"(\w+) ([\d,]+)", lines[0].split("emitted STATE: ", 1)[-1]))
    assert {stream: int(count.replace(",", "")) for stream, count in said.items()} == covered
