"""Domain events over NATS JetStream with a transactional outbox and idempotent consumers.

A service writes its event into its own `outbox` table in the same transaction as the state
change (`Outbox.add`). The relay publishes committed rows with `Nats-Msg-Id` = event id, so
JetStream drops a re-publish after a crash. A consumer records every event id it handled in
`processed_events` inside its own transaction and acks only after that commit, so a
redelivered event changes nothing.

Subjects are `<prefix>.<context>.<event>`; each context has one stream `<PREFIX>_<CONTEXT>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, PubAck, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry.trace import Span, SpanKind
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    event,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from wee5.events.v1 import events_pb2
from wee5_kit.logging import bound_contextvars, get_logger
from wee5_kit.metrics import EVENT_REDELIVERIES, EVENTS_HANDLED, PROBES, outbox_probe
from wee5_kit.tracing import TRACING, current_traceparent, span, start_span
from wee5_kit.uow import unit_of_work

log = get_logger("wee5.events")


class EventMessage(Protocol):
    """Every event payload is a protobuf message whose first field is `meta: EventMeta`."""

    @property
    def meta(self) -> events_pb2.EventMeta: ...

    def SerializeToString(self, *, deterministic: bool = ...) -> bytes: ...


E = TypeVar("E", bound=EventMessage)


def new_meta(community_id: str) -> events_pb2.EventMeta:
    meta = events_pb2.EventMeta(event_id=str(uuid.uuid4()), community_id=community_id)
    # The current time, as GetCurrentTime() sets it, without its datetime round trip (an
    # award batch makes one event per award: this runs thousands of times a second).
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    meta.occurred_at.seconds, meta.occurred_at.nanos = seconds, nanos
    if TRACING.on:
        meta.traceparent = current_traceparent()
    return meta


def occurred_at(meta: events_pb2.EventMeta) -> datetime:
    """When the event happened (its producer's clock); now for an event without the time."""
    return meta.occurred_at.ToDatetime(UTC) if meta.HasField("occurred_at") else datetime.now(UTC)


# How long JetStream gets to acknowledge a publish.
PUBLISH_TIMEOUT_SECONDS = 5.0


class EventBus:
    """The NATS connection of one process, with the subject prefix applied."""

    def __init__(self, nc: NatsClient, prefix: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.prefix = prefix
        # The durable consumers this process runs, and their streams (their metrics).
        self.durables: dict[str, str] = {}

    @classmethod
    async def connect(cls, url: str, prefix: str, name: str) -> EventBus:
        nc = await nats.connect(url, name=name, max_reconnect_attempts=-1, connect_timeout=5)
        return cls(nc, prefix)

    async def connected(self) -> bool:
        """Whether the connection to NATS is up now (a readiness check)."""
        return bool(self.nc.is_connected)

    def subject(self, name: str) -> str:
        """`xp.level_up` → `<prefix>.xp.level_up`."""
        return f"{self.prefix}.{name}"

    def stream_name(self, context: str) -> str:
        return f"{self.prefix}_{context}".upper().replace(".", "_").replace("-", "_")

    async def ensure_stream(self, context: str) -> None:
        """Creates (or keeps) the context's stream; safe to call from every replica."""
        config = StreamConfig(
            name=self.stream_name(context),
            subjects=[f"{self.prefix}.{context}.>"],
            max_age=timedelta(days=7).total_seconds(),
            duplicate_window=timedelta(minutes=10).total_seconds(),
        )
        try:
            await self.js.stream_info(config.name or "")
            await self.js.update_stream(config)
        except NotFoundError:
            await self.js.add_stream(config)

    async def publish(self, subject: str, payload: bytes, event_id: str) -> None:
        await self.js.publish(
            subject, payload, headers={"Nats-Msg-Id": event_id}, timeout=PUBLISH_TIMEOUT_SECONDS
        )

    async def publish_many(self, messages: Sequence[tuple[str, bytes, str]]) -> None:
        """Publishes (subject, payload, event id) messages in the order given, then waits for
        JetStream to acknowledge them all: one round trip for the lot instead of one per
        message. Raises if any is not acknowledged within `PUBLISH_TIMEOUT_SECONDS` (nothing
        is lost: a caller publishing again is de-duplicated by event id)."""
        acks: list[asyncio.Future[PubAck]] = []
        try:
            for subject, payload, event_id in messages:
                headers = {"Nats-Msg-Id": event_id}
                acks.append(await self.js.publish_async(subject, payload, headers=headers))
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                await asyncio.gather(*acks)
        finally:
            for ack in acks:
                ack.cancel()  # those still waiting give back their place in the client

    async def close(self) -> None:
        await self.nc.drain()


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("subject", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Index("ix_outbox_unpublished", "id", postgresql_where="published_at IS NULL"),
    )


def processed_events_table(metadata: MetaData) -> Table:
    return Table(
        "processed_events",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class Outbox:
    """Writes events in the caller's transaction and publishes them once committed."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._wake = asyncio.Event()
        # The relay's: the oldest unpublished rows no other relay holds, marked published.
        oldest = (
            select(table.c.id)
            .where(table.c.published_at.is_(None))
            .order_by(table.c.id)
            .limit(bindparam("batch"))
            .with_for_update(skip_locked=True)
        )
        self._claim = (
            update(table)
            .where(table.c.id.in_(oldest))
            .values(published_at=func.now())
            .returning(table.c.id, table.c.event_id, table.c.subject, table.c.payload)
        )
        # One statement whatever the number of events (rows from arrays, ids in their order):
        # a batch of hundreds costs Postgres one execution instead of one per row.
        rows = (
            func.unnest(
                bindparam("event_ids", type_=postgresql.ARRAY(Uuid)),
                bindparam("subjects", type_=postgresql.ARRAY(String)),
                bindparam("payloads", type_=postgresql.ARRAY(LargeBinary)),
            )
            .table_valued("event_id", "subject", "payload", with_ordinality="n")
            .render_derived()
        )
        self._insert_many = insert(table).from_select(
            ["event_id", "subject", "payload"],
            select(rows.c.event_id, rows.c.subject, rows.c.payload).order_by(rows.c.n),
        )

    async def add(self, session: AsyncSession, name: str, message: EventMessage) -> None:
        """Queues `message` on subject `name` (e.g. "xp.level_up"), inside `session`'s transaction."""
        await session.execute(
            insert(self.table).values(
                event_id=uuid.UUID(message.meta.event_id),
                subject=name,
                payload=message.SerializeToString(),
            )
        )
        session.info["outbox_dirty"] = True

    async def add_many(
        self, session: AsyncSession, events: Sequence[tuple[str, EventMessage]]
    ) -> None:
        """Queues several events in one statement (in the order given)."""
        if not events:
            return
        await session.execute(self._insert_many, self.columns(events))
        self.added(session)

    @staticmethod
    def columns(events: Sequence[tuple[str, EventMessage]]) -> dict[str, list[Any]]:
        """The rows of `events` as arrays (`event_ids`, `subjects`, `payloads`), for a service
        that inserts them in a statement of its own (then it calls `added`)."""
        return {
            "event_ids": [uuid.UUID(message.meta.event_id) for _, message in events],
            "subjects": [name for name, _ in events],
            "payloads": [message.SerializeToString() for _, message in events],
        }

    @staticmethod
    def added(session: AsyncSession) -> None:
        """Events were written to the outbox in `session`: the relay is woken once it commits."""
        session.info["outbox_dirty"] = True

    def watch(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Wakes the relay right after a commit that wrote to the outbox."""

        def after_commit(session: Session) -> None:
            if session.info.pop("outbox_dirty", False):
                self._wake.set()

        def after_rollback(session: Session, _previous: object) -> None:
            session.info.pop("outbox_dirty", None)

        session_class = sessionmaker.kw.get("sync_session_class", Session)
        event.listen(session_class, "after_commit", after_commit)
        event.listen(session_class, "after_soft_rollback", after_rollback)

    async def relay(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus,
        *,
        poll_seconds: float = 1.0,
        batch: int = 200,
        keep: timedelta = timedelta(days=3),
    ) -> None:
        """Publishes committed rows in order, forever. Several replicas may run it: rows are
        claimed with SKIP LOCKED, and JetStream de-duplicates by event id."""
        service = self.table.schema or "default"
        remove_probe = PROBES.add(
            f"{service}.outbox", outbox_probe(service, self.table, sessionmaker)
        )
        try:
            await self._relay(sessionmaker, bus, poll_seconds, batch, keep)
        finally:
            remove_probe()

    async def _relay(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus,
        poll_seconds: float,
        batch: int,
        keep: timedelta,
    ) -> None:
        last_prune = 0.0
        while True:
            published = await self._publish_batch(sessionmaker, bus, batch)
            loop_time = asyncio.get_running_loop().time()
            if loop_time - last_prune > 3600:
                await self._prune(sessionmaker, keep)
                last_prune = loop_time
            if published < batch:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=poll_seconds)
                except TimeoutError:
                    pass

    async def _publish_batch(
        self, sessionmaker: async_sessionmaker[AsyncSession], bus: EventBus, batch: int
    ) -> int:
        async with sessionmaker.begin() as session:
            # Claimed and marked in one statement; should the publish fail, the transaction
            # rolls back and the rows stay unpublished.
            marked = await session.execute(self._claim, {"batch": batch})
            rows = sorted(marked.all(), key=lambda row: row.id)
            spans = _relay_spans(rows, bus) if TRACING.on else ()
            await bus.publish_many(
                [(bus.subject(row.subject), row.payload, str(row.event_id)) for row in rows]
            )
            for published in spans:
                published.end()
        return len(rows)

    async def _prune(self, sessionmaker: async_sessionmaker[AsyncSession], keep: timedelta) -> None:
        async with sessionmaker.begin() as session:
            await session.execute(
                delete(self.table).where(self.table.c.published_at < datetime.now(UTC) - keep)
            )


def _relay_spans(rows: Sequence[Row[Any, Any, Any, Any]], bus: EventBus) -> list[Span]:
    """A span per relayed event, continuing the trace of the change that made it."""
    head = events_pb2.EventHead()
    spans = []
    for row in rows:
        head.ParseFromString(row.payload)
        spans.append(
            start_span(
                f"publish {row.subject}",
                traceparent=head.meta.traceparent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": bus.subject(row.subject),
                    "messaging.message.id": str(row.event_id),
                },
            )
        )
    return spans


Handler = Callable[[AsyncSession, E], Awaitable[None]]


def _retry_delay(delivered: int) -> float:
    """Seconds before a failed event is redelivered: doubling from 1 s up to a minute, each
    drawn from +-25% around that. The spread is not only against retry storms: NATS 2.9
    (Debian's) sometimes hands a NAK-delayed redelivery that falls due as a pull request
    expires to the wrong message, and the event then waits the whole ack wait (30 s). Our
    pull requests expire every second, so whole-second delays fell due exactly then (1 run
    in 15 of a test; 0 in 60 with the spread)."""
    return min(60.0, 0.5 * (1 << min(delivered, 7))) * random.uniform(0.75, 1.25)


class Consumer(Generic[E]):
    """A durable JetStream pull consumer whose handler runs at most once per event id: the
    handler's transaction claims the id in `processed`.

    `processed` None is for a handler that is safe to run again for an event it handled,
    because what it writes is keyed by what it changes (a badge a member holds once): its
    events are not claimed (a redelivery runs it again), so a fetch whose events need no write
    costs the database nothing."""

    def __init__(
        self,
        *,
        bus: EventBus,
        sessionmaker: async_sessionmaker[AsyncSession],
        processed: Table | None,
        name: str,
        subject: str,
        message_type: Callable[[], E],
        handler: Handler[E],
        max_deliver: int = 20,
    ) -> None:
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.processed = processed
        self.name = name
        self.subject = subject
        self.message_type = message_type
        self.handler = handler
        self.max_deliver = max_deliver
        durable = self.durable
        self._outcomes = {
            outcome: EVENTS_HANDLED.labels(durable, outcome)
            for outcome in ("handled", "duplicate", "retried", "dead_lettered", "undecodable")
        }
        self._redeliveries = EVENT_REDELIVERIES.labels(durable)
        # Claims a fetch's event ids at once. One statement whatever their number, so it is
        # compiled once: a VALUES list of n rows is a statement of its own for every n, and
        # compiling it was a large part of the rewards consumers' CPU in the profile.
        self._claim_many = (
            None
            if processed is None
            else pg_insert(processed)
            .from_select(
                ["consumer", "event_id"],
                select(
                    literal(name),
                    func.unnest(bindparam("ids", type_=postgresql.ARRAY(postgresql.UUID()))),
                ),
            )
            .on_conflict_do_nothing()
            .returning(processed.c.event_id)
        )

    @property
    def durable(self) -> str:
        return f"{self.bus.prefix}_{self.name}".replace(".", "_").replace("-", "_")

    async def run(self) -> None:
        """Fetches and handles events until cancelled."""
        context = self.subject.split(".", 1)[0]
        await self._wait_for_stream(context)
        stream = self.bus.stream_name(context)
        subscription = await self.bus.js.pull_subscribe(
            self.bus.subject(self.subject),
            durable=self.durable,
            stream=stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=30,
                max_deliver=self.max_deliver,
            ),
        )
        self.bus.durables[self.durable] = stream
        try:
            while True:
                try:
                    messages = await subscription.fetch(batch=50, timeout=1)
                except (NatsTimeout, TimeoutError):
                    # No message within the wait; nats-py raises either class.
                    continue
                await self.handle_batch(messages)
        finally:
            # The durable stays on the server; only this process's interest ends.
            self.bus.durables.pop(self.durable, None)
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _wait_for_stream(self, context: str) -> None:
        """The publishing service owns its stream; a consumer only waits for it to exist."""
        name = self.bus.stream_name(context)
        warned = False
        while True:
            try:
                await self.bus.js.stream_info(name)
                return
            except NotFoundError:
                if not warned:
                    log.warning("waiting for stream", stream=name, consumer=self.name)
                    warned = True
                await asyncio.sleep(0.5)

    async def handle_batch(self, msgs: Sequence[Msg]) -> None:
        """Handles what one fetch brought in one transaction (one commit for up to 50 events
        instead of one each), acknowledging them after it commits. If it fails, each event is
        handled again on its own, so one bad event costs only itself a redelivery."""
        decoded = [(msg, event) for msg in msgs if (event := await self._decode(msg))]
        if len(decoded) == 1:
            await self._handle_one(*decoded[0])
            return
        if not decoded:
            return
        try:
            handled = await self._handle_many([event for _, event in decoded])
        except Exception as error:
            log.warning(
                "event batch failed; handling each on its own",
                consumer=self.name,
                events=len(decoded),
                error=type(error).__name__,
            )
            for msg, event in decoded:
                await self._handle_one(msg, event)
            return
        for msg, _ in decoded:
            await msg.ack()
        self._outcomes["handled"].inc(handled)
        self._outcomes["duplicate"].inc(len(decoded) - handled)
        log.info(
            "events handled",
            consumer=self.name,
            handled=handled,
            already_handled=len(decoded) - handled,
        )

    async def handle(self, msg: Msg) -> None:
        event = await self._decode(msg)
        if event is not None:
            await self._handle_one(msg, event)

    async def _decode(self, msg: Msg) -> tuple[str, E] | None:
        """(event id, message), or None once an undecodable payload is terminated."""
        try:
            message = self.message_type()
            message.ParseFromString(msg.data)  # type: ignore[attr-defined]
            event_id = (msg.headers or {}).get("Nats-Msg-Id") or message.meta.event_id
            uuid.UUID(event_id)
        except Exception:
            # A payload that cannot be parsed will never be; redelivering it would only spin.
            log.error("undecodable event dropped", subject=msg.subject, consumer=self.name)
            await msg.term()
            self._outcomes["undecodable"].inc()
            return None
        if msg.metadata and (msg.metadata.num_delivered or 0) > 1:
            self._redeliveries.inc()
        return event_id, message

    async def _handle_one(self, msg: Msg, decoded: tuple[str, E]) -> None:
        event_id, message = decoded
        with (
            bound_contextvars(
                event_id=event_id, community_id=message.meta.community_id, consumer=self.name
            ),
            self._span(message) if TRACING.on else contextlib.nullcontext(),
        ):
            try:
                handled = await self._handle_once(event_id, message)
            except Exception:
                delivered = msg.metadata.num_delivered if msg.metadata else 0
                if delivered >= self.max_deliver:
                    # JetStream would stop redelivering silently; say so, loudly, once.
                    log.exception("event dead-lettered after last attempt", delivered=delivered)
                    await msg.term()
                    self._outcomes["dead_lettered"].inc()
                    return
                log.exception("event handler failed; will retry", delivered=delivered)
                await msg.nak(delay=_retry_delay(delivered))
                self._outcomes["retried"].inc()
                return
            await msg.ack()
            self._outcomes["handled" if handled else "duplicate"].inc()
            log.info("event handled" if handled else "event already handled", subject=msg.subject)

    async def _handle_many(self, events: Sequence[tuple[str, E]]) -> int:
        """Claims every event id at once and runs the handler for each claimed event, in
        order, in one unit of work; returns how many were handled (the rest were before)."""
        async with unit_of_work(self.sessionmaker) as uow:
            session = uow.session
            ids = list(dict.fromkeys(uuid.UUID(event_id) for event_id, _ in events))
            claimed = (
                set(ids)
                if self._claim_many is None
                else set(await session.scalars(self._claim_many, {"ids": ids}))
            )
            handled = 0
            for event_id, message in events:
                key = uuid.UUID(event_id)
                if key not in claimed:
                    continue
                claimed.discard(key)  # the same event twice in one fetch runs once
                with (
                    bound_contextvars(
                        event_id=event_id,
                        community_id=message.meta.community_id,
                        consumer=self.name,
                    ),
                    self._span(message) if TRACING.on else contextlib.nullcontext(),
                ):
                    await self.handler(session, message)
                handled += 1
        return handled

    def _span(self, message: E) -> AbstractContextManager[object]:
        """The consumer's span, continuing the trace of the change that made the event."""
        return span(
            f"consume {self.subject}",
            traceparent=message.meta.traceparent,
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "nats", "messaging.consumer.group.name": self.name},
        )

    async def _handle_once(self, event_id: str, message: E) -> bool:
        # A unit of work, so handlers can leave after-commit work (`UnitOfWork.of(session)`).
        async with unit_of_work(self.sessionmaker) as uow:
            session = uow.session
            if self.processed is None:
                await self.handler(session, message)
                return True
            claimed = await session.scalar(
                pg_insert(self.processed)
                .values(consumer=self.name, event_id=uuid.UUID(event_id))
                .on_conflict_do_nothing()
                .returning(self.processed.c.event_id)
            )
            if claimed is None:
                return False
            await self.handler(session, message)
        return True
