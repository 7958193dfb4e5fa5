"""The dlt source: `from klaviyo_source.dlt import klaviyo` (needs `pip install klaviyo-source[dlt]`).

    pipeline = dlt.pipeline("klaviyo", destination="duckdb", dataset_name="klaviyo")
    pipeline.run(klaviyo(start_date="2024-01-01"))   # api_key from dlt secrets

`klaviyo(...)` takes the keys of `config.json` as keyword arguments (`api_key` defaults to dlt's
secrets: `sources.klaviyo.api_key` in secrets.toml or SOURCES__KLAVIYO__API_KEY) and returns one
resource per stream (the Reporting API's not selected unless named, as `klaviyo-source sync`
defaults to DEFAULT_STREAMS), named as the stream, keyed on `id`, merged (or replaced with
`full_refresh=True`), with column types from the stream's JSON schema and nested objects kept as
json columns. Each resource runs the engine for its stream in a thread and yields its pages;
the stream's state (the connector's own format) lives in dlt's resource state under `klaviyo`,
updated only after the records it covers were yielded, so a second `pipeline.run()` is
incremental and an interrupted one resumes from its last committed load.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.common.data_types import TDataType
from dlt.common.schema.typing import TColumnSchema
from dlt.extract.resource import DltResource

from klaviyo_source.config import DEFAULT_BASE_URL, Config, nearest_key_hint, parse_config, unknown_keys
from klaviyo_source.engine.contract import Record, StreamSelection, StreamStatus
from klaviyo_source.errors import ConfigError, KlaviyoSourceError
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import DEFAULT_STREAMS, STREAMS, STREAMS_BY_NAME

STATE_KEY = "klaviyo"  # our per-stream state inside dlt's resource state
QUEUE_PAGES = 4  # pages in flight between the engine thread and dlt


def column_hints(stream: str) -> dict[str, TColumnSchema]:
    """dlt column hints for a stream's top-level properties, from its JSON schema."""
    keys = STREAMS_BY_NAME[stream].primary_key
    hints: dict[str, TColumnSchema] = {}
    for name, prop in load_schema(stream)["properties"].items():
        kinds = prop.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        kind = next((k for k in kinds if k != "null"), "string")
        data_type: TDataType
        if kind in ("object", "array"):
            data_type = "json"
        elif kind == "string" and prop.get("format") == "date-time":
            data_type = "timestamp"
        else:
            data_type = {"integer": "bigint", "number": "double", "boolean": "bool"}.get(kind, "text")  # type: ignore[assignment]
        hints[name] = {"name": name, "data_type": data_type, "nullable": name not in keys}
    return hints


@dataclass
class _QueueSink:
    """A Sink that hands pages and states to the generator thread through a bounded queue."""

    pages: queue.Queue[tuple[str, Any]] = field(default_factory=lambda: queue.Queue(QUEUE_PAGES))

    async def _put(self, item: tuple[str, Any]) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.pages.put, item)

    async def records(self, stream: str, records: Sequence[Record]) -> None:
        if records:
            await self._put(("records", list(records)))

    async def state(self, stream: str, state: dict[str, Any]) -> None:
        await self._put(("state", state))

    async def status(self, stream: str, status: StreamStatus, reason: str | None = None) -> None:
        return None

    async def log(self, level: str, message: str) -> None:
        return None

    async def error(self, stream: str | None, error: Exception) -> None:
        await self._put(("error", error))


class _EngineThread:
    """One engine read of one stream on its own event loop; cancelled when dlt stops early."""

    def __init__(self, config: Config, selection: StreamSelection, saved: dict[str, Any] | None) -> None:
        self.sink = _QueueSink()
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[Any] | None = None
        self.thread = threading.Thread(
            target=self._run, args=(config, selection, saved), name=f"klaviyo-{selection.name}", daemon=True
        )

    def _run(self, config: Config, selection: StreamSelection, saved: dict[str, Any] | None) -> None:
        from klaviyo_source.engine import read

        states = {selection.name: saved} if saved else {}

        async def whole_read() -> Any:
            return await read(config, [selection], states, self.sink)

        self.task = self.loop.create_task(whole_read())
        try:
            outcomes = self.loop.run_until_complete(self.task)
            self.sink.pages.put(("done", outcomes))
        except BaseException as error:
            self.sink.pages.put(("error", error))
        finally:
            self.loop.close()

    def items(self) -> Iterator[tuple[str, Any]]:
        self.thread.start()
        try:
            while True:
                kind, value = self.sink.pages.get()
                yield kind, value
                if kind in ("done", "error"):
                    return
        finally:
            self.stop()

    def stop(self) -> None:
        if self.thread.is_alive():
            if self.task is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing to cancel
                    self.loop.call_soon_threadsafe(self.task.cancel)
            while self.thread.is_alive():  # drain so a blocked put can finish
                with contextlib.suppress(queue.Empty):
                    self.sink.pages.get(timeout=0.1)
            self.thread.join()


def _stream_records(config: Config, stream: str, incremental: bool) -> Iterator[list[Record]]:
    resource_state = dlt.current.resource_state()
    saved = resource_state.get(STATE_KEY) if incremental else None
    engine = _EngineThread(config, StreamSelection(stream, incremental), saved)
    for kind, value in engine.items():
        if kind == "records":
            yield value
        elif kind == "state":
            resource_state[STATE_KEY] = value  # its records were yielded before it
        elif kind == "error":
            if isinstance(value, KlaviyoSourceError):
                raise KlaviyoSourceError(f"Stream '{stream}': {value.message}") from value
            raise value
        else:
            for outcome in value:
                if outcome.status is not StreamStatus.COMPLETE:
                    raise KlaviyoSourceError(f"Stream '{stream}' did not complete.")


def stream_resource(
    config: Config, stream: str, *, full_refresh: bool = False, selected: bool = True
) -> DltResource:
    """The dlt resource of one stream (`selected=False`: in the source, but not run unless
    selected, e.g. by `with_resources`)."""
    row = STREAMS_BY_NAME[stream]
    resource: DltResource = dlt.resource(
        _stream_records(config, stream, not full_refresh),
        name=stream,
        primary_key=list(row.primary_key),
        write_disposition="replace" if full_refresh else "merge",
        columns=column_hints(stream),
        max_table_nesting=0,
        selected=selected,
    )
    return resource


@dlt.source(name="klaviyo", max_table_nesting=0)
def klaviyo(
    api_key: str = dlt.secrets.value,
    start_date: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    num_workers: int = 30,
    lookback_window: int = 0,
    disable_fetching_predictive_analytics: bool = False,
    request_timeout: float = 60.0,
    max_rate_limit_wait: float = 600.0,
    max_retries: int = 6,
    backoff_base: float = 1.0,
    streams: Sequence[str] | None = None,
    full_refresh: bool = False,
    **settings: Any,
) -> list[DltResource]:
    """Klaviyo's streams as dlt resources: those named in `streams`, else every stream with the
    Reporting API's (REPORT_STREAMS: a 2/min tier, 225 requests a day) present but not selected,
    as `klaviyo-source sync` reads DEFAULT_STREAMS; `with_resources(...)` or `streams=[...]`
    selects them by name.

    The named arguments can come from dlt's config; `settings` takes any other key of
    config.json (docs/airbyte.md), validated as every face validates it."""
    raw = {
        "api_key": api_key,
        "start_date": start_date,
        "base_url": base_url,
        "num_workers": num_workers,
        "lookback_window": lookback_window,
        "disable_fetching_predictive_analytics": disable_fetching_predictive_analytics,
        "request_timeout": request_timeout,
        "max_rate_limit_wait": max_rate_limit_wait,
        "max_retries": max_retries,
        "backoff_base": backoff_base,
        **settings,
    }
    for key in unknown_keys(raw):  # a keyword argument is code, not a file: a typo fails loudly
        raise ConfigError(f"klaviyo() got an unknown argument '{key}'{nearest_key_hint(key)}")
    config = parse_config(raw)
    names = [row.name for row in STREAMS] if streams is None else list(streams)
    defaults = frozenset(DEFAULT_STREAMS)
    missing = [name for name in names if name not in STREAMS_BY_NAME]
    if missing:
        known = ", ".join(row.name for row in STREAMS)
        raise KlaviyoSourceError(f"Unknown stream(s) {', '.join(missing)} (this source has: {known}).")
    return [
        stream_resource(
            config, name, full_refresh=full_refresh, selected=streams is not None or name in defaults
        )
        for name in names
    ]
