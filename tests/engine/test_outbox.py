"""The outbox's memory bound: large pages waiting for a slow consumer hold back new large requests."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from klaviyo_source.engine.outbox import Outbox, PageItem


def page(large: bool = True) -> PageItem:
    return PageItem(cast(Any, None), [], 0, None, None, False, large=large)


async def held_back(outbox: Outbox, waiting: int) -> asyncio.Task[None]:
    """Hand over `waiting` large pages, then start one more large request: it must wait."""
    for _ in range(waiting):
        await outbox.reserve(True)
        outbox.page(page())
    request = asyncio.create_task(outbox.reserve(True))
    await asyncio.sleep(0.05)
    assert not request.done()  # the pages wait for the consumer: no further request starts
    return request


def test_queued_large_pages_hold_back_the_next_large_request_until_one_is_taken() -> None:
    async def body() -> None:
        outbox = Outbox(capacity=10, waiting=2)
        third = await held_back(outbox, 2)
        await asyncio.wait_for(outbox.reserve(False), 1)  # small listings are not held back
        outbox.taken(await outbox.queue.get())
        await asyncio.wait_for(third, 1)
        outbox.page(page())
        outbox.taken(await outbox.queue.get())
        outbox.taken(await outbox.queue.get())
        await asyncio.wait_for(outbox.reserve(True), 1)  # the budget is whole again

    asyncio.run(body())


def test_a_held_back_request_that_is_cancelled_gives_its_reservation_back() -> None:
    async def body() -> None:
        outbox = Outbox(capacity=3, waiting=2)
        held = await held_back(outbox, 2)
        held.cancel()
        await asyncio.gather(held, return_exceptions=True)
        outbox.taken(await outbox.queue.get())
        for _ in range(2):  # one page queued, one reservation held: two of three are free
            await asyncio.wait_for(outbox.reserve(True), 1)

    asyncio.run(body())
