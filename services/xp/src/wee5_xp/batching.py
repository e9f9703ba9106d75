"""Group commit for RecordActivity: concurrent calls share one database transaction.

Each call waits on a future while a writer task gathers what arrived (up to `max_batch`
activities, for at most `window` seconds), records them one after another in one transaction,
commits once, and answers every caller. Idempotency stays per activity (its key is a unique
row), and a member always goes to the same writer, in arrival order, so a member's activities
are applied in the order they came. If a batch fails, its activities are retried one per
transaction, so one bad activity fails only its own call.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field

from wee5_kit.aio import cancel_and_wait
from wee5_kit.errors import Unavailable
from wee5_kit.logging import get_logger
from wee5_xp.awards import ActivityInput, ActivityResult
from wee5_xp.service import XpService

log = get_logger("wee5.xp.batching")


@dataclass
class _Pending:
    activity: ActivityInput
    future: asyncio.Future[ActivityResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ActivityBatcher:
    def __init__(
        self, service: XpService, *, max_batch: int = 128, window: float = 0.002, writers: int = 2
    ) -> None:
        self.service = service
        self.max_batch = max(1, max_batch)
        self.window = max(0.0, window)
        self._queues: list[asyncio.Queue[_Pending]] = [asyncio.Queue() for _ in range(writers)]
        self._tasks: list[asyncio.Task[None]] = []

    async def record(self, activity: ActivityInput) -> ActivityResult:
        """Records one activity in the next group commit; returns once it is committed."""
        activity.validate()  # bad input fails alone, before it can join a batch
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._write(q)) for q in self._queues]
        pending = _Pending(activity)
        member = f"{activity.community_id}\x00{activity.user_id}".encode()
        self._queues[zlib.crc32(member) % len(self._queues)].put_nowait(pending)
        return await pending.future

    async def close(self) -> None:
        """Stops the writers; calls still queued fail as UNAVAILABLE (the caller retries with
        the same idempotency key) instead of waiting forever."""
        await cancel_and_wait(self._tasks)
        self._tasks = []
        for queue in self._queues:
            while not queue.empty():
                pending = queue.get_nowait()
                if not pending.future.done():
                    pending.future.set_exception(Unavailable("xp is shutting down; retry"))

    async def _write(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            try:
                self._drain(queue, batch)
                if len(batch) < self.max_batch and self.window:
                    await asyncio.sleep(self.window)
                    self._drain(queue, batch)
                await self._commit(batch)
            except asyncio.CancelledError:
                # Committed or not, the caller retries with the same key: nothing doubles.
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(Unavailable("xp is shutting down; retry"))
                raise

    def _drain(self, queue: asyncio.Queue[_Pending], batch: list[_Pending]) -> None:
        while len(batch) < self.max_batch and not queue.empty():
            batch.append(queue.get_nowait())

    async def _commit(self, batch: list[_Pending]) -> None:
        live = [item for item in batch if not item.future.done()]
        if not live:
            return
        try:
            async with self.service.transaction() as session:
                results = await self.service.record_activities(session, [p.activity for p in live])
        except Exception as error:
            log.warning("batch failed; retrying its activities one by one", error=repr(error)[:300])
            if len(live) == 1:
                if not live[0].future.done():
                    live[0].future.set_exception(error)
                return
            for item in live:  # isolate the failing activity: one transaction each
                await self._commit([item])
            return
        for item, result in zip(live, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)
