"""The state of a report stream: which whole days each partition has, and the quota ledger.

Ours, per stream (one partition per conversion metric, or a flat state without partitions):

    {"states": [{"partition": {"conversion_metric_id": "RESQ6t"},
                 "cursor": {"date": "2026-11-30T00:00:00-05:00"},
                 "covered": [["2025-12-01", "2026-11-30"]]}],
     "state": {"date": "<the earliest partition's>"}, "use_global_cursor": false,
     "quota": {"query_flow_series": {"day": 20424, "calls": 37}}, "refused": ["<metric id>"]}

`covered` lists the day ranges read (inclusive, in the account's timezone); `cursor.date` is the
midnight of the last covered day, as Airbyte 3.x's report cursors are. `quota` counts the calls
spent on each report endpoint in one quota day (`day` = epoch seconds // the day's length).

Accepted on input besides ours: Airbyte 3.x's per-partition states (`{"states": [{"partition":
{<metric key>: "...", "parent_slice": {}}, "cursor": {"date": "2024-06-15T00:00:00+0000"}}],
"state": {"date": ...}}`; the partition's key name is not known, so the first string value is the
metric id) and a plain `{"date": ...}`. Without `covered`, every day before the cursor's date
counts as read and the date itself is read again (a boundary repeat, never a gap).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from klaviyo_source.errors import ConfigError

Span = tuple[date, date]  # inclusive
FLOOR_DAY = date(2012, 1, 1)
_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})")


@dataclass
class Ledger:
    """Calls spent on one report endpoint in one quota day."""

    day: int
    calls: int = 0


@dataclass
class SavedReport:
    """What a report stream's saved state says."""

    covered: dict[str, list[Span]] = field(default_factory=dict)  # partition value -> spans
    default: list[Span] | None = None  # for partitions the state does not name
    quota: dict[str, Ledger] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    timezone: str = ""  # the account's, as last read (so a rerun with nothing new sends nothing)
    metrics: tuple[str, tuple[str, ...]] | None = None  # (the config's text, the ids it resolved to)

    def spans(self, partition: str) -> list[Span]:
        return list(self.covered.get(partition, self.default or []))


def _day(value: Any, stream: str) -> date:
    match = _DAY.match(value) if isinstance(value, str) else None
    if match is None:
        raise _unreadable(stream, f"'{value}' is not a date")
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise _unreadable(stream, f"'{value}' is not a date") from None


def _unreadable(stream: str, why: str) -> ConfigError:
    return ConfigError(
        f"The saved state of stream '{stream}' cannot be read ({why}). Reset the stream "
        "(Airbyte: clear its data; sync: `klaviyo-source state reset --stream ...`) and sync again."
    )


def _before(value: Any, stream: str) -> list[Span]:
    """A cursor without `covered`: every day before its date has been read."""
    return [(FLOOR_DAY, _day(value, stream) - timedelta(days=1))]


def _spans(value: Any, stream: str) -> list[Span]:
    if not isinstance(value, list):
        raise _unreadable(stream, "'covered' is not a list")
    out = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise _unreadable(stream, "a 'covered' entry is not [first, last]")
        first, last = _day(item[0], stream), _day(item[1], stream)
        if last >= first:
            out.append((first, last))
    return merge(out)


def _partition_value(partition: Any) -> str:
    if not isinstance(partition, dict):
        return ""
    return next((v for k, v in partition.items() if k != "parent_slice" and isinstance(v, str)), "")


def read_report_state(stream: str, raw: Any) -> SavedReport:
    """Any accepted shape -> SavedReport; ConfigError naming the stream otherwise."""
    saved = SavedReport()
    if raw is None or raw == {}:
        return saved
    if not isinstance(raw, dict):
        raise _unreadable(stream, "it is not an object")
    entries = raw.get("states", [])
    if not isinstance(entries, list):
        raise _unreadable(stream, "'states' is not a list")
    if "covered" in raw:
        saved.default = _spans(raw["covered"], stream)
    elif raw.get("date") is not None:
        saved.default = _before(raw["date"], stream)
    elif not entries and isinstance(raw.get("state"), dict) and raw["state"].get("date") is not None:
        # the global cursor speaks for every partition only when none is named (a partition
        # missing from `states` is a metric added since: it starts at the start date)
        saved.default = _before(raw["state"]["date"], stream)
    for entry in entries:
        if not isinstance(entry, dict):
            raise _unreadable(stream, "a 'states' entry is not an object")
        key = _partition_value(entry.get("partition"))
        if "covered" in entry:
            saved.covered[key] = _spans(entry["covered"], stream)
        else:
            cursor = entry.get("cursor")
            if not isinstance(cursor, dict) or cursor.get("date") is None:
                raise _unreadable(stream, "a 'states' entry has no cursor date")
            saved.covered[key] = _before(cursor["date"], stream)
    quota = raw.get("quota", {})
    if isinstance(quota, dict):
        for bucket, ledger in quota.items():
            if isinstance(ledger, dict) and isinstance(ledger.get("day"), int):
                calls = ledger.get("calls")
                saved.quota[bucket] = Ledger(ledger["day"], calls if isinstance(calls, int) else 0)
    refused = raw.get("refused", [])
    if isinstance(refused, list):
        saved.refused = {r for r in refused if isinstance(r, str)}
    if isinstance(raw.get("timezone"), str):
        saved.timezone = raw["timezone"]
    metrics = raw.get("resolved_metrics")
    if (
        isinstance(metrics, dict)
        and isinstance(metrics.get("config"), str)
        and isinstance(metrics.get("ids"), list)
    ):
        saved.metrics = (metrics["config"], tuple(str(i) for i in metrics["ids"]))
    return saved


def merge(spans: list[Span]) -> list[Span]:
    """Sorted, disjoint, with adjacent spans joined."""
    out: list[Span] = []
    for first, last in sorted(spans):
        if out and first <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def missing(spans: list[Span], first: date, last: date) -> list[Span]:
    """The days of [first, last] no span covers."""
    out = []
    cursor = first
    for lo, hi in merge(spans):
        if hi < cursor:
            continue
        if lo > last:
            break
        if lo > cursor:
            out.append((cursor, min(last, lo - timedelta(days=1))))
        cursor = max(cursor, hi + timedelta(days=1))
    if cursor <= last:
        out.append((cursor, last))
    return out


def write_report_state(
    partition_key: str,
    covered: dict[str, list[Span]],
    midnight: Any,
    quota: dict[str, Ledger],
    refused: set[str],
    timezone: str = "",
    metrics: tuple[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """Our state shape (module docstring); `midnight(day)` formats a cursor date."""

    def cursor(spans: list[Span]) -> dict[str, Any]:
        return {"date": midnight(spans[-1][1])} if spans else {}

    state: dict[str, Any]
    if partition_key:
        entries = [
            {
                "partition": {partition_key: value},
                "cursor": cursor(spans),
                "covered": [[a.isoformat(), b.isoformat()] for a, b in spans],
            }
            for value, spans in sorted(covered.items())
            if spans
        ]
        lasts = [spans[-1][1] for spans in covered.values() if spans]
        state = {"states": entries, "use_global_cursor": False}
        if lasts:
            state["state"] = {"date": midnight(min(lasts))}
    else:
        spans = covered.get("", [])
        state = {**cursor(spans), "covered": [[a.isoformat(), b.isoformat()] for a, b in spans]}
    if quota:
        state["quota"] = {
            bucket: {"day": ledger.day, "calls": ledger.calls} for bucket, ledger in quota.items()
        }
    if refused:
        state["refused"] = sorted(refused)
    if timezone:
        state["timezone"] = timezone
    if metrics is not None:
        state["resolved_metrics"] = {"config": metrics[0], "ids": list(metrics[1])}
    return state
