"""What `sync` warns about before it reads, from its options and the destination's records.

* A start_date moved earlier than the previous sync's does not backfill streams that resume from
  their saved state: say so, and how to backfill (`--full-refresh` for those streams, or
  `klaviyo-source state reset`). The previous sync's start_date is in its run record
  (`_klaviyo_sync_runs.report`, key `start_date`; null = none, i.e. the 2012 floor); runs
  recorded before that key existed say nothing, so no warning is given then.
* `--write append` with the trailing re-scan of late events: every re-read event is appended
  again (dedup absorbs them).

(A start_date in the future is refused by the config loader; a table's write mode is guarded by
the destination, `destinations/base.py`.)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from klaviyo_source.destinations.base import DEFAULT_SCHEMA, DestinationSpec, SqlDestination, WriteMode
from klaviyo_source.streams.table import FLOOR_ISO, STREAMS_BY_NAME
from klaviyo_source.sync.report import RUNS_TABLE
from klaviyo_source.times import format_time, parse_time

if TYPE_CHECKING:
    from klaviyo_source.sync.command import SyncOptions

_ABSENT = object()


def sync_warnings(destination: SqlDestination, options: SyncOptions, states: Mapping[str, Any]) -> list[str]:
    """The warnings for this sync (blocking: reads the destination's run records)."""
    if options.full_refresh:
        return []
    previous = previous_start_date(destination)
    where = as_argument(options.destination)
    warnings = backfill_warnings(options.config.start_date, previous, states, options.streams, where)
    return warnings + append_rescan_warnings(options)


def append_rescan_warnings(options: SyncOptions) -> list[str]:
    """--write append with a trailing re-scan: the re-read records are stored again."""
    from klaviyo_source.engine.run import trailing_rescan  # the engine pulls in aiohttp: not at import

    rescan = trailing_rescan(options.config)
    streams = [name for name in options.streams if STREAMS_BY_NAME[name].lookback]
    if options.write is not WriteMode.APPEND or not streams or not rescan:
        return []
    hours = int(rescan.total_seconds() // 3600)
    return [
        f"--write append: {', '.join(streams)} re-read the last {hours} h before their saved state "
        "on every sync (late_events_hours / lookback_window, for events Klaviyo makes visible "
        "late), and append mode stores each re-read row again. Use --write dedup (one row per "
        "id), or set late_events_hours to 0."
    ]


def as_argument(spec: DestinationSpec) -> str:
    """The destination as a --destination argument to repeat in advice (never a password)."""
    if spec.kind != "duckdb":
        return "<the same --destination>"
    schema = "" if spec.schema == DEFAULT_SCHEMA else f"?schema={spec.schema}"
    return f"duckdb:///{spec.target}{schema}"


def previous_start_date(destination: SqlDestination) -> datetime | object | None:
    """The start_date of the latest recorded sync (None: it had none); `_ABSENT` when no run
    recorded one (no runs table, no run, or a run recorded before the key existed)."""
    runs = destination.qualified(RUNS_TABLE)
    try:
        rows = destination.query(f"SELECT CAST(report AS TEXT) FROM {runs} ORDER BY started_at DESC LIMIT 1")
    except Exception:  # no runs table yet
        return _ABSENT
    if not rows or not rows[0][0]:
        return _ABSENT
    try:
        document = orjson.loads(rows[0][0])
    except orjson.JSONDecodeError:
        return _ABSENT
    if not isinstance(document, dict) or "start_date" not in document:
        return _ABSENT
    value = document["start_date"]
    if value is None:
        return None
    try:
        return parse_time(str(value))
    except ValueError:
        return _ABSENT


def backfill_warnings(
    start_date: datetime | None,
    previous: datetime | object | None,
    states: Mapping[str, Any],
    streams: Collection[str],
    destination: str,
) -> list[str]:
    """One warning when start_date moved earlier than the previous sync's while selected streams
    have a saved state (they resume from it, so the earlier data is not read)."""
    if previous is _ABSENT:
        return []
    floor = parse_time(FLOOR_ISO)
    before = previous if isinstance(previous, datetime) else floor
    now = start_date or floor
    resuming = [name for name in streams if states.get(name)]
    if now >= before or not resuming:
        return []
    names = ",".join(resuming)
    return [
        f"start_date {format_time(now)} is earlier than the previous sync's ({format_time(before)}), "
        f"but {', '.join(resuming)} resume from their saved state: nothing before "
        f"{format_time(before)} is read for them. To backfill from the new start_date, run "
        f"`klaviyo-source sync --full-refresh --streams {names}` (re-reads those streams whole; "
        f"dedup tables are updated in place), or `klaviyo-source state reset --streams {names} "
        f"--destination {destination}` and sync again."
    ]
