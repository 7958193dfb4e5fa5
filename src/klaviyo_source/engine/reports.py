"""Report streams: whole days of POST report queries, within each endpoint's daily quota.

A report stream (a `Stream` with a `Report` row) is read in whole days of the account's timezone
(GET /api/accounts once, then kept in the state), from its saved coverage (or the start date,
floored to its day, but at most `report_history_days` back) to yesterday. Days are requested newest first:
the new days with the `reporting_lookback_window` days before them (Klaviyo revises
attribution), then older days not read yet (a backfill), newest first. A series request covers
up to the row's `max_days`; a values request one day. Each answered request is handed to the
consumer with the state covering it, so a stop anywhere loses nothing and reads no day twice
(beyond the lookback's deliberate re-reads, whose records keep their primary keys).

The quota ledger: calls spent per report endpoint per quota day, persisted in each stream's
state and shared by every stream of the endpoint in a run (their saved ledgers: the largest
count of the current day). Before each call the ledger must have room under
`report_daily_quota`; when it has none, or Klaviyo answers 429 with a wait longer than
`max_rate_limit_wait` (its daily quota, spent elsewhere), the stream ends INCOMPLETE with a
`ReportQuotaError` saying how far it got and when the next sync continues. Nothing sleeps for
hours. A conversion metric Klaviyo refuses for values data (the row's `refusal`) is skipped with
a warning and remembered in the state. A rerun with nothing new sends no request at all.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from klaviyo_source.config import Config
from klaviyo_source.endpoints import bucket_for, query_endpoints
from klaviyo_source.engine.contract import StreamOutcome
from klaviyo_source.engine.names import named_ids, resolve
from klaviyo_source.engine.outbox import NoteItem, Outbox, ReportItem
from klaviyo_source.engine.report_state import Ledger, SavedReport, Span, merge, missing, write_report_state
from klaviyo_source.errors import BadRequestError, RateLimitError, ReportQuotaError, ScopeError
from klaviyo_source.http.client import KlaviyoClient, NullObserver
from klaviyo_source.streams.reports import ReportQuery
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import Report, Stream

ACCOUNTS_PATH = "/api/accounts"
METRICS_PATH = "/api/metrics"  # metric names in metric_ids and metric_aggregate_metrics


def split_list(text: str) -> list[str]:
    """`"a, b,,c"` -> ["a", "b", "c"] (order kept, duplicates dropped)."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


@dataclass(eq=False)
class ReportMember:
    """A selected report stream."""

    row: Stream
    incremental: bool
    saved: SavedReport
    outcome: StreamOutcome
    covered: dict[str, list[Span]] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    metrics: tuple[str, tuple[str, ...]] | None = None
    timezone: str = ""
    started: bool = False

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def report(self) -> Report:
        assert self.row.report is not None
        return self.row.report


@dataclass(frozen=True)
class Chunk:
    partition: str
    first: date
    last: date


class _Counter(NullObserver):
    """Counts each request sent into the stream's stats and the endpoint's ledger."""

    def __init__(self, member: ReportMember, ledger: Ledger | None) -> None:
        self.member, self.ledger = member, ledger

    def on_request(self) -> None:
        self.member.outcome.stats.requests += 1
        if self.ledger is not None:
            self.ledger.calls += 1

    def on_throttled(self, wait: float) -> None:
        self.member.outcome.stats.throttled += 1

    def on_retry(self, reason: str, wait: float) -> None:
        self.member.outcome.stats.retries += 1


def chunks(spans: list[Span], partition: str, max_days: int) -> list[Chunk]:
    """Requests for the spans, cut from each span's newest end into at most `max_days` days."""
    out = []
    for first, last in spans:
        end = last
        while end >= first:
            start = max(first, end - timedelta(days=max_days - 1))
            out.append(Chunk(partition, start, end))
            end = start - timedelta(days=1)
    return out


def span_text(spans: list[Span]) -> str:
    return (
        ", ".join(a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}" for a, b in spans)
        or "none"
    )


class Reports:
    """Every selected report stream of a run."""

    def __init__(self, config: Config, members: list[ReportMember], outbox: Outbox, now: datetime) -> None:
        self.config = config
        self.members = members
        self.outbox = outbox
        self.now = now
        self.ledgers: dict[str, Ledger] = {}
        self._zone: ZoneInfo | None = None
        self._metrics: dict[str, tuple[list[str], list[str]]] = {}
        self._listing: tuple[set[str], dict[str, list[str]]] | None = None
        self._once = asyncio.Lock()  # the account's timezone and metrics are read once per run
        self.requests = 0

    # -------------------------------------------------------------- planning

    def quota_day(self) -> int:
        return int(time.time() // self.config.report_quota_day_seconds)

    def ledger(self, bucket: str) -> Ledger:
        """The endpoint's ledger for today: the largest saved count of today among its streams."""
        day = self.quota_day()
        ledger = self.ledgers.get(bucket)
        if ledger is None or ledger.day != day:
            saved = [
                m.saved.quota[bucket].calls
                for m in self.members
                if bucket in m.saved.quota and m.saved.quota[bucket].day == day
            ]
            ledger = self.ledgers[bucket] = Ledger(day, max(saved, default=0))
        return ledger

    def quota(self, report: Report) -> int | None:
        endpoint = query_endpoints().get(report.path)
        if endpoint is None or not endpoint.daily:
            return None
        return min(endpoint.daily, self.config.report_daily_quota)

    def plan(self, member: ReportMember, zone: ZoneInfo, partitions: list[str]) -> list[Chunk]:
        """The member's requests, newest first (see the module docstring)."""
        report = member.report
        yesterday = self.now.astimezone(zone).date() - timedelta(days=1)
        start = yesterday - timedelta(days=self.config.report_history_days - 1)
        if self.config.start_date is not None:  # floored to its day: the day is read whole
            start = max(start, self.config.start_date.astimezone(zone).date())
        if report.data_from:
            start = max(start, date.fromisoformat(report.data_from))
        lookback = timedelta(days=self.config.reporting_lookback_window)
        out: list[Chunk] = []
        for partition in partitions:
            spans = member.saved.spans(partition) if member.incremental else []
            member.covered[partition] = merge(spans)
            need = missing(spans, start, yesterday)
            if spans and spans[-1][1] < yesterday:  # new days: re-read the lookback before them
                after = spans[-1][1] + timedelta(days=1)
                need = merge([*need, (max(start, after - lookback), after - timedelta(days=1))])
            need = [(a, b) for a, b in need if a <= b]
            out.extend(chunks(need, partition, report.max_days))
        order = {p: k for k, p in enumerate(partitions)}
        return sorted(out, key=lambda c: (-c.last.toordinal(), order[c.partition]))

    def saved_partitions(self, member: ReportMember) -> list[str] | None:
        """The partitions from the saved state when the config names the same metrics."""
        if not member.report.metrics_from:
            return [""]
        text = str(getattr(self.config, member.report.metrics_from))
        if member.incremental and member.saved.metrics is not None and member.saved.metrics[0] == text:
            return [p for p in member.saved.metrics[1] if p not in member.saved.refused]
        return None

    def idle(self, member: ReportMember) -> tuple[ZoneInfo, list[str]] | None:
        """(zone, partitions) from the saved state when it proves the stream has nothing to read
        (the same metrics configured, every day to yesterday read); else None."""
        partitions = self.saved_partitions(member)
        if partitions is None or not member.saved.timezone or not member.incremental:
            return None
        try:
            zone = ZoneInfo(member.saved.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return None
        return None if self.plan(member, zone, partitions) else (zone, partitions)

    def has_work(self) -> bool:
        """Some report stream may need a request (False only when the saved states prove none does)."""
        return any(self.idle(member) is None for member in self.members)

    # -------------------------------------------------------------- running

    async def zone(self, client: KlaviyoClient, member: ReportMember) -> ZoneInfo:
        """The account's timezone: from the saved state, else GET /api/accounts (UTC if unreadable)."""
        async with self._once:  # the streams' tasks run concurrently: one GET for all of them
            return await self._read_zone(client, member)

    async def _read_zone(self, client: KlaviyoClient, member: ReportMember) -> ZoneInfo:
        if self._zone is not None:
            return self._zone
        name = member.saved.timezone if member.incremental else ""
        if not name:
            try:
                document = await client.get_json(ACCOUNTS_PATH, None, observer=_Counter(member, None))
                accounts = document.get("data") or []
                name = str(((accounts[0] if accounts else {}).get("attributes") or {}).get("timezone") or "")
            except ScopeError:
                self.note(
                    member.name, "The key cannot read /api/accounts (accounts:read): days are UTC days."
                )
        try:
            self._zone = ZoneInfo(name or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            self.note(member.name, f"Unknown account timezone '{name}': days are UTC days.")
            self._zone = ZoneInfo("UTC")
        return self._zone

    async def partitions(self, client: KlaviyoClient, member: ReportMember) -> list[str]:
        """The partitions: one, or the configured metrics resolved afresh (a new metric of the
        account joins an empty `metric_ids` as soon as there is a day to read)."""
        report = member.report
        if not report.metrics_from:
            return [""]
        text = str(getattr(self.config, report.metrics_from))
        async with self._once:
            return self._partitions_of(member, text, await self._metric_listing(client, member))

    async def _metric_listing(
        self, client: KlaviyoClient, member: ReportMember
    ) -> tuple[set[str], dict[str, list[str]]]:
        """The account's metrics (ids, name -> ids), listed once per run."""
        if self._listing is None:
            listed, names, sent = await named_ids(client, METRICS_PATH)
            self.requests += sent
            member.outcome.stats.requests += sent
            self._listing = (listed, names)
        return self._listing

    def _partitions_of(
        self, member: ReportMember, text: str, listing: tuple[set[str], dict[str, list[str]]]
    ) -> list[str]:
        report = member.report
        if text not in self._metrics:
            known, by_name = listing
            values = tuple(split_list(text))
            resolved = resolve(values, known, by_name, report.metrics_from) if values else None
            found = list(resolved.ids) if resolved is not None else sorted(known)
            self._metrics[text] = (found, resolved.warnings if resolved is not None else [])
            for line in resolved.notes if resolved is not None else []:
                self.outbox.note(NoteItem(member.name, f"{member.name}: {line}"))
            for warning in self._metrics[text][1]:
                self.note(member.name, warning)
        ids = self._metrics[text][0]
        member.metrics = (text, tuple(ids))
        skipped = [i for i in ids if i in member.saved.refused]
        if skipped:
            self.note(member.name, f"Skipping metric(s) {', '.join(skipped)}: Klaviyo refused them before.")
        return [i for i in ids if i not in member.saved.refused]

    def note(self, stream: str, message: str) -> None:
        self.outbox.note(NoteItem(stream, f"{stream}: {message}", level="WARN"))

    def state(self, member: ReportMember, zone: ZoneInfo | None = None) -> dict[str, Any]:
        zone = zone or self._zone or ZoneInfo("UTC")
        bucket = bucket_for(member.report.path, None, "POST")
        quota = {bucket: self.ledger(bucket)} if self.quota(member.report) is not None else {}
        return write_report_state(
            member.report.partition_key,
            member.covered,
            lambda day: datetime.combine(day, datetime.min.time(), zone).isoformat(),
            quota,
            member.saved.refused | member.refused,
            zone.key,
            member.metrics,
        )

    def spent(self, member: ReportMember, todo: list[Chunk], why: str) -> ReportQuotaError:
        """The error that ends a stream whose quota is spent: how far it got, when it goes on."""
        day_seconds = self.config.report_quota_day_seconds
        resets = datetime.fromtimestamp((self.quota_day() + 1) * day_seconds, UTC)
        got = "; ".join(
            f"{p or 'all'}: {span_text(spans)}" if member.report.partition_key else span_text(spans)
            for p, spans in sorted(member.covered.items())
        )
        left = sorted({(c.first, c.last) for c in todo})
        return ReportQuotaError(
            f"{member.name}: {why}. Days read so far: {got or 'none'}. Still to read: "
            f"{span_text(merge(left))}. The next sync after {resets:%Y-%m-%dT%H:%M:%SZ} continues "
            "from there (no gap, no day read twice).",
            stream=member.name,
        )

    async def read(self, client: KlaviyoClient, member: ReportMember) -> None:
        """One report stream, start to end (its records and states go to the consumer)."""
        report = member.report
        idle = self.idle(member)
        if idle is not None:  # nothing new since the last sync: no request at all
            self._zone = self._zone or idle[0]
            member.metrics = member.saved.metrics
            self.plan(member, idle[0], idle[1])
            self.outbox.note(ReportItem(member.name, state=self.state(member, idle[0])))
            return
        zone = await self.zone(client, member)
        member.timezone = zone.key
        partitions = await self.partitions(client, member)
        todo = self.plan(member, zone, partitions)
        bucket = bucket_for(report.path, None, "POST")
        quota = self.quota(report)
        schema = load_schema(member.name)["properties"]
        statistics = tuple(schema.get("statistics", {}).get("properties", {}))
        measurements = tuple(split_list(self.config.metric_aggregate_measurements))
        by = tuple(split_list(self.config.metric_aggregate_by))
        while todo:
            chunk = todo[0]
            if chunk.partition in member.refused:
                todo.pop(0)
                continue
            ledger = self.ledger(bucket) if quota is not None else None
            if ledger is not None and quota is not None and ledger.calls >= quota:
                why = f"the day's {quota} calls to POST {report.path} are spent ({ledger.calls} made)"
                raise self.spent(member, todo, why)
            query = ReportQuery(
                chunk.first, chunk.last, zone, statistics, chunk.partition, report.interval, measurements, by
            )
            body = {"data": {"type": report.type, "attributes": report.body(query)}}
            try:
                self.requests += 1
                document = await client.post_json(report.path, body, observer=_Counter(member, ledger))
            except BadRequestError as error:
                if not report.refusal or report.refusal not in error.message:
                    raise
                member.refused.add(chunk.partition)
                self.note(
                    member.name, f"Klaviyo refuses metric {chunk.partition} ({report.refusal}); skipped."
                )
                self.outbox.note(ReportItem(member.name, state=self.state(member)))
                continue
            except RateLimitError as error:
                raise self.spent(member, todo, f"Klaviyo throttles POST {report.path} for longer than "
                                 f"max_rate_limit_wait ({error.message})") from None  # fmt: skip
            records = report.rows(document, query)
            following = (document.get("links") or {}).get("next")
            while following:  # a long values report comes in pages (`page_cursor` in links.next)
                if ledger is not None and quota is not None and ledger.calls >= quota:
                    why = f"the day's {quota} calls to POST {report.path} are spent ({ledger.calls} made)"
                    raise self.spent(member, todo, why)  # this day range is read again next time
                self.requests += 1
                document = await client.post_json(following, body, observer=_Counter(member, ledger))
                records.extend(report.rows(document, query))
                following = (document.get("links") or {}).get("next")
            todo.pop(0)
            spans = member.covered.setdefault(chunk.partition, [])
            member.covered[chunk.partition] = merge([*spans, (chunk.first, chunk.last)])
            self.outbox.note(ReportItem(member.name, records=records, state=self.state(member)))
        self.outbox.note(ReportItem(member.name, state=self.state(member)))

    async def run_bucket(self, client: KlaviyoClient, members: list[ReportMember]) -> None:
        for member in members:
            try:
                await self.read(client, member)
            except Exception as error:  # any failure ends this stream only
                if member.covered:
                    self.outbox.note(ReportItem(member.name, state=self.state(member)))
                self.outbox.note(ReportItem(member.name, end=True, error=error))
                continue
            self.outbox.note(ReportItem(member.name, end=True))

    def tasks(self, client: KlaviyoClient) -> list[asyncio.Task[None]]:
        """One task per endpoint (its streams share its quota and its 2/min), started now."""
        by_bucket: dict[str, list[ReportMember]] = {}
        for member in self.members:
            by_bucket.setdefault(bucket_for(member.report.path, None, "POST"), []).append(member)
        return [asyncio.create_task(self.run_bucket(client, group)) for group in by_bucket.values()]
