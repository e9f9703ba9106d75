"""asyncio helpers every process needs once."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def background(work: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
    """A task for work that outlives the call that started it (a group-commit writer, a
    shared board load, a relay): it runs in an empty context, so its log lines carry the ids
    it binds for the work it does, never the request id of whichever call happened to start
    it."""
    return asyncio.get_running_loop().create_task(work, name=name, context=contextvars.Context())


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]], *, every: float = 0.5) -> None:
    """Cancels `tasks` and waits until all have ended, cancelling again while any runs.

    On Python 3.11 `asyncio.wait_for` (which nats-py and our poll loops use) can swallow a
    cancellation that lands just as the awaited thing finishes or times out; a loop that then
    goes round again would never stop, and a shutdown that cancelled it once would hang.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
