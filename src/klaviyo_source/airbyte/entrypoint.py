"""`source-klaviyo spec|check|discover|read`: the Airbyte protocol commands.

    spec
    check    --config FILE
    discover --config FILE
    read     --config FILE --catalog FILE [--state FILE]

stdout carries only protocol messages, one JSON object per line (anything else that Python or a
library prints goes to stderr). Exit codes: 0 on success; 1 when a stream failed or the config,
catalog or state is unusable (reported as one TRACE ERROR with failure_type config_error).
`check` reports its verdict as CONNECTION_STATUS and exits 0 whenever it could deliver one
(as Airbyte's CDK does); only an unreadable config file makes it exit 1.
The API key may come from the KLAVIYO_API_KEY environment variable when the config has none.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import orjson

from klaviyo_source.airbyte import messages
from klaviyo_source.airbyte.catalog import discovered_streams, parse_configured_catalog
from klaviyo_source.airbyte.sink import AirbyteSink, StreamFailure, describe, failure_type_of
from klaviyo_source.airbyte.state_input import parse_state
from klaviyo_source.config import Config, parse_config
from klaviyo_source.engine.contract import StreamStatus
from klaviyo_source.errors import (
    AccessError,
    ConfigError,
    KlaviyoSourceError,
    NoAnswerError,
    TransientError,
    UnreachableError,
)
from klaviyo_source.streams.table import STREAMS

API_KEY_ENV = "KLAVIYO_API_KEY"
CHECK_RETRIES = 1
CHECK_TIMEOUT = 20.0
CHECK_MAX_RATE_LIMIT_WAIT = 30.0

# verb -> the file options it takes (name, required)
VERB_FILES: dict[str, tuple[tuple[str, bool], ...]] = {
    "spec": (),
    "check": (("config", True),),
    "discover": (("config", True),),
    "read": (("config", True), ("catalog", True), ("state", False)),
}


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports problems as ConfigError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"Invalid command line for '{self.prog}': {message}.")


def parse_args(verb: str, args: list[str]) -> dict[str, str | None]:
    parser = _ArgumentParser(prog=f"source-klaviyo {verb}", add_help=False)
    for name, required in VERB_FILES[verb]:
        parser.add_argument(f"--{name}", required=required, metavar="FILE")
    parser.add_argument("--debug", action="store_true")  # accepted like the Airbyte CDK; no effect
    namespace = parser.parse_args(args)
    return {name: getattr(namespace, name) for name, _ in VERB_FILES[verb]}


def read_json_file(path: str, option: str) -> Any:
    """A JSON document from a file; ConfigError naming the option and file otherwise."""
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"Cannot read the --{option} file '{path}': {error.strerror or error}.") from None
    if not text.strip():
        if option == "state":
            return None
        raise ConfigError(f"The --{option} file '{path}' is empty; expected a JSON object.")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ConfigError(f"The --{option} file '{path}' is not valid JSON ({error}).") from None


def secrets_of(raw_config: Any) -> tuple[str, ...]:
    """Every string that must never be printed: the key from the config and from the env."""
    found = [os.environ.get(API_KEY_ENV, "")]
    if isinstance(raw_config, dict) and isinstance(raw_config.get("api_key"), str):
        found.append(raw_config["api_key"])
    return tuple(sorted({secret.strip() for secret in found if secret.strip()}, key=len, reverse=True))


def load_config(raw: Any) -> Config:
    """parse_config, taking the key from KLAVIYO_API_KEY when the config has none."""
    has_key = isinstance(raw, dict) and isinstance(raw.get("api_key"), str) and raw["api_key"].strip()
    env_key = os.environ.get(API_KEY_ENV, "").strip()
    return parse_config(raw, api_key_override=env_key if not has_key and env_key else None)


# --- check -------------------------------------------------------------------------------------


async def _unreadable(config: Config) -> dict[str, tuple[str, ...]]:
    # imported lazily: spec/discover stay light
    from klaviyo_source.http.access import missing_scopes
    from klaviyo_source.http.client import KlaviyoClient, preflight

    async with KlaviyoClient(config, max_retries=CHECK_RETRIES) as client:
        await preflight(client)
        return await missing_scopes(client, [row.name for row in STREAMS])


def scope_report(unreadable: dict[str, tuple[str, ...]]) -> str:
    """`events, events_detailed (need events:read); lists (need lists:read)`, grouped by scopes."""
    by_scopes: dict[tuple[str, ...], list[str]] = {}
    for stream, scopes in unreadable.items():
        by_scopes.setdefault(scopes, []).append(stream)
    return "; ".join(
        f"{', '.join(streams)} (need {', '.join(scopes)})" for scopes, streams in by_scopes.items()
    )


def check_message(config: Config) -> dict[str, Any]:
    """A pre-flight request, then one cheap request per scope the streams need (few retries,
    short waits) -> one CONNECTION_STATUS: FAILED when the key is rejected, Klaviyo cannot be
    reached or no stream is readable; SUCCEEDED otherwise, naming the streams the key cannot
    read and the scopes they need (docs/airbyte.md, "check")."""
    probe_config = dataclasses.replace(
        config,
        request_timeout=min(config.request_timeout, CHECK_TIMEOUT),
        max_rate_limit_wait=min(config.max_rate_limit_wait, CHECK_MAX_RATE_LIMIT_WAIT),
    )
    try:
        unreadable = asyncio.run(_unreadable(probe_config))
    except (AccessError, UnreachableError) as error:
        return messages.connection_status(False, error.message)
    except NoAnswerError as error:
        text = (
            f"Could not reach Klaviyo at {config.base_url}: {error.message} "
            "Check base_url and the network (DNS, firewall, proxy)."
        )
        return messages.connection_status(False, text)
    except TransientError as error:
        text = f"Klaviyo at {config.base_url} is not answering normally: {error.message}"
        return messages.connection_status(False, text)
    except KlaviyoSourceError as error:
        return messages.connection_status(False, f"Unexpected answer from Klaviyo: {error.message}")
    if not unreadable:
        return messages.connection_status(True)
    if len(unreadable) == len(STREAMS):
        return messages.connection_status(
            False,
            f"The API key cannot read any stream: {scope_report(unreadable)}. Grant those scopes to the key.",
        )
    return messages.connection_status(
        True,
        f"Connected, but the API key cannot read {len(unreadable)} of {len(STREAMS)} streams: "
        f"{scope_report(unreadable)}. Grant those scopes to the key, or leave those streams out of "
        "the connection (they would fail the sync).",
    )


# --- read --------------------------------------------------------------------------------------


def run_read(config: Config, files: dict[str, str | None], sink: AirbyteSink) -> int:
    selections, warnings = parse_configured_catalog(read_json_file(str(files["catalog"]), "catalog"))
    states: dict[str, Any] = {}
    if files.get("state"):
        states, state_warnings = parse_state(read_json_file(str(files["state"]), "state"))
        warnings += state_warnings
    for warning in warnings:
        sink.emit(messages.log_message("WARN", warning))
    if not selections:
        return 0

    from klaviyo_source.engine import read  # the engine pulls in aiohttp; only read needs it

    outcomes = asyncio.run(read(config, selections, states, sink).outcomes())
    reported = {failure.stream for failure in sink.failures}
    missing: list[StreamFailure] = []
    for outcome in outcomes:
        if outcome.name in reported:
            continue
        if outcome.error is not None:
            message, _ = describe(outcome.error)
            missing.append(StreamFailure(outcome.name, message, failure_type_of(outcome.error)))
        elif outcome.status is StreamStatus.INCOMPLETE:
            missing.append(StreamFailure(outcome.name, "the stream did not complete", "system_error"))
    final = sink.final_error(missing)
    if final is None:
        return 0
    sink.emit(final)
    return 1


# --- main --------------------------------------------------------------------------------------


def run_verb(verb: str, args: list[str], sink: AirbyteSink) -> int:
    """Run one verb; every failure becomes a protocol message and an exit code."""
    try:
        if verb not in VERB_FILES:
            raise ConfigError(f"Unknown command '{verb}'; expected one of: {', '.join(VERB_FILES)}.")
        files = parse_args(verb, args)
        if verb == "spec":
            sink.emit(messages.spec_message())
            return 0
        raw_config = read_json_file(str(files["config"]), "config")
        sink.secrets = secrets_of(raw_config)
        if verb == "check":
            try:
                config = load_config(raw_config)
            except ConfigError as error:
                sink.emit(messages.connection_status(False, error.message))
                return 0
            sink.emit(check_message(config))
            return 0
        config = load_config(raw_config)
        if verb == "discover":
            sink.emit(messages.catalog_message(discovered_streams()))
            return 0
        return run_read(config, files, sink)
    except ConfigError as error:
        sink.fail(error)
        return 1
    except BrokenPipeError:
        raise
    except Exception as error:  # a bug: report it as a protocol message, never a bare traceback
        message, internal = describe(error)
        sink.emit(
            messages.error_trace(
                message,
                failure_type="system_error",
                internal_message=internal,
                stack_trace=traceback.format_exc(),
            )
        )
        return 1
    finally:
        sink.out.flush()


def main(argv: list[str], out: BinaryIO | None = None) -> int:
    """argv[0] is the verb (spec, check, discover or read); messages go to `out` (stdout)."""
    real_stdout = out is None
    stream = sys.stdout.buffer if out is None else out
    saved_stdout, sys.stdout = sys.stdout, sys.stderr  # stray prints must not corrupt the protocol
    try:
        return run_verb(argv[0], argv[1:], AirbyteSink(out=stream, secrets=secrets_of(None)))
    except BrokenPipeError:  # the reader went away: nothing more can be said on stdout
        print("source-klaviyo: stdout was closed by the reader; stopping.", file=sys.stderr)
        if real_stdout:  # keep the interpreter's final flush from failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), saved_stdout.fileno())
        return 1
    finally:
        sys.stdout = saved_stdout
