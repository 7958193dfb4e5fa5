"""`tap-klaviyo-source`: a Singer tap on the same engine as `source-klaviyo`.

    tap-klaviyo-source --config CONFIG --discover
    tap-klaviyo-source --config CONFIG --catalog CATALOG [--state STATE]   (or --properties)
    tap-klaviyo-source --about [--format json|markdown]

stdout carries only Singer messages. Exit 0 when every selected stream completed; 1 with one
`tap-klaviyo-source ERROR: ...` line on stderr when the config, catalog or state document is
unusable, or when a stream failed (a bookmark it cannot read, a missing scope...: the other
streams' records and bookmarks are still written). The API key may come from KLAVIYO_API_KEY
when the config has none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any, BinaryIO, NoReturn

import orjson

from klaviyo_source.airbyte.entrypoint import read_json_file
from klaviyo_source.config import CONNECTION_SPECIFICATION, load_config, secrets_of
from klaviyo_source.engine.contract import StreamStatus
from klaviyo_source.errors import ConfigError
from klaviyo_source.singer.catalog import discovered_catalog, parse_catalog, parse_singer_state
from klaviyo_source.singer.sink import PROGRAM, SingerSink

CAPABILITIES = ["catalog", "discover", "state", "properties", "about"]


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"Invalid command line: {message} (see {PROGRAM} --help).")


def parser() -> argparse.ArgumentParser:
    args = _ArgumentParser(prog=PROGRAM, description="Singer tap for Klaviyo (klaviyo-source engine).")
    args.add_argument("--config", "-c", metavar="FILE", help="config JSON (same keys as source-klaviyo)")
    args.add_argument("--discover", "-d", action="store_true", help="print the catalog")
    args.add_argument("--catalog", metavar="FILE", help="selected catalog")
    args.add_argument("--properties", "-p", metavar="FILE", help="selected catalog (old name)")
    args.add_argument("--state", "-s", metavar="FILE", help='state JSON: {"bookmarks": {...}}')
    args.add_argument("--about", action="store_true", help="describe the tap")
    args.add_argument("--format", choices=("json", "markdown"), default="markdown", help="--about format")
    return args


def about() -> dict[str, Any]:
    try:
        package_version = version("klaviyo-source")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        package_version = "0.0.0"
    return {
        "name": PROGRAM,
        "description": "Klaviyo (profiles, events, campaigns, flows, lists, metrics, templates, "
        "global exclusions) as a Singer tap, on the klaviyo-source engine.",
        "version": package_version,
        "capabilities": CAPABILITIES,
        "settings": CONNECTION_SPECIFICATION,
    }


def about_markdown(info: dict[str, Any]) -> str:
    lines = [f"# {info['name']} {info['version']}", "", info["description"], ""]
    lines += ["## Capabilities", "", *(f"- {item}" for item in info["capabilities"]), "", "## Settings", ""]
    lines += ["| name | type | description |", "| --- | --- | --- |"]
    for name, prop in info["settings"]["properties"].items():
        lines.append(f"| {name} | {prop['type']} | {prop.get('description', '')} |")
    return "\n".join(lines)


def run_sync(
    raw_config: Any, catalog_path: str, state_path: str | None, secrets: tuple[str, ...], out: BinaryIO
) -> int:
    config, config_warnings = load_config(raw_config)
    streams, warnings = parse_catalog(read_json_file(catalog_path, "catalog"))
    warnings = config_warnings + warnings
    bookmarks = parse_singer_state(read_json_file(state_path, "state")) if state_path else {}
    sink = SingerSink({s.name: s for s in streams}, dict(bookmarks), out=out, secrets=secrets)
    for warning in warnings:
        sink.say("WARNING", warning)
    if not streams:
        sink.say("WARNING", "No stream is selected in the catalog; nothing to read.")
        return 0
    sink.schemas()

    from klaviyo_source.engine import read  # the engine pulls in aiohttp; only a sync needs it

    selections = [stream.selection for stream in streams]
    states = {stream.name: bookmarks[stream.name] for stream in streams if stream.name in bookmarks}
    outcomes = asyncio.run(read(config, selections, states, sink).outcomes())
    failed = dict(sink.failed)
    for outcome in outcomes:
        if outcome.name not in failed and outcome.status is not StreamStatus.COMPLETE:
            failed[outcome.name] = "the stream did not complete"
    if failed:
        listed = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
        sink.say("ERROR", f"{len(failed)} stream(s) failed ({listed}).")
        return 1
    return 0


def run(argv: list[str], out: BinaryIO) -> int:
    secrets = secrets_of(None)
    try:
        args = parser().parse_args(argv)
        if args.about:
            info = about()
            text = json.dumps(info, indent=2) if args.format == "json" else about_markdown(info)
            out.write(text.encode() + b"\n")
            return 0
        if not args.config:
            raise ConfigError("--config FILE is required (unless --about).")
        raw_config = read_json_file(args.config, "config")
        secrets = secrets_of(raw_config)
        if args.discover:
            load_config(raw_config)
            out.write(orjson.dumps(discovered_catalog(), option=orjson.OPT_INDENT_2) + b"\n")
            return 0
        catalog = args.catalog or args.properties
        if not catalog:
            raise ConfigError(
                "--catalog FILE (or --properties FILE) is required to sync; --discover makes one."
            )
        return run_sync(raw_config, catalog, args.state, secrets, out)
    except ConfigError as error:
        SingerSink({}, secrets=secrets).say("ERROR", error.message)
        return 1
    except BrokenPipeError:
        print(f"{PROGRAM}: stdout was closed by the reader; stopping.", file=sys.stderr)
        return 1
    finally:
        out.flush()


def main(argv: list[str] | None = None) -> int:
    """Singer messages go to the real stdout; anything else printed lands on stderr."""
    out = sys.stdout.buffer
    saved, sys.stdout = sys.stdout, sys.stderr
    try:
        return run(sys.argv[1:] if argv is None else argv, out)
    finally:
        sys.stdout = saved
