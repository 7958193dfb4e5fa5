"""`source-klaviyo spec|check|discover|read`: the Airbyte protocol commands.

    spec
    check    --config FILE
    discover --config FILE
    read     --config FILE --catalog FILE [--state FILE]
    <verb> --help, --help, --version

stdout carries only protocol messages, one JSON object per line (anything else that Python or a
library prints goes to stderr). Exit codes: 0 on success; 1 when a stream failed or the config,
catalog or state is unusable (reported as one TRACE ERROR with failure_type config_error).
`check` reports its verdict as CONNECTION_STATUS and exits 0 whenever it could deliver one
(as Airbyte's CDK does); only an unreadable config file makes it exit 1.
The config is loaded by `klaviyo_source.config.load_config` (the one loader of every face): the
API key comes from KLAVIYO_API_KEY only when the config has none. Ctrl-C or SIGTERM during read
prints one line on stderr and exits 130 / 143.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import orjson

from klaviyo_source.airbyte import messages
from klaviyo_source.airbyte.catalog import discovered_streams, parse_configured_catalog
from klaviyo_source.airbyte.sink import AirbyteSink, StreamFailure, describe, failure_type_of
from klaviyo_source.airbyte.state_input import parse_state
from klaviyo_source.config import Config, load_config, read_config_file, secrets_of
from klaviyo_source.engine.contract import StreamStatus
from klaviyo_source.errors import (
    AccessError,
    ConfigError,
    KlaviyoSourceError,
    NoAnswerError,
    TransientError,
    UnreachableError,
)
from klaviyo_source.interrupt import Interrupted, run_interruptible
from klaviyo_source.streams.table import STREAMS

CHECK_RETRIES = 1
CHECK_TIMEOUT = 20.0
CHECK_MAX_RATE_LIMIT_WAIT = 30.0


@dataclass(frozen=True)
class Verb:
    """One protocol verb: what it does and the file options it takes (name, required, help)."""

    summary: str
    files: tuple[tuple[str, bool, str], ...] = ()


CONFIG_OPTION = ("config", True, "the connector config (JSON); see `source-klaviyo spec`")
VERBS: dict[str, Verb] = {
    "spec": Verb("Print the connector's SPEC (the config keys it accepts)."),
    "check": Verb(
        "Check that the config is valid and the API key can read Klaviyo: one CONNECTION_STATUS.",
        (CONFIG_OPTION,),
    ),
    "discover": Verb("Print the CATALOG: every stream, its schema, sync modes and keys.", (CONFIG_OPTION,)),
    "read": Verb(
        "Read the streams of a configured catalog: RECORD, STATE, TRACE and LOG messages on stdout.",
        (
            CONFIG_OPTION,
            ("catalog", True, "the configured catalog (JSON): streams and sync modes"),
            ("state", False, "saved state (JSON) to resume from; omit for a first sync"),
        ),
    ),
}
VERB_FILES: dict[str, tuple[tuple[str, bool], ...]] = {
    name: tuple((option, required) for option, required, _ in verb.files) for name, verb in VERBS.items()
}
HELP_FLAGS = ("-h", "--help")


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports problems as ConfigError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"Invalid command line for '{self.prog}': {message}. See '{self.prog} --help'.")


def verb_parser(verb: str) -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog=f"source-klaviyo {verb}",
        description=VERBS[verb].summary,
        add_help=False,
        epilog="stdout carries only Airbyte protocol messages (one JSON object per line). Exit "
        "codes: 0 success, 1 a stream failed or the input is unusable, 130/143 interrupted "
        "(Ctrl-C / SIGTERM).",
    )
    for name, required, text in VERBS[verb].files:
        parser.add_argument(f"--{name}", required=required, metavar="FILE", help=text)
    parser.add_argument("--debug", action="store_true", help="accepted like the Airbyte CDK; no effect")
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    return parser


def parse_args(verb: str, args: list[str]) -> dict[str, str | None]:
    namespace = verb_parser(verb).parse_args(args)
    return {name: getattr(namespace, name) for name, _ in VERB_FILES[verb]}


def usage() -> str:
    lines = ["usage: source-klaviyo <verb> [options]   (Airbyte protocol)", "", "verbs:"]
    lines += [f"  {name:<9} {verb.summary}" for name, verb in VERBS.items()]
    lines += ["", "Run 'source-klaviyo <verb> --help' for a verb's options; --version prints the version."]
    return "\n".join(lines)


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


@dataclass
class ReadSink(AirbyteSink):
    """AirbyteSink that also counts, per stream, the records covered by an emitted STATE (the
    records written since the stream's previous STATE, whichever way they came: dicts,
    Fragments or JSON texts)."""

    committed: dict[str, int] = field(default_factory=dict)

    async def state(self, stream: str, state: dict[str, Any]) -> None:
        covered = self._since_state.get(stream, 0)
        await super().state(stream, state)
        self.committed[stream] = self.committed.get(stream, 0) + covered


def interrupted_line(signal_name: str, sink: ReadSink) -> str:
    """The one stderr line after Ctrl-C or SIGTERM during read."""
    kept = ", ".join(f"{stream} {count:,}" for stream, count in sink.committed.items())
    covered = f"records covered by an emitted STATE: {kept}" if kept else "no STATE was emitted yet"
    return (
        f"source-klaviyo: interrupted by {signal_name}; stopped ({covered}). A read with the last "
        "emitted state resumes from there."
    )


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

    outcomes = asyncio.run(run_interruptible(read(config, selections, states, sink).outcomes()))
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


def run_verb(verb: str, args: list[str], sink: ReadSink) -> int:
    """Run one verb; every failure becomes a protocol message and an exit code."""
    try:
        if verb not in VERBS:
            raise ConfigError(
                f"Unknown command '{verb}'; expected one of: {', '.join(VERBS)} (or --help, --version)."
            )
        if any(arg in HELP_FLAGS for arg in args):
            sink.out.write(verb_parser(verb).format_help().encode())
            return 0
        files = parse_args(verb, args)
        if verb == "spec":
            sink.emit(messages.spec_message())
            return 0
        raw_config = read_config_file(str(files["config"]))
        sink.secrets = secrets_of(raw_config)
        try:
            config, warnings = load_config(raw_config)
        except ConfigError as error:
            if verb != "check":
                raise
            sink.emit(messages.connection_status(False, error.message))
            return 0
        for warning in warnings:
            sink.emit(messages.log_message("WARN", warning))
        if verb == "check":
            sink.emit(check_message(config))
            return 0
        if verb == "discover":
            sink.emit(messages.catalog_message(discovered_streams()))
            return 0
        return run_read(config, files, sink)
    except ConfigError as error:
        sink.fail(error)
        return 1
    except (BrokenPipeError, Interrupted, KeyboardInterrupt):
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
    if not argv or argv[0] in HELP_FLAGS:
        stream.write((usage() + "\n").encode())
        stream.flush()
        return 0
    saved_stdout, sys.stdout = sys.stdout, sys.stderr  # stray prints must not corrupt the protocol
    sink = ReadSink(out=stream, secrets=secrets_of(None))
    try:
        return run_verb(argv[0], argv[1:], sink)
    except BrokenPipeError:  # the reader went away: nothing more can be said on stdout
        print("source-klaviyo: stdout was closed by the reader; stopping.", file=sys.stderr)
        if real_stdout:  # keep the interpreter's final flush from failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), saved_stdout.fileno())
        return 1
    except Interrupted as interrupted:
        print(interrupted_line(interrupted.name, sink), file=sys.stderr)
        return interrupted.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside the engine's run (e.g. during check)
        print(interrupted_line("SIGINT", sink), file=sys.stderr)
        return 130
    finally:
        sys.stdout = saved_stdout
