"""The request observer of a listing: counts requests, 429s, retries and waits into its members'
live stats, and relays heartbeats to the consumer as notes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from klaviyo_source.engine.outbox import NoteItem, Outbox
from klaviyo_source.engine.partitions import Member


@dataclass(eq=False)
class RequestCount:
    """Requests actually sent in a run (a page shared by two streams counts once)."""

    sent: int = 0


@dataclass(eq=False)
class StatsObserver:
    """Counts requests, 429s, retries and waits into the members' stats; relays heartbeats."""

    members: list[Member]
    outbox: Outbox
    path: str
    count: RequestCount
    last_status: dict[str, float] = field(default_factory=dict)

    def _alive(self) -> list[Member]:
        return [m for m in self.members if m.alive]

    def on_request(self) -> None:
        self.count.sent += 1
        for m in self._alive():
            m.outcome.stats.requests += 1

    def on_throttled(self, wait: float) -> None:
        for m in self._alive():
            m.outcome.stats.throttled += 1
            now = time.monotonic()
            m.waits.add(m.outcome.stats, now, now + wait)
            self.outbox.note(
                NoteItem(m.name, f"Rate limited on {self.path}; waiting {wait:.1f}s", "RATE_LIMITED")
            )

    def on_retry(self, reason: str, wait: float) -> None:
        names = []
        for m in self._alive():
            m.outcome.stats.retries += 1
            names.append(m.name)
        message = f"{'/'.join(names)}: retrying {self.path} in {wait:.1f}s after {reason}"
        self.outbox.note(NoteItem(None, message, level="WARN"))

    def on_rate_wait(self, seconds: float) -> None:
        now = time.monotonic()
        for m in self._alive():
            m.waits.add(m.outcome.stats, now - seconds, now)

    def heartbeat(self, message: str) -> None:
        names = "/".join(m.name for m in self._alive())
        self.outbox.note(NoteItem(None, f"{names}: {message}"))
