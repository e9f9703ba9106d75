"""Webhook receipts: the quick answer to a redelivery, and the record of what was acknowledged.

xp is the exactly-once guarantee: it records an activity once per idempotency key (the
delivery id) and answers `duplicate` to a repeat. A receipt only spares a redelivery its trip to
xp, so it can be cheap without being less safe:

- `seen`: the ids this process acknowledged lately (bounded, in memory), then a Redis key that
  every gateway replica shares (kept for `ttl_seconds`, longer than providers redeliver). Only
  while Redis fails are the Postgres receipts read instead.
- The Redis commands of the deliveries handled in the same turn of the event loop (the receipts
  of the deliveries one xp call answered; the checks of deliveries that arrived together) go
  to Redis in one pipeline (`RedisBatcher`): a command on its own cost a delivery more of the
  gateway's CPU than its check or record did (profiled under load: a fifth of a first
  delivery's time was redis-py's per-call work).
- `record`, called once xp has committed: the id joins the recent ids and Redis before the
  delivery is answered, so every replica knows it at once; the Postgres row (the record the
  setup page counts, and the experience → company a delivery taught us) is written behind, in
  batches, by one writer task. Its queue is bounded, so a slow database slows the intake instead
  of growing memory; it is flushed at shutdown. A row that never reaches Postgres costs a
  redelivery one trip to xp, which answers duplicate.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from wee5_gateway.db.repository import ReceiptRepository, ReceiptRow
from wee5_kit.aio import background, cancel_and_wait
from wee5_kit.communities import is_community_id
from wee5_kit.logging import get_logger
from wee5_kit.redis import Keys

log = get_logger("wee5.gateway.webhooks")

# Redis gets this long per call; after a failure it is left alone for a while and the Postgres
# receipts answer instead (a receipt check must never make the intake slow).
REDIS_TIMEOUT_SECONDS = 0.25
REDIS_RETRY_AFTER_FAILURE_SECONDS = 5.0
# Longest pause between two attempts to write a batch while Postgres fails.
MAX_RETRY_SECONDS = 30.0
_MAX_EVENT_TYPE = 200
_MAX_REASON = 500


@dataclass(frozen=True)
class Receipt:
    """An acknowledged delivery; `experience` is a (community, company) pair it taught us."""

    provider: str
    webhook_id: str
    event_type: str
    outcome: str
    community_id: str | None = None
    experience: tuple[str, str] | None = None
    reason: str | None = None  # why a rejected delivery could not be used

    def row(self) -> ReceiptRow:
        """The row as Postgres can always store it (no NUL, bounded lengths), so one odd
        delivery can never stop the writer."""
        return ReceiptRow(
            self.provider,
            self.webhook_id.replace("\x00", ""),
            self.event_type.replace("\x00", "")[:_MAX_EVENT_TYPE],
            self.outcome,
            self.community_id if is_community_id(self.community_id) else None,
            self.reason.replace("\x00", "")[:_MAX_REASON] if self.reason else None,
        )


class RecentIds:
    """The delivery ids this process saw last, at most `size` of them (the least recently
    seen is forgotten first)."""

    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        if key in self._ids:
            self._ids.move_to_end(key)
            return True
        return False

    def add(self, key: str) -> None:
        if not self.size:
            return
        self._ids[key] = None
        self._ids.move_to_end(key)
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)


class ReceiptWriter:
    """Writes receipts to Postgres behind the requests that recorded them: one task, batches of
    whatever queued up meanwhile (up to `batch_size`), retried until they are written."""

    def __init__(
        self, engine: AsyncEngine, *, max_pending: int, batch_size: int, retry_seconds: float = 0.5
    ) -> None:
        self.engine = engine
        self.batch_size = max(1, batch_size)
        self.retry_seconds = retry_seconds
        self._queue: asyncio.Queue[Receipt] = asyncio.Queue(max(1, max_pending))
        self._added = 0  # receipts handed in so far
        self._written = 0  # the first this many of them are in Postgres
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = background(self._run(), name="webhook-receipt-writer")

    async def add(self, receipt: Receipt) -> None:
        """Queues the receipt; waits for room while the queue is full (Postgres is behind)."""
        await self._queue.put(receipt)
        self._added += 1

    @property
    def pending(self) -> int:
        return self._added - self._written

    async def flush(self) -> None:
        """Returns once every receipt added before the call is in Postgres."""
        target = self._added
        if self._written >= target:
            return
        if self._task is None:
            raise RuntimeError("the receipt writer is not running")
        async with self._progress:
            await self._progress.wait_for(lambda: self._written >= target)

    async def close(self, grace_seconds: float) -> None:
        """Writes what is queued (for at most `grace_seconds`), then stops."""
        if self._task is None:
            return
        try:
            async with asyncio.timeout(grace_seconds):
                await self.flush()
        except TimeoutError:
            log.warning(
                "webhook receipts not written at shutdown; their redeliveries go to xp, "
                "which answers duplicate",
                receipts=self.pending,
            )
        await cancel_and_wait([self._task])
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch)
            self._written += len(batch)
            async with self._progress:
                self._progress.notify_all()

    async def _write(self, batch: list[Receipt]) -> None:
        delay = self.retry_seconds
        while True:
            try:
                await self._insert(batch)
                return
            except (DataError, IntegrityError) as error:
                # Not the database being away: some row it refuses. Each alone, then.
                log.warning("webhook receipt batch refused; writing one by one", error=repr(error))
                await self._insert_each(batch)
                return
            except Exception as error:
                log.warning(
                    "webhook receipts not written yet; retrying",
                    error=type(error).__name__,
                    receipts=len(batch),
                    retry_in_seconds=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def _insert(self, batch: list[Receipt]) -> None:
        experiences = {r.experience for r in batch if r.experience is not None}
        async with ReceiptRepository.open(self.engine) as receipts:
            await receipts.record_many([r.row() for r in batch])
            if experiences:
                await receipts.learn_experiences(sorted(experiences))

    async def _insert_each(self, batch: list[Receipt]) -> None:
        for receipt in batch:
            try:
                await self._insert([receipt])
            except (DataError, IntegrityError) as error:
                log.warning(
                    "webhook receipt dropped",
                    webhook_id=receipt.webhook_id[:200],
                    error=repr(error)[:300],
                )


class RedisBatcher:
    """Runs the Redis commands asked for in the same turn of the event loop in one pipeline
    (not a transaction): the first command of a turn schedules the pipeline for the next one,
    the later ones join it. Each caller gets its own reply, or the pipeline's error."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._running: set[asyncio.Task[None]] = set()

    def call(self, *command: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._pending.append((command, reply))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return reply

    async def close(self) -> None:
        """Waits for the pipelines already sent (each has its socket timeout)."""
        if self._running:
            await asyncio.wait(self._running)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for command, _ in batch:
                    pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as error:
            for _, reply in batch:
                if not reply.done():
                    reply.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for (_, reply), answer in zip(batch, replies, strict=True):
            if reply.done():  # its caller gave up waiting
                continue
            if isinstance(answer, Exception):
                reply.set_exception(answer)
            else:
                reply.set_result(answer)


class WebhookReceipts:
    """Whether a delivery was acknowledged before, and recording that it now is (module doc)."""

    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        keys: Keys,
        *,
        ttl_seconds: int,
        recent: int,
        max_pending: int,
        batch_size: int,
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self.recent = RecentIds(recent)
        self.writer = ReceiptWriter(engine, max_pending=max_pending, batch_size=batch_size)
        self.commands = RedisBatcher(redis)
        self._redis_paused_until = 0.0

    def key(self, provider: str, webhook_id: str) -> str:
        return self.keys("webhook", provider, webhook_id)

    async def seen(self, provider: str, webhook_id: str) -> bool:
        """True when the delivery was acknowledged before (by any replica)."""
        key = self.key(provider, webhook_id)
        if key in self.recent:
            return True
        found = await self._redis(lambda: self.commands.call("EXISTS", key))
        if found is None:
            async with ReceiptRepository.open(self.engine) as receipts:
                found = await receipts.exists(provider, webhook_id)
        if found:
            self.recent.add(key)
        return bool(found)

    async def record(self, receipt: Receipt) -> None:
        """Records an acknowledged delivery; call it only after its effect is committed."""
        key = self.key(receipt.provider, receipt.webhook_id)
        self.recent.add(key)
        await self._redis(
            lambda: self.commands.call("SET", key, receipt.outcome, "EX", self.ttl_seconds)
        )
        await self.writer.add(receipt)

    async def flush(self) -> None:
        """Waits until the receipts recorded so far are in Postgres (readers of the table)."""
        await self.writer.flush()

    async def _redis(self, call: Callable[[], object]) -> int | None:
        """The reply of one Redis call, or None when Redis failed (then it is left alone for
        a few seconds)."""
        if time.monotonic() < self._redis_paused_until:
            return None
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS * 2):
                reply = await cast("asyncio.Future[object]", call())
        except (RedisError, OSError, TimeoutError) as error:
            self._redis_paused_until = time.monotonic() + REDIS_RETRY_AFTER_FAILURE_SECONDS
            log.warning(
                "webhook receipts: Redis failed; Postgres answers for a while",
                error=type(error).__name__,
                retry_in_seconds=REDIS_RETRY_AFTER_FAILURE_SECONDS,
            )
            return None
        return int(bool(reply))


def receipt_redis(url: str) -> Redis:
    """A client of our own: short timeouts and no retries, so a Redis outage costs a delivery
    at most one short wait."""
    client: Redis = Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    return client
