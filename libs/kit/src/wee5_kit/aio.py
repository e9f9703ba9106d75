"""asyncio helpers every process needs once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


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
