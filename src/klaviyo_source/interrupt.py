"""Ctrl-C (SIGINT) and SIGTERM (what cron, Docker and Kubernetes send) handled as one event.

`await run_interruptible(work)` runs `work` as a task; either signal cancels it, so it unwinds
through its `finally` and `async with` blocks (committing what is safe), and then `Interrupted`
says which signal came and carries the task's result if it returned one. Exit code 128 + the
signal number: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_RECEIVED: ContextVar[list[int]] = ContextVar("klaviyo_source_received_signals")


def received_signal() -> str | None:
    """Inside work run by `run_interruptible`: the name of the signal that stopped it, if any."""
    received = _RECEIVED.get([])
    return signal.Signals(received[0]).name if received else None


class Interrupted(Exception):
    """The run was stopped by a signal; `result` is what the work returned while unwinding."""

    def __init__(self, signum: int, result: Any = None) -> None:
        self.signum = signum
        self.result = result
        super().__init__(self.name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


async def _as_coroutine(work: Awaitable[T]) -> T:
    return await work


async def run_interruptible(work: Awaitable[T]) -> T:
    """Await `work`; on SIGINT or SIGTERM cancel it, let it unwind, then raise Interrupted."""
    loop = asyncio.get_running_loop()
    received: list[int] = []
    token = _RECEIVED.set(received)  # the task below inherits this context and sees the signal
    task = asyncio.ensure_future(_as_coroutine(work))
    _RECEIVED.reset(token)

    def on_signal(signum: int) -> None:
        received.append(signum)
        task.cancel()

    installed = []
    for signum in SIGNALS:
        try:
            loop.add_signal_handler(signum, on_signal, signum)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            continue
        installed.append(signum)
    try:
        try:
            result = await task
        except asyncio.CancelledError:
            if not received:
                raise
            raise Interrupted(received[0]) from None
        if received:
            raise Interrupted(received[0], result)
        return result
    finally:
        for signum in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
