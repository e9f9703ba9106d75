"""The live stream (SSE) over real HTTP: the gateway under uvicorn on a free port, a real xp
gRPC server publishing through its outbox to NATS JetStream, Postgres and Redis.

httpx's ASGI transport buffers a whole response, which an endless stream never finishes, so
these tests serve the app with uvicorn in the test's event loop and read the stream as a
browser would: line by line as it arrives, each block stamped with its arrival time.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from nats.js.errors import NotFoundError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import SECRET, bearer, gateway_settings, new_account
from tests.support.whop import chat_message_created, new_id, sign_standard
from wee5.events.v1 import events_pb2
from wee5_gateway.__main__ import _Server as GatewayServer
from wee5_gateway.api.stream.cursor import Cursor, parse_last_event_id
from wee5_gateway.api.stream.events import StreamEvent
from wee5_gateway.api.stream.feed import CONSUMER_DESCRIPTION, Listener, LiveFeed
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import ACCESS_COOKIE
from wee5_kit.events import EventBus, new_meta
from wee5_xp.config import XpSettings
from wee5_xp.server import build

PROBLEM = "application/problem+json"
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
async def xp_addr(database_url: str, redis: Redis, bus: EventBus) -> AsyncIterator[str]:
    """A real xp server without cooldown, so every message earns 20 XP."""
    addr = f"127.0.0.1:{free_port()}"
    server = await build(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    await server.start()
    yield addr
    await server.stop()


@dataclass
class Gateway:
    app: Litestar
    settings: GatewaySettings
    client: httpx.AsyncClient
    server: uvicorn.Server

    def stop(self) -> None:
        """Starts shutting down, as on SIGTERM."""
        self.server.should_exit = True

    @property
    def feed(self) -> LiveFeed:
        feed: LiveFeed = self.app.state.live_feed
        return feed


@asynccontextmanager
async def serve_http(settings: GatewaySettings) -> AsyncIterator[Gateway]:
    """The gateway app under the gateway's own uvicorn server on a free port (with its grace
    period), and an HTTP client for it."""
    port = free_port()
    server = GatewayServer(
        f"http://127.0.0.1:{port}",
        settings,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    running = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if running.done():
                await running  # startup failed: raise its error here
                raise AssertionError("uvicorn exited before it started")
            await asyncio.sleep(0.01)
    app = server.app  # the server builds it in its loop, as `python -m wee5_gateway` does
    assert app is not None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield Gateway(app, settings, client, server)
    finally:
        server.should_exit = True
        async with asyncio.timeout(settings.shutdown_grace_seconds + 5):
            await running


def stream_settings(xp_addr: str, **overrides: Any) -> GatewaySettings:
    return gateway_settings(
        xp_addr,
        **{"stream_heartbeat_seconds": 0.3, "stream_missing_retry_seconds": 0.1, **overrides},
    )


@pytest.fixture(scope="module")
async def gateway(xp_addr: str) -> AsyncIterator[Gateway]:
    async with serve_http(stream_settings(xp_addr)) as gateway:
        yield gateway


@dataclass
class Block:
    """One SSE block as a browser's EventSource parses it, with when it arrived."""

    arrived: float
    event: str | None = None
    data: str | None = None
    id: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict[str, Any]:
        assert self.data is not None
        body: dict[str, Any] = json.loads(self.data)
        return body


class EventReader:
    """Reads an open SSE response in the background, so arrival times are real."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.blocks: asyncio.Queue[Block] = asyncio.Queue()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        block: Block | None = None
        async for line in self.response.aiter_lines():
            if block is None:
                block = Block(arrived=time.perf_counter())
            if not line:
                await self.blocks.put(block)
                block = None
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                block.comments.append(value)
            elif name == "data":
                block.data = value if block.data is None else f"{block.data}\n{value}"
            elif name == "event":
                block.event = value
            elif name == "id":
                block.id = value
            elif name == "retry":
                block.retry = int(value)

    async def next(self, within: float = 3.0) -> Block:
        async with asyncio.timeout(within):
            return await self.blocks.get()

    async def next_event(self, name: str | None = None, within: float = 3.0) -> Block:
        """The next block carrying an event (of `name`, when given); heartbeats are skipped."""
        async with asyncio.timeout(within):
            while True:
                block = await self.blocks.get()
                if block.event is not None and (name is None or block.event == name):
                    return block

    def events_so_far(self) -> list[Block]:
        blocks = []
        while not self.blocks.empty():
            blocks.append(self.blocks.get_nowait())
        return [block for block in blocks if block.event is not None]

    async def ended(self) -> None:
        """Returns once the server has ended the stream."""
        await asyncio.shield(self._task)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@asynccontextmanager
async def open_stream(
    gateway: Gateway, community_id: str, headers: dict[str, str]
) -> AsyncIterator[EventReader]:
    url = f"/api/v1/communities/{community_id}/stream"
    async with gateway.client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(response)
        try:
            yield reader
        finally:
            await reader.close()


async def member_headers(
    gateway: Gateway, sessionmaker: Sessions, community_id: str
) -> dict[str, str]:
    account = await new_account(sessionmaker, community_id, "member", member_user_id="user_me")
    return bearer(gateway.settings, account)


async def send_message(gateway: Gateway, community_id: str, user_id: str) -> httpx.Response:
    # One company per community, as on Whop (a new company would add an
    # `xp.community_company` event to the xp stream, which the resume window counts).
    envelope = chat_message_created(community_id, user_id, company_id=f"biz_{community_id}")
    body = json.dumps(envelope).encode()
    response = await gateway.client.post(
        "/webhooks/whop", content=body, headers=sign_standard(SECRET, body, envelope["id"])
    )
    assert response.json() == {"status": "awarded"}, response.text
    return response


async def refused(
    gateway: Gateway, community_id: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """The answer to a stream request expected to be refused; an accepted one is closed at
    once (a plain GET of a stream would never end)."""
    url = f"/api/v1/communities/{community_id}/stream"
    async with gateway.client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
    return response


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


async def gateway_consumers(bus: EventBus, context: str) -> list[str]:
    try:
        consumers = await bus.js.consumers_info(bus.stream_name(context))
    except NotFoundError:
        return []
    return sorted(
        c.name for c in consumers if c.config.description == CONSUMER_DESCRIPTION and c.name
    )


async def test_member_receives_level_up_within_a_second_of_the_webhook(
    gateway: Gateway, sessionmaker: Sessions, community_id: str
) -> None:
    user = new_id("user")
    for _ in range(4):  # 80 XP: the next message (20 XP) reaches level 2 at 100
        await send_message(gateway, community_id, user)
    account = await new_account(sessionmaker, community_id, "member")
    token = bearer(gateway.settings, account)["Authorization"].removeprefix("Bearer ")
    # As a browser's EventSource: the access cookie, no Authorization header.
    cookie = {"Cookie": f"{ACCESS_COOKIE}={token}"}

    async with open_stream(gateway, community_id, cookie) as stream:
        await stream.next()  # the opening block: the stream is live from here
        sent = time.perf_counter()
        await send_message(gateway, community_id, user)
        answered = time.perf_counter()
        level_up = await stream.next_event("xp.level_up")

    latency = level_up.arrived - answered
    print(
        f"\nlevel-up latency: {latency * 1000:.1f} ms after the webhook's response, "
        f"{(level_up.arrived - sent) * 1000:.1f} ms after its request"
    )
    assert latency < 1.0
    event = level_up.json
    assert event["meta"]["community_id"] == community_id
    assert uuid.UUID(event["meta"]["event_id"])
    assert event["meta"]["occurred_at"]
    assert (event["user_id"], event["from_level"], event["to_level"], event["total_xp"]) == (
        user,
        1,
        2,
        100,
    )


async def test_stream_carries_xp_awarded_with_a_resumable_id(
    gateway: Gateway, sessionmaker: Sessions, community_id: str
) -> None:
    user = new_id("user")
    headers = await member_headers(gateway, sessionmaker, community_id)

    async with open_stream(gateway, community_id, headers) as stream:
        opening = await stream.next()
        await send_message(gateway, community_id, user)
        awarded = await stream.next_event()

    assert opening.retry == gateway.settings.stream_retry_ms
    assert opening.id is not None
    assert opening.data is None
    assert awarded.event == "xp.awarded"
    assert awarded.retry is None
    assert awarded.json["user_id"] == user
    assert awarded.json["delta"] == 20
    assert awarded.json["total_xp"] == 20
    xp_before = int(opening.id.split(",")[0].removeprefix("xp:"))
    xp_after = int((awarded.id or "").split(",")[0].removeprefix("xp:"))
    assert xp_after > xp_before


async def test_events_of_another_community_are_not_delivered(
    gateway: Gateway, sessionmaker: Sessions, community_id: str
) -> None:
    other_community = f"exp_{uuid.uuid4().hex[:12]}"
    mine, theirs = new_id("user"), new_id("user")
    headers = await member_headers(gateway, sessionmaker, community_id)

    async with open_stream(gateway, community_id, headers) as stream:
        await stream.next()
        for _ in range(5):  # their member even levels up
            await send_message(gateway, other_community, theirs)
        await send_message(gateway, community_id, mine)
        # Events reach the stream in publishing order: theirs would have come first.
        first = await stream.next_event()
        await asyncio.sleep(0.3)
        later = stream.events_so_far()

    assert first.json["user_id"] == mine
    assert [block.json["meta"]["community_id"] for block in [first, *later]] == [community_id] * (
        1 + len(later)
    )


async def test_resuming_with_last_event_id_delivers_exactly_the_events_after_it(
    gateway: Gateway, sessionmaker: Sessions, community_id: str
) -> None:
    user = new_id("user")
    headers = await member_headers(gateway, sessionmaker, community_id)
    async with open_stream(gateway, community_id, headers) as stream:
        await stream.next()
        for _ in range(3):
            await send_message(gateway, community_id, user)
        received = [await stream.next_event() for _ in range(3)]
    assert [b.json["total_xp"] for b in received] == [20, 40, 60]
    # Two more messages while the client is away; the second levels the member up.
    await send_message(gateway, community_id, user)
    await send_message(gateway, community_id, user)

    resume = {**headers, "Last-Event-ID": received[0].id or ""}
    async with open_stream(gateway, community_id, resume) as stream:
        opening = await stream.next()
        missed = [await stream.next_event() for _ in range(5)]
        await send_message(gateway, community_id, user)  # and one live after the catch-up
        live = await stream.next_event()
        await asyncio.sleep(0.5)  # heartbeats only from here: nothing repeated
        after = stream.events_so_far()

    assert opening.id == received[0].id
    assert [(b.event, b.json["total_xp"]) for b in [*missed, live]] == [
        ("xp.awarded", 40),
        ("xp.awarded", 60),
        ("xp.awarded", 80),
        ("xp.awarded", 100),
        ("xp.level_up", 100),
        ("xp.awarded", 120),
    ]
    assert after == []
    assert [b.id for b in missed[:2]] == [b.id for b in received[1:]]
    event_ids = [b.json["meta"]["event_id"] for b in [*missed, live]]
    assert len(set(event_ids)) == len(event_ids)


async def test_resuming_from_the_latest_id_delivers_only_newer_events(
    gateway: Gateway, sessionmaker: Sessions, community_id: str
) -> None:
    user = new_id("user")
    headers = await member_headers(gateway, sessionmaker, community_id)
    async with open_stream(gateway, community_id, headers) as stream:
        await stream.next()
        await send_message(gateway, community_id, user)
        last = await stream.next_event()

    async with open_stream(gateway, community_id, {**headers, "Last-Event-ID": last.id or ""}) as s:
        await s.next()
        await asyncio.sleep(0.4)
        repeated = s.events_so_far()
        await send_message(gateway, community_id, user)
        newer = await s.next_event()

    assert repeated == []
    assert newer.json["total_xp"] == 40


async def test_heartbeats_arrive_when_idle(
    gateway: Gateway, sessionmaker: Sessions, community_id: str
) -> None:
    headers = await member_headers(gateway, sessionmaker, community_id)

    async with open_stream(gateway, community_id, headers) as stream:
        opening = await stream.next()
        pings = [await stream.next(within=1.0) for _ in range(3)]

    assert opening.retry is not None
    for ping in pings:
        assert ping.comments == ["ping"]
        assert (ping.event, ping.data, ping.retry) == (None, None, None)
    gap = pings[2].arrived - pings[1].arrived
    assert gap == pytest.approx(gateway.settings.stream_heartbeat_seconds, abs=0.2)


async def test_idle_heartbeats_move_the_cursor_past_other_communities_events(
    gateway: Gateway, sessionmaker: Sessions, community_id: str
) -> None:
    headers = await member_headers(gateway, sessionmaker, community_id)
    async with open_stream(gateway, community_id, headers) as stream:
        opening = await stream.next()
        await send_message(gateway, f"exp_{uuid.uuid4().hex[:12]}", new_id("user"))
        ping = await stream.next()

    assert ping.comments == ["ping"]
    assert ping.id is not None
    opened_xp = int((opening.id or "").split(",")[0].removeprefix("xp:"))
    assert int(ping.id.split(",")[0].removeprefix("xp:")) > opened_xp


async def test_anonymous_caller_gets_401_problem(gateway: Gateway, community_id: str) -> None:
    response = await refused(gateway, community_id)

    assert_problem(response, 401)
    assert gateway.feed.listener_count == 0


async def test_account_without_a_role_in_the_community_gets_403_problem(
    gateway: Gateway, sessionmaker: Sessions, community_id: str
) -> None:
    stranger = await new_account(sessionmaker, f"exp_{uuid.uuid4().hex[:12]}", "owner")

    response = await refused(gateway, community_id, bearer(gateway.settings, stranger))

    assert_problem(response, 403)
    assert gateway.feed.listener_count == 0


@pytest.mark.parametrize(
    "last_event_id",
    ["banana", "xp:1,xp:2", "xp:-1", "billing:3", "xp:1;rewards:2", "xp:" + "9" * 30],
)
async def test_malformed_last_event_id_is_a_400_problem(
    gateway: Gateway, sessionmaker: Sessions, community_id: str, last_event_id: str
) -> None:
    headers = await member_headers(gateway, sessionmaker, community_id)

    response = await refused(gateway, community_id, {**headers, "Last-Event-ID": last_event_id})

    problem = assert_problem(response, 400)
    assert "Last-Event-ID" in problem["detail"]
    assert gateway.feed.listener_count == 0


async def test_disconnecting_releases_the_stream_and_leaves_no_consumer(
    gateway: Gateway, sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    user = new_id("user")
    headers = await member_headers(gateway, sessionmaker, community_id)
    async with open_stream(gateway, community_id, headers) as stream:
        await stream.next()
        # The tails follow from here (and a while after the last stream closes).
        tails = await gateway_consumers(bus, "xp")
        await send_message(gateway, community_id, user)
        first = await stream.next_event()
    await send_message(gateway, community_id, user)

    # Resuming needs a catch-up consumer of its own; a second stream is live only.
    resume = {**headers, "Last-Event-ID": first.id or ""}
    async with (
        open_stream(gateway, community_id, resume) as resumed,
        open_stream(gateway, community_id, headers) as live,
    ):
        assert (await resumed.next_event()).json["total_xp"] == 40
        await live.next()
        assert gateway.feed.listener_count == 2

    async with asyncio.timeout(2):
        while gateway.feed.listener_count:
            await asyncio.sleep(0.02)
    # Other test modules' gateways share the stream, so compare sets, not counts: no consumer
    # made for these three streams (the catch-up one included) outlives them.
    assert set(await gateway_consumers(bus, "xp")) - set(tails) == set()


async def test_catch_up_abandoned_midway_deletes_its_consumer(
    gateway: Gateway, bus: EventBus, community_id: str
) -> None:
    feed = gateway.feed
    before = (await bus.js.stream_info(bus.stream_name("xp"))).state.last_seq
    for total in range(1, 301):  # more than one fetch of the catch-up consumer
        await _publish_xp_awarded(bus, community_id, total)
    waker = await feed.open(community_id)  # the tails follow while someone listens
    async with asyncio.timeout(2):
        while feed.positions["xp"] < before + 300:
            await asyncio.sleep(0.02)
    tails = await gateway_consumers(bus, "xp")
    listener = await feed.open(community_id)
    feed.release(waker)
    try:
        cursor = (await feed.start_cursor(listener, {"xp": before})).cursor
        missed = feed.replay(listener, cursor)
        first = await anext(missed)
        during = await gateway_consumers(bus, "xp")
        await missed.aclose()
    finally:
        feed.release(listener)

    assert first.sequence == before + 1
    assert len(during) == len(tails) + 1
    assert await gateway_consumers(bus, "xp") == tails


async def test_streams_beyond_the_limit_get_503_until_one_closes(
    xp_addr: str, sessionmaker: Sessions, community_id: str
) -> None:
    async with serve_http(stream_settings(xp_addr, stream_max_connections=1)) as gateway:
        headers = await member_headers(gateway, sessionmaker, community_id)
        async with open_stream(gateway, community_id, headers) as stream:
            await stream.next()
            one_too_many = await refused(gateway, community_id, headers)
        async with open_stream(gateway, community_id, headers) as stream:
            reopened = await stream.next()

    assert_problem(one_too_many, 503)
    assert one_too_many.headers["retry-after"]
    assert reopened.retry is not None


async def test_one_caller_holds_at_most_a_few_streams_and_gets_429_beyond(
    xp_addr: str, sessionmaker: Sessions, community_id: str
) -> None:
    """The process-wide cap alone let one caller take every stream of a gateway."""
    async with serve_http(stream_settings(xp_addr, stream_max_per_principal=2)) as gateway:
        headers = await member_headers(gateway, sessionmaker, community_id)
        other = bearer(
            gateway.settings,
            await new_account(sessionmaker, community_id, "member", member_user_id="user_b"),
        )
        async with open_stream(gateway, community_id, headers) as first:
            await first.next()
            async with open_stream(gateway, community_id, headers) as second:
                await second.next()
                one_too_many = await refused(gateway, community_id, headers)
                async with open_stream(gateway, community_id, other) as theirs:
                    assert (await theirs.next()).retry is not None
        async with open_stream(gateway, community_id, headers) as again:
            reopened = await again.next()

    problem = assert_problem(one_too_many, 429)
    assert problem["type"].endswith("/too-many-streams")
    assert one_too_many.headers["retry-after"]
    assert reopened.retry is not None


async def _cursor_then_messages(
    gateway: Gateway, community_id: str, headers: dict[str, str], user: str, count: int
) -> str:
    """The id of a first event, with `count` more events published after it."""
    async with open_stream(gateway, community_id, headers) as stream:
        await stream.next()
        await send_message(gateway, community_id, user)
        cursor = (await stream.next_event()).id or ""
        for _ in range(count):
            await send_message(gateway, community_id, user)
            await stream.next_event("xp.awarded")
    return cursor


async def test_a_cursor_too_far_back_gets_a_reset_instead_of_the_history(
    xp_addr: str, sessionmaker: Sessions, community_id: str
) -> None:
    """`Last-Event-ID: xp:0,rewards:0` made every connection read the whole history of
    every community; a cursor beyond the resume window starts anew with a `reset` event."""
    async with serve_http(stream_settings(xp_addr, stream_resume_max_events=3)) as gateway:
        user = new_id("user")
        headers = await member_headers(gateway, sessionmaker, community_id)
        recent = await _cursor_then_messages(gateway, community_id, headers, user, 2)
        async with open_stream(gateway, community_id, {**headers, "Last-Event-ID": recent}) as s:
            assert (await s.next()).event is None
            replayed = [await s.next_event() for _ in range(2)]
        assert [b.json["total_xp"] for b in replayed] == [40, 60]

        for stale in ("xp:0,rewards:0", recent):
            await send_message(gateway, community_id, user)
            await send_message(gateway, community_id, user)
            await send_message(gateway, community_id, user)
            async with open_stream(gateway, community_id, {**headers, "Last-Event-ID": stale}) as s:
                opening = await s.next()
                await asyncio.sleep(0.4)
                replayed = s.events_so_far()
                await send_message(gateway, community_id, user)
                live = await s.next_event()
            assert opening.event == "reset", stale
            assert "more than 3 xp events behind" in opening.json["reason"]
            assert opening.id  # where it resumes from on reconnecting: now
            assert opening.id != stale
            # Nothing from before the reset: an event published (by xp's outbox relay) after
            # the stream opened is live, even when its message was sent before.
            resumed_at = parse_last_event_id(opening.id)["xp"]
            assert [
                b for b in replayed if parse_last_event_id(b.id or "")["xp"] <= resumed_at
            ] == []
            assert live.event == "xp.awarded"


async def test_a_cursor_before_what_the_stream_keeps_gets_a_reset(
    gateway: Gateway, sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    user = new_id("user")
    headers = await member_headers(gateway, sessionmaker, community_id)
    cursor = await _cursor_then_messages(gateway, community_id, headers, user, 2)
    # The stream's retention removes what is older (here: all but the newest event).
    await bus.js.purge_stream(bus.stream_name("xp"), keep=1)
    async with open_stream(gateway, community_id, {**headers, "Last-Event-ID": cursor}) as s:
        opening = await s.next()
        await asyncio.sleep(0.4)
        replayed = s.events_so_far()
    assert opening.event == "reset"
    assert "no longer kept" in opening.json["reason"]
    assert replayed == []


async def test_rewards_events_stream_once_the_rewards_stream_appears(
    xp_addr: str, sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    rewards = bus.stream_name("rewards")
    try:
        await bus.js.delete_stream(rewards)
    except NotFoundError:
        pass
    user = new_id("user")
    async with serve_http(stream_settings(xp_addr)) as gateway:
        headers = await member_headers(gateway, sessionmaker, community_id)
        async with open_stream(gateway, community_id, headers) as stream:
            opening = await stream.next()
            await send_message(gateway, community_id, user)
            awarded = await stream.next_event("xp.awarded")
            await bus.ensure_stream("rewards")  # rewards starts after the gateway
            badge = events_pb2.BadgeAwarded(
                meta=new_meta(community_id), user_id=user, badge_id="early-bird"
            )
            await bus.publish(
                bus.subject("rewards.badge_awarded"),
                badge.SerializeToString(),
                badge.meta.event_id,
            )
            awarded_badge = await stream.next_event("rewards.badge_awarded")

    assert (opening.id or "").endswith(",rewards:0")
    assert awarded.json["user_id"] == user
    assert awarded_badge.json["badge_id"] == "early-bird"
    assert awarded_badge.json["meta"]["event_id"] == badge.meta.event_id
    assert (awarded_badge.id or "").endswith(",rewards:1")


async def test_shutdown_ends_open_streams_at_once_and_deletes_the_consumers(
    xp_addr: str, sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    before = await gateway_consumers(bus, "xp")
    settings = stream_settings(xp_addr, shutdown_grace_seconds=10)
    async with serve_http(settings) as gateway:
        headers = await member_headers(gateway, sessionmaker, community_id)
        async with open_stream(gateway, community_id, headers) as stream:
            await stream.next()
            during = await gateway_consumers(bus, "xp")
            stopping = time.perf_counter()
            gateway.stop()
            async with asyncio.timeout(3):  # not the 10 s grace period
                await stream.ended()
            stream_ended = time.perf_counter() - stopping
    stopped = time.perf_counter() - stopping
    after = await gateway_consumers(bus, "xp")

    assert stream_ended < 1.0
    assert stopped < 3.0
    # Compared as sets: other test modules' gateways may come and go on the same stream.
    ours = set(during) - set(before)
    assert len(ours) == 1  # this gateway's one tail of the xp stream
    assert not ours & set(after)


async def test_the_gateway_follows_the_streams_only_while_someone_listens(
    xp_addr: str, sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    user = new_id("user")
    before = set(await gateway_consumers(bus, "xp"))
    async with serve_http(stream_settings(xp_addr, stream_idle_seconds=0.3)) as gateway:
        headers = await member_headers(gateway, sessionmaker, community_id)
        await send_message(gateway, community_id, user)  # ingest with nobody listening
        idle = set(await gateway_consumers(bus, "xp")) - before
        following_idle = gateway.feed.following
        last = (await bus.js.stream_info(bus.stream_name("xp"))).state.last_seq

        async with open_stream(gateway, community_id, headers) as stream:
            opening = await stream.next()
            woken = set(await gateway_consumers(bus, "xp")) - before
            await send_message(gateway, community_id, user)
            live = await stream.next_event("xp.awarded")

        async with asyncio.timeout(3):  # asleep again shortly after the last stream closed
            while gateway.feed.following:
                await asyncio.sleep(0.05)
        asleep = set(await gateway_consumers(bus, "xp")) - before
        await send_message(gateway, community_id, user)  # while it sleeps

        # A client resuming from its last id gets what happened while the gateway slept,
        # then the live events of the woken tails.
        resume = {**headers, "Last-Event-ID": live.id or ""}
        async with open_stream(gateway, community_id, resume) as stream:
            await stream.next()
            missed = await stream.next_event("xp.awarded")
            await send_message(gateway, community_id, user)
            again = await stream.next_event("xp.awarded")

    assert (idle, following_idle) == (set(), False)
    # Woken at the stream's end: everything before the first stream is history.
    assert int((opening.id or "").split(",")[0].removeprefix("xp:")) >= last
    assert len(woken) == 1
    assert live.json["total_xp"] == 40
    assert asleep == set()
    assert [missed.json["total_xp"], again.json["total_xp"]] == [60, 80]


async def test_stream_route_is_documented(gateway: Gateway) -> None:
    document = (await gateway.client.get("/schema/openapi.json")).json()

    operation = document["paths"]["/api/v1/communities/{community_id}/stream"]["get"]
    assert operation["operationId"] == "streamCommunityEvents"
    assert operation["summary"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    for status in ("400", "401", "403", "503"):
        assert "application/problem+json" in operation["responses"][status]["content"]
    assert any(p["name"].lower() == "last-event-id" for p in operation["parameters"])


def test_cursor_round_trips_through_its_text() -> None:
    cursor = Cursor({"xp": 123, "rewards": 45})

    assert str(cursor) == "xp:123,rewards:45"
    assert cursor.advance("xp", 124)
    assert not cursor.advance("xp", 120)
    assert str(cursor) == "xp:124,rewards:45"


async def _publish_xp_awarded(bus: EventBus, community_id: str, total: int) -> None:
    event = events_pb2.XpAwarded(
        meta=new_meta(community_id), user_id="user_bulk", delta=1, total_xp=total, level=1
    )
    await bus.publish(bus.subject("xp.awarded"), event.SerializeToString(), event.meta.event_id)


async def test_a_listener_that_falls_too_far_behind_is_ended_after_what_it_has() -> None:
    listener = Listener("exp_slow", {"xp": 0, "rewards": 0}, backlog=2)
    events = [
        StreamEvent("xp", seq, "xp.awarded", "exp_slow", events_pb2.XpAwarded())
        for seq in (1, 2, 3)
    ]

    for event in events:
        listener.offer(event)

    assert [await listener.next_event() for _ in range(3)] == [events[0], events[1], None]
    assert listener.ended == "the client did not keep up"
