from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_kit.events import Outbox
from wee5_kit.redis import Keys
from wee5_xp.config import XpSettings
from wee5_xp.cooldowns import Cooldowns
from wee5_xp.leaderboards import Leaderboards
from wee5_xp.models import outbox
from wee5_xp.service import XpService, default_config
from wee5_xp.servicer import XpServicer

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
            defaults=default_config(settings),
            cooldowns=Cooldowns(redis, keys),
            leaderboards=Leaderboards(redis, keys),
            outbox=Outbox(outbox),
            sessionmaker=sessionmaker,
        )
        return XpServicer(service, sessionmaker)  # type: ignore[abstract]

    return make
