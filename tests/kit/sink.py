"""A Sink (klaviyo_source.engine.contract) that keeps every call in memory, in order, for
assertions on an in-process `engine.read`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from klaviyo_source.engine.contract import StreamStatus

Record = dict[str, Any]


@dataclass
class CollectingSink:
    calls: list[tuple[str, str | None, Any]] = field(default_factory=list)

    async def records(self, stream: str, records: Sequence[Record]) -> None:
        self.calls.append(("records", stream, list(records)))

    async def state(self, stream: str, state: dict[str, Any]) -> None:
        self.calls.append(("state", stream, state))

    async def status(self, stream: str, status: StreamStatus, reason: str | None = None) -> None:
        self.calls.append(("status", stream, (status, reason)))

    async def log(self, level: str, message: str) -> None:
        self.calls.append(("log", None, (level, message)))

    async def error(self, stream: str | None, error: Exception) -> None:
        self.calls.append(("error", stream, error))

    def records_of(self, stream: str) -> list[Record]:
        return [r for kind, s, batch in self.calls if kind == "records" and s == stream for r in batch]

    def states_of(self, stream: str) -> list[dict[str, Any]]:
        return [v for kind, s, v in self.calls if kind == "state" and s == stream]

    def statuses_of(self, stream: str) -> list[tuple[StreamStatus, str | None]]:
        return [v for kind, s, v in self.calls if kind == "status" and s == stream]

    def errors_of(self, stream: str) -> list[Exception]:
        return [v for kind, s, v in self.calls if kind == "error" and s == stream]


def without_keys(state: dict[str, Any]) -> dict[str, Any]:
    """A stream state without its bookkeeping entries: the deletion check's (`_reconcile`: the
    destination's keys) and the slow refresh's (`_refreshed_at`: engine/cadence.py)."""
    return {k: v for k, v in state.items() if k not in ("_reconcile", "_refreshed_at")}
