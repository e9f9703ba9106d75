"""The live feed: one JetStream tail per context for the whole gateway process, fanned out to
the open streams of each community, and catch-up from a client's cursor.

One tail per process, not a consumer per connection: every event crosses the network to the
gateway and is decoded once however many browsers watch, subjects are not community-scoped
(so per-connection consumers would each receive every community's events), and opening a
stream costs no round trip to NATS. Only a resuming client gets a consumer of its own, for
as long as it takes to replay what it missed; it is deleted as soon as that is done.

The hand-over from catch-up to live is exact: a listener joins the tails synchronously and
remembers their positions (`opened_at`); everything up to those positions is replayed from
the streams, everything after arrives through the tails. Dispatch and joining both run on
the event loop, so no event falls between the two or is sent by both.

The tails follow only while someone listens: the first listener wakes them (each starts
right after its stream's last sequence, so the hand-over stays exact), and they stop when
nobody has listened for `idle_seconds`. A gateway with no open stream receives none of the
events: under ingest, following the xp stream for nobody took a fifth of its CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from wee5_gateway.api.stream.cursor import CONTEXTS, Cursor
from wee5_gateway.api.stream.events import StreamEvent, decode
from wee5_gateway.core.problems import ProblemError
from wee5_kit.aio import background, cancel_and_wait
from wee5_kit.events import EventBus
from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway.stream")

# Consumers of the gateway carry this description, so an operator listing a stream's
# consumers can tell them apart from the services' durables.
CONSUMER_DESCRIPTION = "wee5 gateway live stream"
# Events of one community waiting for a slow client before its stream is ended (it resumes
# from its cursor on reconnecting, so nothing is lost).
LISTENER_BACKLOG = 1000
# While a tail sees no events it checks this often that its stream still exists.
_TAIL_HEALTH_CHECK_SECONDS = 30.0
# Catch-up reads in batches; a fetch finding nothing this long means the rest is gone
# (removed by the stream's retention).
_REPLAY_BATCH = 256
_REPLAY_FETCH_SECONDS = 2.0
# The server deletes a catch-up consumer unused this long: a gateway that died mid-replay
# leaves nothing behind.
_REPLAY_INACTIVE_SECONDS = 60.0


class StreamUnavailable(ProblemError):
    status = 503
    slug = "stream-unavailable"
    title = "Live stream unavailable"


class TooManyStreams(ProblemError):
    status = 429
    slug = "too-many-streams"
    title = "Too many live streams"


@dataclass(frozen=True)
class StartPoint:
    """Where a new stream starts, and why it does not resume where the client asked
    (None: it does, or the client asked nothing)."""

    cursor: Cursor
    reset: str | None = None


class Listener:
    """One open stream: the events of one community, in arrival order, after `opened_at`."""

    def __init__(
        self, community_id: str, opened_at: Mapping[str, int], backlog: int, principal: str = ""
    ) -> None:
        self.community_id = community_id
        # Whose stream it is (counted against their own limit).
        self.principal = principal
        # Each tail's last dispatched sequence when this listener joined.
        self.opened_at = dict(opened_at)
        self.ended: str | None = None
        self._backlog = backlog
        # None marks the end; the queue is bounded by `offer`, not by asyncio, so that the
        # end mark always fits.
        self._queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue()

    def offer(self, event: StreamEvent) -> None:
        if self.ended is not None:
            return
        if self._queue.qsize() >= self._backlog:
            self.end("the client did not keep up")
            return
        self._queue.put_nowait(event)

    def end(self, reason: str) -> None:
        """Ends the stream once the events already queued are sent."""
        if self.ended is None:
            self.ended = reason
            self._queue.put_nowait(None)

    async def next_event(self) -> StreamEvent | None:
        """The next event, or None when the feed ended this stream."""
        return await self._queue.get()

    @property
    def idle(self) -> bool:
        """Every event dispatched to this listener has been taken."""
        return self._queue.empty()


class LiveFeed:
    """The tails of the streamed contexts and the listeners of each community."""

    def __init__(
        self,
        bus: EventBus,
        *,
        max_listeners: int,
        missing_stream_retry_seconds: float,
        backlog: int = LISTENER_BACKLOG,
        max_per_principal: int = 5,
        resume_max_events: int = 10_000,
        idle_seconds: float = 60.0,
    ) -> None:
        self.bus = bus
        self.idle_seconds = idle_seconds
        self.max_listeners = max_listeners
        self.max_per_principal = max_per_principal
        self.resume_max_events = resume_max_events
        self._per_principal: dict[str, int] = {}
        self.missing_stream_retry_seconds = missing_stream_retry_seconds
        self._backlog = backlog
        self._tails = {context: _Tail(self, context) for context in CONTEXTS}
        self._listeners: dict[str, set[Listener]] = {}
        self._count = 0
        self._closed = False
        # Held while the tails start or stop, so an opening listener and an idle stop never
        # interleave.
        self._waking = asyncio.Lock()
        self._sleeper: asyncio.Task[None] | None = None

    @property
    def following(self) -> bool:
        """The tails follow their streams (someone listens, or did a moment ago)."""
        return any(tail.following for tail in self._tails.values())

    def drain(self) -> None:
        """Ends every open stream and refuses new ones."""
        self._closed = True
        self.end_all("the gateway is shutting down")

    async def close(self) -> None:
        """Drains, and deletes the tails' consumers."""
        self.drain()
        if self._sleeper is not None:
            await cancel_and_wait([self._sleeper])
        async with self._waking:
            for tail in self._tails.values():
                await tail.stop()

    async def _wake(self) -> None:
        if self._sleeper is not None:
            self._sleeper.cancel()
            self._sleeper = None
        async with self._waking:
            for tail in self._tails.values():
                if not tail.following:
                    try:
                        await tail.start()
                    except Exception as error:
                        log.warning("live feed could not wake", error=repr(error))
                        raise StreamUnavailable(
                            "the event streams cannot be reached; try again shortly",
                            headers={"Retry-After": "5"},
                        ) from error

    async def _sleep_when_idle(self) -> None:
        await asyncio.sleep(self.idle_seconds)
        # Past this point a new listener waits for the lock instead of cancelling a stop
        # half done, and wakes the tails again after it.
        self._sleeper = None
        async with self._waking:
            if self._count == 0:
                for tail in self._tails.values():
                    await tail.stop()
                log.info("live feed stopped following: nobody listens")

    @property
    def positions(self) -> dict[str, int]:
        """The last sequence each tail has dispatched."""
        return {context: tail.position for context, tail in self._tails.items()}

    @property
    def listener_count(self) -> int:
        return self._count

    @property
    def has_listeners(self) -> bool:
        return self._count > 0

    async def open(self, community_id: str, principal: str = "") -> Listener:
        """Joins a new listener of `principal` (who the caller is) to the tails, waking them
        when they sleep; it must be `release`d."""
        self._admit(principal)
        await self._wake()
        # Checked again: the gateway may have begun to drain, or other streams opened, while
        # the tails woke.
        self._admit(principal)
        listener = Listener(community_id, self.positions, self._backlog, principal)
        self._listeners.setdefault(community_id, set()).add(listener)
        self._count += 1
        self._per_principal[principal] = self._per_principal.get(principal, 0) + 1
        return listener

    def _admit(self, principal: str) -> None:
        """Refuses a new listener beyond the gateway's or the caller's limit."""
        if self._closed:
            raise StreamUnavailable(
                "the gateway is shutting down; reconnect", headers={"Retry-After": "1"}
            )
        if self._count >= self.max_listeners:
            raise StreamUnavailable(
                "this gateway serves as many live streams as it can; try again shortly",
                headers={"Retry-After": "5"},
            )
        held = self._per_principal.get(principal, 0)
        if held >= self.max_per_principal:
            raise TooManyStreams(
                f"you have {held} live streams open, the most one caller may hold; close one "
                "(a browser tab) or try again shortly",
                headers={"Retry-After": "5"},
            )

    def release(self, listener: Listener) -> None:
        """Leaves the tails; safe to call more than once."""
        listeners = self._listeners.get(listener.community_id)
        if listeners is None or listener not in listeners:
            return
        listeners.remove(listener)
        if not listeners:
            del self._listeners[listener.community_id]
        self._count -= 1
        held = self._per_principal.pop(listener.principal, 1) - 1
        if held > 0:
            self._per_principal[listener.principal] = held
        if self._count == 0 and self._sleeper is None and not self._closed:
            self._sleeper = background(self._sleep_when_idle(), name="live-feed-idle")

    def end_all(self, reason: str) -> None:
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.end(reason)

    def publish(self, event: StreamEvent) -> None:
        for listener in self._listeners.get(event.community_id, ()):
            listener.offer(event)

    async def start_cursor(
        self, listener: Listener, requested: Mapping[str, int] | None
    ) -> StartPoint:
        """Where `listener`'s stream starts: after `requested` (a client's Last-Event-ID),
        or with what is new; a context the client does not name starts with what is new.
        A cursor further back than `resume_max_events`, or before what the stream still
        keeps, is not replayed: the stream starts with what is new and says so (`reset`)."""
        if requested is None:
            return StartPoint(Cursor(listener.opened_at))
        sequences = {**listener.opened_at, **requested}
        for context, sequence in requested.items():
            joined = listener.opened_at[context]
            if sequence > joined:
                # Ahead of this tail: either another replica's tail is a moment ahead, or the
                # cursor is not from this stream (recreated since, or made up). Past the
                # stream's end it would silently hide the next events, so it is pulled back.
                sequences[context] = min(sequence, await self._tails[context].last_sequence())
            elif joined - sequence > self.resume_max_events:
                return StartPoint(
                    Cursor(listener.opened_at),
                    f"Last-Event-ID is more than {self.resume_max_events} {context} events "
                    "behind; reload what you show, the stream goes on from now",
                )
            elif sequence < joined and sequence + 1 < await self._tails[context].first_sequence():
                return StartPoint(
                    Cursor(listener.opened_at),
                    f"the {context} events after Last-Event-ID are no longer kept; reload what "
                    "you show, the stream goes on from now",
                )
        return StartPoint(Cursor(sequences))

    async def replay(self, listener: Listener, cursor: Cursor) -> AsyncGenerator[StreamEvent, None]:
        """The listener's community's events after `cursor` up to where the listener joined
        the tails."""
        for context, first, last in cursor.behind(listener.opened_at):
            async with contextlib.aclosing(
                self._tails[context].replay(first, last, listener.community_id)
            ) as events:
                async for event in events:
                    yield event


class _Tail:
    """Follows one context's stream (an ordered consumer) from where it was woken."""

    def __init__(self, feed: LiveFeed, context: str) -> None:
        self.feed = feed
        self.context = context
        self.stream = feed.bus.stream_name(context)
        self.subject = feed.bus.subject(f"{context}.>")
        # The last sequence dispatched to listeners.
        self.position = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def following(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        # A stream that does not exist yet (its service has not started) starts at 0: all
        # of it will be new.
        self.position = await self.last_sequence()
        self._stopping = False
        # Returns once the first try to follow has its consumer (or found no stream).
        tried = asyncio.Event()
        self._task = background(self._follow_forever(tried), name=f"live-feed-{self.context}")
        await tried.wait()

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task])

    async def first_sequence(self) -> int:
        """The oldest sequence the stream still keeps (its retention removed the ones
        before); 0 when there is no stream."""
        return (await self._bounds())[0]

    async def last_sequence(self) -> int:
        return (await self._bounds())[1]

    async def _bounds(self) -> tuple[int, int]:
        """The stream's first and last sequence; (0, 0) when there is no stream."""
        try:
            info = await self.feed.bus.js.stream_info(self.stream)
        except NotFoundError:
            return 0, 0
        return int(info.state.first_seq), int(info.state.last_seq)

    async def _follow_forever(self, tried: asyncio.Event) -> None:
        waiting_logged = False
        while not self._stopping:
            try:
                await self._follow(tried)
            except NotFoundError:
                if not waiting_logged:
                    log.info("live feed waiting for stream", stream=self.stream)
                    waiting_logged = True
            except Exception:
                log.exception("live feed lost its stream; following it again", stream=self.stream)
            tried.set()
            await asyncio.sleep(self.feed.missing_stream_retry_seconds)

    async def _follow(self, tried: asyncio.Event) -> None:
        js = self.feed.bus.js
        info = await js.stream_info(self.stream)
        if info.state.last_seq < self.position:
            # Deleted and created anew: sequences restarted, and every cursor into the old
            # stream means nothing. Open streams end; clients resume from the new start.
            log.warning("live feed stream was reset", stream=self.stream)
            self.position = 0
            self.feed.end_all("the event stream was reset")
        subscription = await js.subscribe(
            self.subject,
            stream=self.stream,
            ordered_consumer=True,
            config=ConsumerConfig(
                description=CONSUMER_DESCRIPTION,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.position + 1,
            ),
        )
        log.info("live feed following stream", stream=self.stream, after=self.position)
        tried.set()
        try:
            while not self._stopping:
                try:
                    msg = await subscription.next_msg(timeout=_TAIL_HEALTH_CHECK_SECONDS)
                except TimeoutError:
                    # NotFoundError once the stream is gone; a reset is noticed on return.
                    info = await js.stream_info(self.stream)
                    if info.state.last_seq < self.position:
                        return
                    continue
                self._dispatch(msg)
        finally:
            # An ordered consumer recreates itself after gaps; this is its current name.
            await _drop(self.feed.bus, subscription, self.stream, subscription._consumer)

    def _dispatch(self, msg: Msg) -> None:
        sequence = msg.metadata.sequence.stream
        if sequence <= self.position:
            # An ordered consumer that recreated itself before its first message starts
            # over at the stream's beginning; what was dispatched already is skipped.
            return
        self.position = sequence
        if not self.feed.has_listeners:
            return
        event = decode(self.feed.bus.prefix, self.context, msg)
        if event is not None:
            self.feed.publish(event)

    async def replay(
        self, first: int, last: int, community_id: str
    ) -> AsyncGenerator[StreamEvent, None]:
        """`community_id`'s events with sequences `first`..`last`, from a consumer of its own."""
        js = self.feed.bus.js
        config = ConsumerConfig(
            description=CONSUMER_DESCRIPTION,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=first,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=_REPLAY_INACTIVE_SECONDS,
            mem_storage=True,
            num_replicas=1,
        )
        try:
            subscription = await js.pull_subscribe(self.subject, stream=self.stream, config=config)
        except NotFoundError:
            return  # the stream is gone, and with it what there was to replay
        try:
            while True:
                try:
                    batch = await subscription.fetch(_REPLAY_BATCH, timeout=_REPLAY_FETCH_SECONDS)
                except TimeoutError:
                    return  # the rest is gone: removed by the stream's retention
                for msg in batch:
                    sequence = msg.metadata.sequence.stream
                    if sequence > last:
                        return
                    event = decode(self.feed.bus.prefix, self.context, msg)
                    if event is not None and event.community_id == community_id:
                        yield event
                    if sequence == last:
                        return
        finally:
            # pull_subscribe named the consumer in `config`.
            await _drop(self.feed.bus, subscription, self.stream, config.name)


async def _drop(
    bus: EventBus,
    subscription: JetStreamContext.PushSubscription | JetStreamContext.PullSubscription,
    stream: str,
    consumer: str | None,
) -> None:
    """Ends interest and deletes the consumer now, rather than when the server notices."""
    with contextlib.suppress(Exception):
        await subscription.unsubscribe()
    if consumer is None or bus.nc.is_closed:
        return
    try:
        await bus.js.delete_consumer(stream, consumer)
    except NotFoundError:
        pass
    except Exception as error:
        # The server still deletes it once it has been idle for its inactive threshold.
        log.warning("live feed consumer not deleted", stream=stream, error=repr(error))
