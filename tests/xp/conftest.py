from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.events import EventBus, Outbox
from wee5_kit.grpc import channel
from wee5_kit.redis import Keys
from wee5_xp.config import XpSettings
from wee5_xp.cooldowns import Cooldowns
from wee5_xp.leaderboards import Leaderboards
from wee5_xp.models import outbox
from wee5_xp.server import build
from wee5_xp.service import XpService, default_config
from wee5_xp.servicer import XpServicer

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

MakeServicer = Callable[..., XpServicer]


@pytest.fixture
async def make_xp(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    test_env: dict[str, str],
) -> AsyncIterator[MakeServicer]:
    """Builds the xp servicer (the transaction boundary) over the real database and Redis."""
    made: list[XpServicer] = []

    def make(clock: Callable[[], datetime] | None = None, **overrides: Any) -> XpServicer:
        settings = XpSettings(**overrides)
        keys = Keys(test_env["WEE5_REDIS_PREFIX"])
        service = XpService(
            defaults=default_config(settings),
            cooldowns=Cooldowns(redis, keys),
            leaderboards=Leaderboards(redis, keys),
            outbox=Outbox(outbox),
            sessionmaker=sessionmaker,
            clock=clock,
        )
        servicer = XpServicer(service, sessionmaker)
        made.append(servicer)
        return servicer

    yield make
    for servicer in made:
        await servicer.batcher.close()


@pytest.fixture(scope="module")
async def xp_grpc(
    test_env: dict[str, str], database_url: str, bus: EventBus
) -> AsyncIterator[XpServiceAsyncStub]:
    """The xp server as `python -m wee5_xp` builds it: gRPC, outbox relay, points consumers."""
    for context in ("benchmarks", "resources", "billing"):
        await bus.ensure_stream(context)  # their services own these streams
    address = f"127.0.0.1:{free_port()}"
    server = await build(XpSettings(xp_addr=address, xp_cooldown_seconds=0))
    await server.start()
    client = channel(address)
    try:
        yield xp_pb2_grpc.XpServiceStub(client)
    finally:
        await client.close(None)
        await server.stop()


@pytest.fixture(scope="module")
async def xp_rpc(database_url: str) -> AsyncIterator[XpServiceAsyncStub]:
    """A real xp gRPC server (default rules, 60 s cooldown) and a client of it."""
    addr = f"127.0.0.1:{free_port()}"
    server = await build(XpSettings(xp_addr=addr))
    await server.start()
    async with channel(addr) as chan:
        yield xp_pb2_grpc.XpServiceStub(chan)
    await server.stop()


def activity(
    community_id: str,
    user_id: str = "user_a",
    kind: xp_pb2.ActivityKind.ValueType = xp_pb2.ACTIVITY_KIND_MESSAGE,
    key: str | None = None,
    **fields: Any,
) -> xp_pb2.RecordActivityRequest:
    return xp_pb2.RecordActivityRequest(
        activity=xp_pb2.Activity(
            community_id=community_id,
            user_id=user_id,
            kind=kind,
            source=xp_pb2.SOURCE_WHOP,
            idempotency_key=key or f"evt_{uuid.uuid4().hex}",
            **fields,
        )
    )


async def set_config(
    xp: XpServiceAsyncStub, community_id: str, **changes: Any
) -> xp_pb2.UpdateXpConfigResponse:
    """Replaces the community's config with its current one plus `changes`."""
    current = (await xp.GetXpConfig(xp_pb2.GetXpConfigRequest(community_id=community_id))).config
    config = xp_pb2.XpConfig()
    config.CopyFrom(current)
    for name, value in changes.items():
        field = getattr(config, name)
        if isinstance(value, dict):
            field.clear()
            for k, v in value.items():
                if isinstance(v, xp_pb2.XpRange):
                    field[k].CopyFrom(v)
                else:
                    field[k] = v
        elif isinstance(value, list):
            del field[:]
            field.extend(value)
        elif hasattr(field, "CopyFrom"):
            field.CopyFrom(value)
        else:
            setattr(config, name, value)
    return await xp.UpdateXpConfig(
        xp_pb2.UpdateXpConfigRequest(community_id=community_id, config=config)
    )
