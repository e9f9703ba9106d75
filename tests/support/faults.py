"""Fault injection against a stack of the tests' own: its own `redis-server` and `nats-server`
(killed and started again at will), its own database (its backends terminated), the processes
`make up` supervises (killed), and a stream of signed Whop webhooks delivered the way Whop
delivers them: every delivery not answered 2xx is delivered again, until it is.

Used by tests/faults (a few minutes) and `make chaos` (longer, with a mixed soak).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, make_url, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import RUN_ID, create_migrated_database, drop_database, free_port
from tests.support.gateway import bearer
from tests.support.stack import SECRET, Stack, launch_stack, service_pids, stack_env, stop_stack
from tests.support.whop import chat_message_created, sign_standard
from wee5_gateway.config import GatewaySettings
from wee5_kit.db import create_engine
from wee5_rewards.models import Reward
from wee5_xp.models import LedgerEntry, Member

# Where Debian puts server binaries that are not on every PATH.
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
XP_PER_MESSAGE = 20  # the default XP config: a chat message earns 20 XP
REWARD_LEVEL = 5  # the default reward rule: 3 free days at level 5
# Messages per member that take a member past level 5 (770 XP) with 20 XP each.
MESSAGES_TO_REWARD = 40


def binary(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join((os.environ.get("PATH", ""), *_SBIN)))
    if found is None:
        raise AssertionError(f"{name} is not installed: `make infra` installs it")
    return found


@dataclass
class OwnServer:
    """A server process of the tests' own on a fixed port, so clients reconnect to it after a
    restart."""

    argv: list[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv, stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"{self.argv[0]} did not listen on {self.port}: {self.log.read_text()}"
        )

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, as in a crash or a node lost."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None


def own_redis(tmp: Path) -> OwnServer:
    """A Redis that keeps nothing on disk: restarted, it is empty."""
    port = free_port()
    argv = [binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no"]
    return OwnServer(argv, port, tmp / "redis.log")


def own_nats(tmp: Path) -> OwnServer:
    """A NATS with JetStream storing on disk: restarted, its streams are still there."""
    port = free_port()
    store = tmp / "jetstream"
    store.mkdir(exist_ok=True)
    argv = [binary("nats-server"), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)]
    return OwnServer(argv, port, tmp / "nats.log")


@dataclass
class Reply:
    at: float  # time.monotonic() when the delivery was sent
    status: int | str  # the HTTP status, or the name of the connection error
    answered: float  # time.monotonic() when the answer (or the error) came


@dataclass
class WebhookStream:
    """Signed chat messages of `members` members at `rate` per second; each delivery not
    answered 2xx is delivered again after `redeliver_after` seconds, as Whop does."""

    base_url: str
    community_id: str
    members: int = 8
    rate: float = 40.0
    concurrency: int = 6
    redeliver_after: float = 0.3
    bodies: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    acknowledged: set[str] = field(default_factory=set)
    replies: list[Reply] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._producer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=10)
        self._producer = asyncio.create_task(self._produce())
        self._tasks = [asyncio.create_task(self._deliver()) for _ in range(self.concurrency)]

    async def stop_new(self) -> None:
        """No new messages from now on; the ones not acknowledged yet keep being delivered."""
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
            self._producer = None

    async def drain(self, within: float = 90) -> None:
        """Delivers until every message is acknowledged, then stops."""
        await self.stop_new()
        try:
            async with asyncio.timeout(within):
                while len(self.acknowledged) < len(self.bodies):
                    await asyncio.sleep(0.1)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._client.aclose()

    def has_sent(self, count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(self.bodies) >= count

        return check

    def sent_by_member(self) -> Counter[str]:
        return Counter(user for user, _ in self.bodies.values())

    def statuses(self) -> Counter[int | str]:
        return Counter(reply.status for reply in self.replies)

    async def _produce(self) -> None:
        number = 0
        while True:
            user = f"user_fault{number % self.members}"
            webhook_id = f"msg_{uuid.uuid4().hex}"
            payload = chat_message_created(experience_id=self.community_id, user_id=user)
            self.bodies[webhook_id] = (user, json.dumps(payload).encode())
            self._queue.put_nowait(webhook_id)
            number += 1
            await asyncio.sleep(1 / self.rate)

    async def _deliver(self) -> None:
        while True:
            webhook_id = await self._queue.get()
            body = self.bodies[webhook_id][1]
            sent = time.monotonic()
            try:
                reply = await self._client.post(
                    f"{self.base_url}/webhooks/whop",
                    content=body,
                    headers=sign_standard(SECRET, body, webhook_id),
                )
                status: int | str = reply.status_code
            except httpx.HTTPError as error:
                status = type(error).__name__
            self.replies.append(Reply(sent, status, time.monotonic()))
            if isinstance(status, int) and 200 <= status < 300:
                self.acknowledged.add(webhook_id)
            else:
                asyncio.get_running_loop().call_later(
                    self.redeliver_after, self._queue.put_nowait, webhook_id
                )


@dataclass
class BoardReader:
    """Reads the board and the members' cards, about 10 times a second, as members would,
    noting every answer."""

    base_url: str
    community_id: str
    every: float = 0.1
    replies: list[Reply] = field(default_factory=list)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def statuses(self) -> Counter[int | str]:
        return Counter(reply.status for reply in self.replies)

    async def _read(self) -> None:
        headers = bearer(GatewaySettings(), platform_admin=True)
        async with httpx.AsyncClient(timeout=10, headers=headers) as client:
            for n in itertools.count():
                base = f"{self.base_url}/api/v1/communities/{self.community_id}"
                # user_fault0 sent the stream's first message, before the reads began.
                path = "/leaderboard" if n % 2 else "/members/user_fault0"
                sent = time.monotonic()
                try:
                    status: int | str = (await client.get(base + path)).status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                self.replies.append(Reply(sent, status, time.monotonic()))
                await asyncio.sleep(self.every)


@dataclass
class Readiness:
    """What /readyz answered, every `every` seconds: (time.monotonic(), ready)."""

    base_url: str
    every: float = 0.2
    answers: list[tuple[float, bool]] = field(default_factory=list)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def ready_again(self, since: float, within: float = 60) -> float:
        """The first time at or after `since` that /readyz answered ready."""
        async with asyncio.timeout(within):
            while True:
                for at, ready in self.answers:
                    if at >= since and ready:
                        return at
                await asyncio.sleep(0.05)

    def was_unready(self, start: float, end: float) -> bool:
        return any(not ready for at, ready in self.answers if start <= at <= end)

    async def _poll(self) -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                at = time.monotonic()
                try:
                    ready = (await client.get(f"{self.base_url}/readyz")).status_code == 200
                except httpx.HTTPError:
                    ready = False
                self.answers.append((at, ready))
                await asyncio.sleep(self.every)


@dataclass
class Window:
    """When a fault began and ended, and when the stack said it was ready again after."""

    start: float
    end: float = 0.0
    recovered: float = 0.0


def described(replies: list[Reply], window: Window) -> list[str]:
    """Each reply as its status and when it was sent, in seconds after the fault began and
    after readiness came back, for a failure message."""
    return [
        f"{reply.status} sent at +{reply.at - window.start:.2f} s "
        f"(recovered {reply.at - window.recovered:+.2f} s)"
        for reply in replies
    ]


def unexpected_answers(replies: list[Reply], window: Window, grace: float = 1.0) -> list[Reply]:
    """Deliveries answered anything but 200, or 503 outside the fault: answered before it
    began, or sent after readiness said ready again (plus `grace` for the poll's
    granularity). A delivery in flight when the fault began may fail by it."""
    return [
        reply
        for reply in replies
        if reply.status != 200
        and not (
            reply.status == 503
            and reply.answered >= window.start
            and reply.at <= window.recovered + grace
        )
    ]


async def terminate_backends(engine: AsyncEngine, database: str, seconds: float) -> int:
    """Terminates every connection to `database` (but the caller's), again and again for
    `seconds`: the service's connections die mid-query, new ones die soon after opening."""
    terminated = 0
    deadline = time.monotonic() + seconds
    async with engine.connect() as admin:
        await admin.execution_options(isolation_level="AUTOCOMMIT")
        while time.monotonic() < deadline:
            terminated += int(
                await admin.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :database AND pid <> pg_backend_pid()"
                    ),
                    {"database": database},
                )
                or 0
            )
            await asyncio.sleep(0.1)
    return terminated


def kill_service(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


async def ledger_by_member(engine: AsyncEngine, community_id: str) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(LedgerEntry.user_id, func.sum(LedgerEntry.delta))
            .where(LedgerEntry.community_id == community_id)
            .group_by(LedgerEntry.user_id)
        )
        return {user: int(total) for user, total in rows}


async def unpublished_outbox(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(text("SELECT count(*) FROM xp.outbox WHERE published_at IS NULL"))
            or 0
        )


async def rewards_and_levels(
    engine: AsyncEngine, community_id: str
) -> tuple[Counter[str], set[str]]:
    """(level-5 rewards per member, the members at level 5 or above)."""
    async with engine.connect() as conn:
        rewards = Counter(
            (
                await conn.scalars(
                    select(Reward.user_id).where(
                        Reward.community_id == community_id, Reward.level == REWARD_LEVEL
                    )
                )
            ).all()
        )
        reached = set(
            (
                await conn.scalars(
                    select(Member.user_id).where(
                        Member.community_id == community_id, Member.level >= REWARD_LEVEL
                    )
                )
            ).all()
        )
    return rewards, reached


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 60, every: float = 0.25
) -> None:
    """Waits until `check()` returns True."""
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(every)


@dataclass
class Platform:
    """The stack and what it runs on: all of its own, so faults touch nothing else."""

    stack: Stack
    redis: OwnServer
    nats: OwnServer
    engine: AsyncEngine
    database: str
    tmp: Path


@asynccontextmanager
async def own_platform(test_env: dict[str, str], tmp: Path) -> AsyncIterator[Platform]:
    """The stack as `make up` runs it, on a Redis, a NATS and a database of its own, with no
    cooldown (every message counts) and no shared reads (every read sees the writes before
    it)."""
    redis, nats = own_redis(tmp), own_nats(tmp)
    redis.start()
    nats.start()
    database_url = test_env["WEE5_DATABASE_URL"].rsplit("/", 1)[0] + f"/wee5_faults_{RUN_ID}"
    await create_migrated_database(database_url)
    env = stack_env(
        {
            **test_env,
            "WEE5_DATABASE_URL": database_url,
            "WEE5_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "WEE5_NATS_URL": f"nats://127.0.0.1:{nats.port}",
            # One client on 127.0.0.1 reads ten times a second: measure faults, not limits.
            "WEE5_RATE_LIMIT_READ": "100000000/minute",
        },
        tmp,
        WEE5_XP_COOLDOWN_SECONDS="0",
        WEE5_SHARED_READ_SECONDS="0",
    )
    engine = create_engine(database_url, pool_size=2)
    platform = Platform(
        launch_stack(env, tmp), redis, nats, engine, str(make_url(database_url).database), tmp
    )
    try:
        yield platform
    finally:
        stop_stack(platform.stack)
        await engine.dispose()
        await drop_database(database_url)
        redis.stop()
        nats.stop()


Fault = Callable[[Platform], Awaitable[None]]


def nats_down(seconds: float) -> Fault:
    """NATS killed, started again after `seconds` (its streams kept on disk)."""
    return _down(lambda platform: platform.nats, seconds)


def redis_down(seconds: float) -> Fault:
    """Redis killed, started again empty after `seconds`."""
    return _down(lambda platform: platform.redis, seconds)


def _down(server: Callable[[Platform], OwnServer], seconds: float) -> Fault:
    async def fault(platform: Platform) -> None:
        server(platform).kill()
        await asyncio.sleep(seconds)
        server(platform).start()

    return fault


def database_connections_cut(seconds: float) -> Fault:
    async def fault(platform: Platform) -> None:
        await terminate_backends(platform.engine, platform.database, seconds)

    return fault


def service_killed(service: str) -> Fault:
    async def fault(platform: Platform) -> None:
        killed = service_pids(platform.stack)[service]
        kill_service(killed)
        await eventually(lambda: restarted(platform.stack, service, killed), within=60)

    return fault


async def ctrl_c(platform: Platform) -> None:
    """Ctrl-C to `make up` mid-stream, then `make up` again (same ports, same data)."""
    await asyncio.to_thread(stop_stack, platform.stack)
    platform.stack = await asyncio.to_thread(launch_stack, platform.stack.env, platform.tmp)


@dataclass
class FaultRun:
    stream: WebhookStream
    reads: BoardReader
    readiness: Readiness
    window: Window


async def through(platform: Platform, fault: Fault) -> FaultRun:
    """Streams webhooks and reads the board and cards, injects `fault` after 2 s, goes on
    2 s after /readyz is ready again, then redelivers until every message is acknowledged."""
    community_id = f"exp_fault{uuid.uuid4().hex[:10]}"
    stream = WebhookStream(platform.stack.base_url, community_id)
    reads = BoardReader(platform.stack.base_url, community_id)
    readiness = Readiness(platform.stack.base_url)
    await readiness.start()
    await stream.start()
    await asyncio.sleep(2)
    await reads.start()
    window = Window(time.monotonic())
    await fault(platform)
    window.end = time.monotonic()
    window.recovered = await readiness.ready_again(window.end)
    stream.base_url = readiness.base_url = reads.base_url = platform.stack.base_url
    await asyncio.sleep(2)
    # However slow the machine, every member gets far enough to earn the level-5 reward.
    await eventually(stream.has_sent(stream.members * MESSAGES_TO_REWARD), within=120)
    await reads.stop()
    await stream.drain()
    await readiness.stop()
    return FaultRun(stream, reads, readiness, window)


async def assert_counted_once_and_settled(platform: Platform, stream: WebhookStream) -> None:
    sent = stream.sent_by_member()
    assert len(stream.acknowledged) == len(stream.bodies) > 0
    assert await ledger_by_member(platform.engine, stream.community_id) == {
        user: XP_PER_MESSAGE * count for user, count in sent.items()
    }

    async def drained() -> bool:
        return await unpublished_outbox(platform.engine) == 0

    async def rewarded_once() -> bool:
        rewards, reached = await rewards_and_levels(platform.engine, stream.community_id)
        return set(rewards) == reached and all(count == 1 for count in rewards.values())

    await eventually(drained)
    await eventually(rewarded_once)
    _, reached = await rewards_and_levels(platform.engine, stream.community_id)
    assert reached == set(sent)  # everyone reached level 5: the check above means something

    # The board (Redis) agrees with the ledger (Postgres), whatever Redis went through.
    async with httpx.AsyncClient(
        base_url=platform.stack.base_url,
        headers=bearer(GatewaySettings(), platform_admin=True),
        timeout=10,
    ) as client:
        reply = await client.get(
            f"/api/v1/communities/{stream.community_id}/leaderboard", params={"limit": 100}
        )
    assert reply.status_code == 200, reply.text
    assert {entry["user_id"]: entry["xp"] for entry in reply.json()["entries"]} == {
        user: XP_PER_MESSAGE * count for user, count in sent.items()
    }


async def restarted(stack: Stack, service: str, old_pid: int) -> bool:
    pid = service_pids(stack).get(service)
    return pid is not None and pid != old_pid
