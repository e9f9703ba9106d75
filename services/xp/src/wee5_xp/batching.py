"""Group commit for RecordActivity: concurrent calls share one database transaction.

Each call waits on a future while the writer task gathers what arrived (up to `max_batch`
activities, for at most `window` seconds), records them one after another in one transaction,
commits once, and answers every caller. The window is for callers of one activity each: a call
of several (the gateway's coalesced `RecordActivities`) was gathered by its sender, so the
writer commits it at once, with whatever else is queued (first deliveries of `make bench`
carry ~20 activities a call: each waited 2 ms for nothing more to come). Idempotency stays
per activity (its key is a unique row). If a batch fails, its calls are retried one per
transaction, so one bad activity fails only its own call.

One writer takes the queue in arrival order, a batch at a time, so a member's activities are
applied in the order they came. The next batch's transaction begins as soon as the one
before holds the rows of the members it moves (`depth` transactions at most): a member in
both waits in Postgres until the first commits, while the others' work overlaps the first's
last statements and commit (xp's own CPU and Postgres' no longer take turns). A batch of at
least `max_batch` activities (a RecordActivities call of up to 1,000) is split by member
between `writers` transactions that run at once, each set-based, never one by one: members
are disjoint between them, so the order per member holds. (The one exception: the calls of a
batch that failed are retried while the next batch may already be committing, so they can
land after it; a batch fails only on what validation cannot see, such as a lost connection.)
A smaller batch is one transaction: two half-full transactions at once cost more than one full
one (first deliveries of `make bench`, alternating runs: 481-516/s with two per batch of ~16,
615-631/s with one).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial

from wee5_kit.aio import background, cancel_and_wait
from wee5_kit.errors import Unavailable
from wee5_kit.grpc import request_id_var
from wee5_kit.logging import bound_contextvars, get_logger
from wee5_kit.tracing import TRACING, current_traceparent, span
from wee5_xp.awards import ActivityInput, ActivityResult
from wee5_xp.metrics import BATCH_ACTIVITIES, BATCH_COMMITTED, BATCH_FAILED
from wee5_xp.service import XpService

log = get_logger("wee5.xp.batching")


@dataclass
class _Pending:
    """Activities of one call that go to one writer, committed and answered together."""

    activities: list[ActivityInput]
    future: asyncio.Future[list[ActivityResult]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # The call's request id, for the writer's log lines about this share.
    request_id: str | None = field(default_factory=request_id_var.get)
    # The call's trace ("" when tracing is off): the batch continues the first call's.
    traceparent: str = field(default_factory=current_traceparent)


class ActivityBatcher:
    def __init__(
        self,
        service: XpService,
        *,
        max_batch: int = 128,
        window: float = 0.002,
        writers: int = 2,
        depth: int = 2,
    ) -> None:
        self.service = service
        self.max_batch = max(1, max_batch)
        self.window = max(0.0, window)
        self.writers = max(1, writers)
        self.depth = max(1, depth)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def record(self, activity: ActivityInput) -> ActivityResult:
        """Records one activity in the next group commit; returns once it is committed."""
        activity.validate()  # bad input fails alone, before it can join a batch
        return (await self.record_many([activity]))[0]

    async def record_many(self, activities: Sequence[ActivityInput]) -> list[ActivityResult]:
        """Records activities the caller validated (`XpService.check_batch`), each member's in
        the order given; returns their results in that order once all are committed."""
        if self._task is None:
            self._task = background(self._write(), name="xp-writer")
        pending = _Pending(list(activities))
        self._queue.put_nowait(pending)
        return await pending.future

    async def close(self) -> None:
        """Stops the writer; calls still queued fail as UNAVAILABLE (the caller retries with
        the same idempotency key) instead of waiting forever."""
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        while not self._queue.empty():
            _shutting_down([self._queue.get_nowait()])

    async def _write(self) -> None:
        committing: set[asyncio.Task[None]] = set()
        try:
            while True:
                batch = [await self._queue.get()]
                try:
                    self._drain(batch)
                    if self.window and not _gathered(batch, self.max_batch):
                        await asyncio.sleep(self.window)
                        self._drain(batch)
                except asyncio.CancelledError:
                    _shutting_down(batch)
                    raise
                locked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                task = asyncio.create_task(self._commit(batch, partial(_settle, locked)))
                task.add_done_callback(partial(_settle, locked))
                committing.add(task)
                task.add_done_callback(committing.discard)
                await locked
                if len(committing) >= self.depth:
                    await asyncio.wait(committing, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(committing)

    def _drain(self, batch: list[_Pending]) -> None:
        while _size(batch) < self.max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())

    async def _commit(self, batch: list[_Pending], on_locked: Callable[[], None]) -> None:
        """Commits the batch; `on_locked` is called once its members are locked."""
        live = [item for item in batch if not item.future.done()]
        if not live:
            return
        try:
            with _log_context(live):
                if self.writers > 1 and _size(live) >= self.max_batch:
                    await self._commit_split(live, on_locked)
                else:
                    await self._commit_live(live, on_locked)
        except asyncio.CancelledError:
            # Committed or not, the caller retries with the same key: nothing doubles.
            _shutting_down(live)
            raise
        except Exception as error:  # not the batch's own failure (that is retried): a bug
            log.exception("batch not written")
            _fail(live, error)

    async def _commit_split(self, live: list[_Pending], on_locked: Callable[[], None]) -> None:
        """A large batch in `writers` transactions at once, its members split between them
        (each keeps its calls' order); each call is answered once all its parts are, and
        `on_locked` called once all parts hold their members."""
        parts: list[list[_Pending]] = [[] for _ in range(self.writers)]
        pieces: list[list[tuple[list[int], _Pending]]] = []
        for item in live:
            mine = []
            for writer, indexes in _by_member(item.activities, self.writers).items():
                piece = _Pending(
                    [item.activities[n] for n in indexes],
                    request_id=item.request_id,
                    traceparent=item.traceparent,
                )
                parts[writer].append(piece)
                mine.append((indexes, piece))
            pieces.append(mine)
        started = [part for part in parts if part]
        waiting = len(started)

        def part_locked() -> None:
            nonlocal waiting
            waiting -= 1
            if waiting == 0:
                on_locked()

        await asyncio.gather(*(self._commit_live(part, part_locked) for part in started))
        for item, mine in zip(live, pieces, strict=True):
            # Every piece's outcome is read, so no failure goes unretrieved.
            failed = [e for _, p in mine if (e := p.future.exception()) is not None]
            if item.future.done():
                continue
            if failed:
                item.future.set_exception(failed[0])
                continue
            results: dict[int, ActivityResult] = {}
            for indexes, piece in mine:
                results.update(zip(indexes, piece.future.result(), strict=True))
            item.future.set_result([results[n] for n in range(len(item.activities))])

    async def _commit_live(
        self, live: list[_Pending], on_locked: Callable[[], None] | None = None
    ) -> None:
        activities = [a for p in live for a in p.activities]
        started = time.perf_counter()
        try:
            with _batch_span(live) if TRACING.on else nullcontext():
                async with self.service.transaction() as session:
                    results = await self.service.record_activities(
                        session, activities, on_locked=on_locked
                    )
        except Exception as error:
            BATCH_FAILED.observe(time.perf_counter() - started)
            log.warning("batch failed; retrying its calls one by one", error=repr(error)[:300])
            if len(live) == 1:
                if not live[0].future.done():
                    live[0].future.set_exception(error)
                return
            for item in live:  # isolate the failing call: one transaction each
                if not item.future.done():
                    with _log_context([item]):
                        await self._commit_live([item])
            return
        BATCH_COMMITTED.observe(time.perf_counter() - started)
        BATCH_ACTIVITIES.observe(len(activities))
        start = 0
        for item in live:
            end = start + len(item.activities)
            if not item.future.done():
                item.future.set_result(results[start:end])
            start = end


def _settle(future: asyncio.Future[None], *_: object) -> None:
    """Resolves `future` unless it is already (also as a task's done callback)."""
    if not future.done():
        future.set_result(None)


def _shutting_down(batch: list[_Pending]) -> None:
    _fail(batch, Unavailable("xp is shutting down; retry"))


def _fail(batch: list[_Pending], error: Exception) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(error)


def _log_context(live: list[_Pending]) -> AbstractContextManager[object]:
    """The ids of the calls in a batch, on the writer's log lines about it."""
    return bound_contextvars(
        request_ids=sorted({p.request_id for p in live if p.request_id}),
        community_ids=sorted({a.community_id for p in live for a in p.activities}),
    )


def _batch_span(live: list[_Pending]) -> AbstractContextManager[object]:
    """The batch's span: in the trace of its first call, linked to the others' (the events
    its transaction writes carry the first call's trace on)."""
    return span(
        "xp activity batch",
        traceparent=live[0].traceparent,
        linked=[p.traceparent for p in live[1:] if p.traceparent],
        attributes={"wee5.batch.calls": len(live), "wee5.batch.activities": _size(live)},
    )


def _by_member(activities: Sequence[ActivityInput], writers: int) -> dict[int, list[int]]:
    """The indexes of `activities` each writer takes: a member always to the same one."""
    shares: dict[int, list[int]] = {}
    for n, activity in enumerate(activities):
        member = f"{activity.community_id}\x00{activity.user_id}".encode()
        shares.setdefault(zlib.crc32(member) % writers, []).append(n)
    return shares


def _gathered(batch: list[_Pending], max_batch: int) -> bool:
    """Whether the batch is worth committing without waiting for more: it is full, or a call
    in it carries several activities (its sender gathered them already)."""
    return _size(batch) >= max_batch or any(len(p.activities) > 1 for p in batch)


def _size(batch: list[_Pending]) -> int:
    return sum(len(p.activities) for p in batch)
