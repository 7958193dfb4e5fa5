"""Shared pieces of the reliability suite: a small simulated account, configs and catalogs, the
`read` command run in-process or as a subprocess, its messages, and the simulator's ground truth.

Everything talks to servers on 127.0.0.1 over real sockets; nothing of our HTTP layer is mocked.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kit.truth import expected_ids, record_key
from klaviyo_simulator.controls import ControlOptions
from klaviyo_simulator.server import DEFAULT_KEY, Simulator, SimulatorOptions, start_in_thread
from klaviyo_source.airbyte.entrypoint import main as airbyte_main
from klaviyo_source.streams.table import STREAMS

Message = dict[str, Any]

ALL_STREAMS = [row.name for row in STREAMS]
# Small, multi-page data: profiles 100/page, templates and lists 10/page, events 1000/page.
SIZES = {"events": 1500, "profiles": 300, "campaigns": 12, "flows": 4, "lists": 3, "templates": 25}
SUBPROCESS_TIMEOUT = 120


@contextmanager
def simulator(seed: int = 11, sizes: dict[str, int] | None = None, **controls: Any) -> Iterator[Simulator]:
    """A simulated account on 127.0.0.1 with the given control options, stopped on exit."""
    options = SimulatorOptions(seed=seed, sizes=sizes or SIZES, controls=ControlOptions(**controls))
    with start_in_thread(options) as sim:
        yield sim


def make_config(sim: Simulator | None, **overrides: Any) -> dict[str, Any]:
    """A config with fast failure knobs (small timeouts, waits and backoff) for tests."""
    config: dict[str, Any] = {
        "api_key": sim.api_key if sim else "pk_reliability_no_server_0123456789",
        "base_url": sim.base_url if sim else "http://127.0.0.1:9",
        "start_date": "2020-01-01T00:00:00Z",
        "num_workers": 4,
        "max_retries": 3,
        "backoff_base": 0.01,
        "request_timeout": 5,
        "max_rate_limit_wait": 10,
    }
    config.update(overrides)
    return config


def catalog(streams: list[str], mode: str = "incremental") -> dict[str, Any]:
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


@dataclass
class ReadResult:
    """What one `read` printed, parsed; helpers pick messages by kind."""

    code: int
    messages: list[Message]
    stdout: bytes
    stderr: bytes = b""

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [
            m["record"]["data"]
            for m in self.messages
            if m["type"] == "RECORD" and m["record"]["stream"] == stream
        ]

    def ids(self, stream: str) -> set[str]:
        return {record_key(stream, record) for record in self.records(stream)}

    def states(self, stream: str) -> list[dict[str, Any]]:
        return [
            m["state"]["stream"]["stream_state"]
            for m in self.messages
            if m["type"] == "STATE" and m["state"]["stream"]["stream_descriptor"]["name"] == stream
        ]

    def errors(self) -> list[dict[str, Any]]:
        """TRACE ERROR payloads in order (stream failures first, the run's summary last)."""
        return [
            m["trace"]["error"]
            for m in self.messages
            if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"
        ]

    def stream_error(self, stream: str) -> dict[str, Any] | None:
        for error in self.errors():
            if (error.get("stream_descriptor") or {}).get("name") == stream:
                return error
        return None

    def statuses(self, stream: str) -> list[str]:
        return [
            m["trace"]["stream_status"]["status"]
            for m in self.messages
            if m["type"] == "TRACE"
            and m["trace"]["type"] == "STREAM_STATUS"
            and m["trace"]["stream_status"]["stream_descriptor"]["name"] == stream
        ]

    def logs(self) -> list[str]:
        return [m["log"]["message"] for m in self.messages if m["type"] == "LOG"]


def parse_lines(stdout: bytes) -> list[Message]:
    """Every complete stdout line as a JSON object (a line cut by a kill is dropped)."""
    lines = stdout.split(b"\n")
    complete = lines[:-1]  # the part after the last newline is empty or cut mid-line
    return [orjson.loads(line) for line in complete]


def write_documents(folder: Path, **documents: Any) -> list[str]:
    """Write config/catalog/state files; returns their command-line options."""
    argv: list[str] = []
    for name, document in documents.items():
        if document is None:
            continue
        path = folder / f"{name}.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        argv += [f"--{name}", str(path)]
    return argv


def assert_key_absent(documents: dict[str, Any], *outputs: bytes) -> None:
    """The config's key (and the simulator's default key) must appear in no output. pytest's own
    capture is scanned by tests/conftest.py; this covers output kept in memory or in pipes."""
    config = documents.get("config")
    keys = {DEFAULT_KEY}
    if isinstance(config, dict) and isinstance(config.get("api_key"), str) and config["api_key"].strip():
        keys.add(config["api_key"].strip())
    for output in outputs:
        assert not any(key.encode() in output for key in keys), "API key leaked into the output"


def read_in_process(folder: Path, **documents: Any) -> ReadResult:
    """`source-klaviyo read` through the entrypoint in this process (fast; same code path as the CLI)."""
    out = io.BytesIO()
    code = airbyte_main(["read", *write_documents(folder, **documents)], out=out)
    stdout = out.getvalue()
    assert_key_absent(documents, stdout)
    return ReadResult(code, parse_lines(stdout), stdout)


def cli_argv(folder: Path, verb: str, **documents: Any) -> list[str]:
    return [sys.executable, "-m", "klaviyo_source", verb, *write_documents(folder, **documents)]


def cli_env() -> dict[str, str]:
    """The parent's environment without a stray key, so only the config's key is in play."""
    return {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"}


def read_subprocess(folder: Path, **documents: Any) -> ReadResult:
    """The real CLI as the platform runs it."""
    done = subprocess.run(
        cli_argv(folder, "read", **documents),
        capture_output=True,
        timeout=SUBPROCESS_TIMEOUT,
        env=cli_env(),
        check=False,
    )
    assert_key_absent(documents, done.stdout, done.stderr)
    return ReadResult(done.returncode, parse_lines(done.stdout), done.stdout, done.stderr)


def truth(sim: Simulator, stream: str) -> set[str]:
    """Ids every complete read of `stream` must contain, from the simulator's store."""
    return expected_ids(sim.store, stream)
