from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from wee5.xp.v1 import xp_pb2_grpc
from wee5_kit.events import EventBus, Outbox
from wee5_kit.grpc import channel
from wee5_kit.redis import Keys
from wee5_xp.config import XpSettings
from wee5_xp.cooldowns import Cooldowns
from wee5_xp.leaderboards import Leaderboards
from wee5_xp.models import outbox
from wee5_xp.server import build
from wee5_xp.service import XpRates, XpService
from wee5_xp.servicer import XpServicer

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

MakeServicer = Callable[..., XpServicer]


@pytest.fixture
def make_xp(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    test_env: dict[str, str],
) -> MakeServicer:
    """Builds the xp servicer (the transaction boundary) over the real database and Redis."""

    def make(**overrides: Any) -> XpServicer:
        settings = XpSettings(**overrides)
        keys = Keys(test_env["WEE5_REDIS_PREFIX"])
        service = XpService(
            rates=XpRates.from_settings(settings),
            cooldowns=Cooldowns(redis, keys),
            leaderboards=Leaderboards(redis, keys),
            outbox=Outbox(outbox),
        )
        return XpServicer(service, sessionmaker)  # type: ignore[abstract]

    return make


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
