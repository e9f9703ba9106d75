"""cancel_and_wait stops loops even when a cancellation is swallowed (as Python 3.11's
asyncio.wait_for can do when the cancel lands as the awaited thing completes)."""

from __future__ import annotations

import asyncio

from wee5_kit.aio import cancel_and_wait


async def test_a_loop_that_swallows_one_cancellation_is_still_stopped() -> None:
    swallowed = 0

    async def poll_forever() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                if swallowed == 0:  # what wait_for does in that race: carry on
                    swallowed += 1
                    continue
                raise

    task = asyncio.create_task(poll_forever())
    await asyncio.sleep(0.01)
    await asyncio.wait_for(cancel_and_wait([task], every=0.05), timeout=5)
    assert task.cancelled()
    assert swallowed == 1


async def test_finished_tasks_are_left_as_they_are() -> None:
    async def done() -> int:
        return 7

    task = asyncio.create_task(done())
    await task
    await cancel_and_wait([task])
    assert task.result() == 7
