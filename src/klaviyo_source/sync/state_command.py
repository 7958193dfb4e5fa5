"""`klaviyo-source state show|reset`: the sync state saved in a destination's `_klaviyo_state` table.

    klaviyo-source state show  [--destination URL]
    klaviyo-source state reset --streams a,b [--destination URL]

`show` prints each stream's saved state and when (and by which sync) it was committed. `reset`
deletes the saved state of the named streams, so the next sync reads them from `start_date`
again; their tables and rows are left as they are (dedup mode then updates them in place).
Both take the destination's lock, so they refuse while a sync is running.
Exit codes: 0 done; 1 the destination could not be opened; 2 invalid arguments.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from klaviyo_source.destinations import open_destination
from klaviyo_source.destinations.base import STATE_TABLE, DestinationSpec, SqlDestination, parse_destination
from klaviyo_source.errors import ConfigError, KlaviyoSourceError, UsageError
from klaviyo_source.sync.command import DEFAULT_DESTINATION, new_sync_id, parse_streams

PROG = "klaviyo-source state"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # raise instead of exiting, so main() decides the output
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Show or reset the sync state saved in a destination.")
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="{show,reset}", parser_class=_Parser
    )
    destination_help = "the sync's --destination (default: %(default)s)"
    show = actions.add_parser("show", help="print each stream's saved state and when it was committed")
    show.add_argument("--destination", default=DEFAULT_DESTINATION, help=destination_help)
    reset = actions.add_parser(
        "reset", help="forget streams' state: the next sync reads them from start_date"
    )
    reset.add_argument("--streams", required=True, help="comma-separated streams whose state to delete")
    reset.add_argument("--destination", default=DEFAULT_DESTINATION, help=destination_help)
    return parser


def saved_states(destination: SqlDestination) -> list[tuple[str, str, datetime | None, str | None]]:
    """(stream, state JSON, committed at, sync id) of every saved state, by stream."""
    rows = destination.query(
        "SELECT stream, CAST(state AS TEXT), updated_at, sync_id "
        f"FROM {destination.qualified(STATE_TABLE)} ORDER BY stream"
    )
    return [(str(stream), str(state), at, sync_id) for stream, state, at, sync_id in rows]


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def show(destination: SqlDestination) -> list[str]:
    rows = saved_states(destination)
    if not rows:
        return [
            f"No saved state in {destination.spec.display}: the next sync reads every stream from start_date."
        ]
    lines = [f"Saved state in {destination.spec.display}:"]
    for stream, state, at, sync_id in rows:
        lines.append(f"{stream}: committed {_when(at)} by sync {sync_id or '-'}")
        lines.append(f"  {state}")
    return lines


def reset(destination: SqlDestination, streams: list[str]) -> list[str]:
    held = {row[0] for row in saved_states(destination)}
    mark = destination.placeholder
    with destination.transaction():
        for stream in streams:
            destination.execute(
                f"DELETE FROM {destination.qualified(STATE_TABLE)} WHERE stream = {mark}", [stream]
            )
    lines = []
    for stream in streams:
        if stream in held:
            lines.append(f"{stream}: state deleted; the next sync reads it from start_date.")
        else:
            lines.append(f"{stream}: had no saved state; nothing to reset.")
    return lines


def _missing_file(spec: DestinationSpec) -> bool:
    return spec.kind == "duckdb" and not Path(spec.target).exists()


def main(argv: list[str]) -> int:
    """argv[0] == "state"."""
    try:
        args = _parser().parse_args(argv[1:])
        spec = parse_destination(args.destination)
        streams = parse_streams(args.streams) if args.action == "reset" else []
    except UsageError as error:
        print(f"{PROG}: {error}\n\n{_parser().format_usage()}", file=sys.stderr)
        return 2
    except ConfigError as error:
        print(f"{PROG}: {error.message}", file=sys.stderr)
        return 2
    if _missing_file(spec):  # never create a database just to look at it
        print(f"No database at {spec.target}: nothing was synced there yet, so there is no state.")
        return 0
    try:
        destination = open_destination(spec, new_sync_id())
    except KlaviyoSourceError as error:
        print(f"{PROG}: {error.message}", file=sys.stderr)
        return 1
    except Exception as error:  # an unreadable file, a refused connection
        print(f"{PROG}: cannot open {spec.display}: {error}", file=sys.stderr)
        return 1
    try:
        lines = show(destination) if args.action == "show" else reset(destination, streams)
    except Exception as error:  # a database error
        print(
            f"{PROG} {args.action}: {spec.display} failed: {type(error).__name__}: {error}", file=sys.stderr
        )
        return 1
    finally:
        destination.close()
    print("\n".join(lines))
    return 0
