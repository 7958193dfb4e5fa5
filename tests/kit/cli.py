"""One runner for the `source-klaviyo` verbs and one object for what a run printed.

`run_cli(folder, verb, config=..., catalog=..., state=...)` writes the documents to files and
runs the verb as the platform does: a subprocess (`python -m klaviyo_source`), or, with
`in_process=True`, the same entrypoint in this process (faster; same code path). Either way the
environment holds no stray `KLAVIYO_API_KEY` unless `env` sets one, stdout must hold no
traceback, no output may hold a key, and every stdout line is validated against the Airbyte
protocol models (`kit.protocol_check`). The result is an `Output`, like Airbyte CDK's
`EntrypointOutput`: messages as JSON objects, helpers by kind, and the strict models.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import msgspec
from airbyte_protocol_dataclasses.models import airbyte_protocol as protocol

from kit.documents import write_documents
from kit.keys import find_secrets
from kit.protocol_check import parse_output
from kit.truth import record_key
from klaviyo_source.airbyte.entrypoint import main as airbyte_main

Message = dict[str, Any]
CLI_TIMEOUT = 240


@dataclass(frozen=True)
class Output:
    """What one run printed: exit code, raw pipes, every complete stdout line as JSON."""

    code: int  # the exit code
    messages: list[Message]
    stdout: bytes
    stderr: bytes = b""  # empty for in-process runs (pytest captures it)

    @cached_property
    def models(self) -> list[protocol.AirbyteMessage]:
        """The messages as strictly validated Airbyte protocol models."""
        return parse_output(self.stdout)

    def models_of(self, kind: str) -> list[protocol.AirbyteMessage]:
        return [m for m in self.models if m.type.value == kind]

    def of_type(self, kind: str) -> list[Message]:
        return [m for m in self.messages if m["type"] == kind]

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [m["record"]["data"] for m in self.of_type("RECORD") if m["record"]["stream"] == stream]

    def records_by_stream(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for message in self.of_type("RECORD"):
            found.setdefault(message["record"]["stream"], []).append(message["record"]["data"])
        return found

    def ids(self, stream: str) -> set[str]:
        return {record_key(stream, record) for record in self.records(stream)}

    def states(self, stream: str) -> list[dict[str, Any]]:
        return [
            m["state"]["stream"]["stream_state"]
            for m in self.of_type("STATE")
            if m["state"]["stream"]["stream_descriptor"]["name"] == stream
        ]

    def final_states(self) -> dict[str, Any]:
        """The last state each stream emitted."""
        return {m["state"]["stream"]["stream_descriptor"]["name"]: m["state"]["stream"]["stream_state"]
                for m in self.of_type("STATE")}  # fmt: skip

    def errors(self) -> list[dict[str, Any]]:
        """TRACE ERROR payloads in order (stream failures first, the run's summary last)."""
        return [m["trace"]["error"] for m in self.of_type("TRACE") if m["trace"]["type"] == "ERROR"]

    def stream_error(self, stream: str) -> dict[str, Any] | None:
        for error in self.errors():
            if (error.get("stream_descriptor") or {}).get("name") == stream:
                return error
        return None

    def statuses(self, stream: str) -> list[str]:
        return [
            m["trace"]["stream_status"]["status"]
            for m in self.of_type("TRACE")
            if m["trace"]["type"] == "STREAM_STATUS"
            and m["trace"]["stream_status"]["stream_descriptor"]["name"] == stream
        ]

    def logs(self) -> list[str]:
        return [m["log"]["message"] for m in self.of_type("LOG")]


def parse_lines(stdout: bytes) -> list[Message]:
    """Every complete stdout line as a JSON object (a line cut by a kill is dropped); integers of
    any size read exactly, as the platform's JSON reader does."""
    complete = stdout.split(b"\n")[:-1]  # the part after the last newline is empty or cut mid-line
    decode = msgspec.json.Decoder().decode
    return [decode(line) for line in complete]


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without a stray key, plus `env`."""
    return {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"} | (env or {})


def cli_argv(folder: Path, verb: str, **documents: Any) -> list[str]:
    """The command line of `verb` with its documents written to files in `folder`."""
    options = write_documents(folder, f"{verb}-", **documents)
    return [sys.executable, "-m", "klaviyo_source", verb, *options]


def config_key(documents: dict[str, Any]) -> tuple[str, ...]:
    """The config's API key, when it has one: it must not be printed either."""
    config = documents.get("config")
    key = config.get("api_key") if isinstance(config, dict) else None
    return (key.strip(),) if isinstance(key, str) and key.strip() else ()


def check_output(stdout: bytes, stderr: bytes, keys: tuple[str, ...]) -> None:
    """No key in any output, no traceback on stdout."""
    for name, output in (("stdout", stdout), ("stderr", stderr)):
        assert not find_secrets(output, keys), f"API key leaked to {name}"
    assert b"Traceback" not in stdout


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ replaced by `values` for the block (an in-process run sees what a child would)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(
    folder: Path,
    verb: str,
    *,
    in_process: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
    **documents: Any,
) -> Output:
    """Run `source-klaviyo <verb>` with `documents` (config, catalog, state; a str is raw text)."""
    argv = cli_argv(folder, verb, **documents)
    if in_process:
        out = io.BytesIO()
        with environment(cli_env(env)):
            code = airbyte_main(argv[3:], out=out)
        stdout, stderr = out.getvalue(), b""
    else:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, env=cli_env(env), check=False)
        code, stdout, stderr = done.returncode, done.stdout, done.stderr
    check_output(stdout, stderr, config_key(documents))
    output = Output(code, parse_lines(stdout), stdout, stderr)
    _ = output.models  # every line must be a valid Airbyte message (raises ProtocolViolation)
    return output


def read_in_process(folder: Path, **documents: Any) -> Output:
    """`run_cli(folder, "read", in_process=True, **documents)`, the reliability suite's usual run."""
    return run_cli(folder, "read", in_process=True, **documents)
