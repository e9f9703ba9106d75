"""The activities of deliveries that arrive together go to xp in one call.

A gRPC call costs more CPU at both ends than the activity costs xp's group commit (about
0.3 ms here and 0.5 ms in xp per call, profiled; a call of 8 activities costs about a fifth of
that per activity), so a busy gateway should make few calls carrying many activities. While
`max_in_flight` calls are out, arriving activities wait, and leave together in the next
`RecordActivities` call (at most `max_batch` of them) as soon as one returns. An idle gateway
sends each at once with `RecordActivity`, so nothing waits that did not have to. xp records each
on its own idempotency key either way, queued in the order they arrived here.

A call beyond the first out leaves only once `extra_from` activities wait for it: then xp has
the next batch at hand when it commits the one before (its group commit takes it at once),
instead of the batch crossing gRPC and the gateway's loop between two commits; and no second
call leaves for the one or two activities that happen to wait, costing as much as a full one.
`make bench`'s first deliveries at 32 connections, alternating runs: one call out at a time
849/903/888/752/719/771/712 per s; two, the second from 12 waiting, 1,037/1,093/918/850/914/
876/875 (a second call from the first waiting activity measured no better than one). Two
deliveries out at once have no order between them (their provider sent them concurrently); one
sent after another was answered is recorded after it, as before.

A call that returns to fewer waiting activities than half of what it carried holds its place
for `hold` seconds before the next call leaves. Under load the deliveries it answered are back
within a few milliseconds (their senders' next ones) and join the next call; without the hold,
the one or two that happened to be waiting left alone, in a call that took xp as long as a full
one, while the rest queued behind it, so calls alternated between many activities and one
(`make bench`'s first deliveries at 32 connections, alternating runs: 174-213 calls of one
activity per 8 s without the hold, 2-17 with 2 ms; 437-547 → 521-592 deliveries/s). A call of
one activity never holds, so a quiet gateway sends each delivery at once as before.

A batch call that fails is not the end: each of its activities is sent again on its own, so
every delivery gets its own answer (an activity xp refuses fails only its own delivery; one
xp had committed before the failure is answered duplicate, and counted once).
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from wee5.xp.v1 import xp_pb2

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub


@dataclass
class _Waiting:
    activity: xp_pb2.Activity
    answer: asyncio.Future[xp_pb2.RecordActivityResponse]
    # The delivery's own context (request id, deadline), for a call made for it alone.
    context: contextvars.Context


class ActivitySender:
    """Records activities in xp, coalescing those that arrive while calls are out."""

    def __init__(
        self,
        xp: XpServiceAsyncStub,
        *,
        max_in_flight: int,
        max_batch: int,
        hold: float = 0.0,
        extra_from: int = 1,
    ) -> None:
        self.xp = xp
        self.max_in_flight = max(1, max_in_flight)
        self.extra_from = max(1, extra_from)
        self.max_batch = max(1, max_batch)
        self.hold = max(0.0, hold)
        self._waiting: list[_Waiting] = []
        self._in_flight = 0
        self._calls: set[asyncio.Task[None]] = set()

    async def record(self, activity: xp_pb2.Activity) -> xp_pb2.RecordActivityResponse:
        """xp's answer for the activity, once it is committed there. Raises the call's
        `grpc.aio.AioRpcError` as a call of its own would."""
        answer: asyncio.Future[xp_pb2.RecordActivityResponse] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting.append(_Waiting(activity, answer, contextvars.copy_context()))
        if self._may_send():
            self._send_waiting()
        return await answer

    async def close(self) -> None:
        """Waits for the calls still out (each has its deadline)."""
        if self._calls:
            await asyncio.wait(self._calls)

    def _send_waiting(self) -> None:
        batch = self._waiting[: self.max_batch]
        del self._waiting[: self.max_batch]
        self._in_flight += 1
        # A call for one delivery carries its request id; a shared one gets an id of its own.
        context = batch[0].context if len(batch) == 1 else contextvars.Context()
        call = asyncio.get_running_loop().create_task(self._send(batch), context=context)
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _send(self, batch: list[_Waiting]) -> None:
        try:
            # A delivery whose request was given up before its turn is not sent.
            live = [waiting for waiting in batch if not waiting.answer.done()]
            if len(live) == 1:
                await _send_alone(self.xp, live[0])
            elif live:
                await self._send_together(live)
        finally:
            if self.hold and len(self._waiting) < len(batch) // 2:
                asyncio.get_running_loop().call_later(self.hold, self._returned)
            else:
                self._returned()

    def _returned(self) -> None:
        """A call's place is free: the next one leaves if activities wait."""
        self._in_flight -= 1
        if self._waiting and self._may_send():
            self._send_waiting()

    def _may_send(self) -> bool:
        """A call leaves when none is out; another one only for `extra_from` activities."""
        if self._in_flight == 0:
            return True
        return self._in_flight < self.max_in_flight and len(self._waiting) >= self.extra_from

    async def _send_together(self, live: list[_Waiting]) -> None:
        try:
            reply = await self.xp.RecordActivities(
                xp_pb2.RecordActivitiesRequest(activities=[w.activity for w in live])
            )
        except grpc.aio.AioRpcError:
            # Each on its own, for an answer (or refusal) of its own.
            loop = asyncio.get_running_loop()
            await asyncio.gather(
                *(loop.create_task(_send_alone(self.xp, w), context=w.context) for w in live)
            )
            return
        except BaseException as error:
            for waiting in live:
                _settle(waiting, error=error)
            raise
        if len(reply.results) != len(live):
            mismatch = RuntimeError(
                f"xp answered {len(reply.results)} results for {len(live)} activities"
            )
            for waiting in live:
                _settle(waiting, error=mismatch)
            return
        for waiting, result in zip(live, reply.results, strict=True):
            _settle(waiting, result=result)


async def _send_alone(xp: XpServiceAsyncStub, waiting: _Waiting) -> None:
    try:
        reply = await xp.RecordActivity(xp_pb2.RecordActivityRequest(activity=waiting.activity))
    except BaseException as error:
        _settle(waiting, error=error)
        if not isinstance(error, Exception):
            raise
        return
    _settle(waiting, result=reply)


def _settle(
    waiting: _Waiting,
    *,
    result: xp_pb2.RecordActivityResponse | None = None,
    error: BaseException | None = None,
) -> None:
    if waiting.answer.done():
        return
    if error is not None:
        if isinstance(error, asyncio.CancelledError):
            waiting.answer.cancel()
        else:
            waiting.answer.set_exception(error)
    else:
        assert result is not None
        waiting.answer.set_result(result)
