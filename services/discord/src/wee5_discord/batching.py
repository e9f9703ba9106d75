"""Activities go to xp's RecordActivities in batches: at most `max_batch` per call, at least
every `interval` seconds. xp takes a batch whole or not at all, so a refused batch
(INVALID_ARGUMENT) is sent again one activity at a time and only the refused ones are
dropped; anything else (xp restarting, a deadline) keeps the batch and tries again with
backoff. Every activity carries its Discord id as idempotency key, so a batch sent twice
counts once. `close` sends what is pending before the process exits (SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_discord.metrics import ACTIVITIES_SENT
from wee5_kit.logging import get_logger

log = get_logger("wee5.discord.batching")

MAX_BATCH_RPC = 1000  # xp's own limit per RecordActivities call
BACKOFF_MAX_SECONDS = 10.0


class ActivityBatcher:
    def __init__(
        self, xp: xp_pb2_grpc.XpServiceAsyncStub, *, max_batch: int = 200, interval: float = 1.0
    ) -> None:
        self.xp = xp
        self.max_batch = max(1, min(max_batch, MAX_BATCH_RPC))
        self.interval = interval
        self.pending: list[xp_pb2.Activity] = []
        self.sent = 0
        self.dropped = 0
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0

    def add(self, activity: xp_pb2.Activity) -> None:
        self.pending.append(activity)
        if len(self.pending) >= self.max_batch:
            self._full.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="activity batches")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._full.wait()
            self._full.clear()
            while self.pending:
                if not await self.flush_once():
                    await asyncio.sleep(min(BACKOFF_MAX_SECONDS, 0.2 * 2**self._failures))
                    break
                if len(self.pending) < self.max_batch:
                    break

    async def flush_once(self) -> bool:
        """Sends the oldest batch; False when xp could not take it (it stays pending)."""
        batch = self.pending[: self.max_batch]
        refused = 0
        try:
            await self.xp.RecordActivities(xp_pb2.RecordActivitiesRequest(activities=batch))
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
                self._failures += 1
                log.warning(
                    "xp did not take a batch; kept to try again",
                    code=error.code().name,
                    activities=len(batch),
                )
                return False
            try:
                refused = await self._one_by_one(batch)
            except grpc.aio.AioRpcError as again:
                self._failures += 1
                log.warning("xp did not take a batch; kept", code=again.code().name)
                return False
        self._failures = 0
        del self.pending[: len(batch)]
        self.sent += len(batch) - refused
        self.dropped += refused
        ACTIVITIES_SENT.labels("sent").inc(len(batch) - refused)
        ACTIVITIES_SENT.labels("dropped").inc(refused)
        return True

    async def _one_by_one(self, batch: list[xp_pb2.Activity]) -> int:
        """Sends each activity alone (xp took them all or none); how many xp refused."""
        refused = 0
        for activity in batch:
            try:
                await self.xp.RecordActivities(
                    xp_pb2.RecordActivitiesRequest(activities=[activity])
                )
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                refused += 1
                log.warning(
                    "xp refused an activity; dropped",
                    community_id=activity.community_id,
                    key=activity.idempotency_key,
                    detail=error.details(),
                )
        return refused

    async def close(self, within: float = 10.0) -> None:
        """Stops the timer and sends everything pending (for at most `within` seconds)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            async with asyncio.timeout(within):
                while self.pending:
                    if not await self.flush_once():
                        await asyncio.sleep(0.5)
        except TimeoutError:
            log.error("activities lost at shutdown: xp did not take them", lost=len(self.pending))
        except grpc.aio.AioRpcError as error:
            log.error("activities lost at shutdown", lost=len(self.pending), code=error.code().name)
