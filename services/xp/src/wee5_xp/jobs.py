"""What a CronJob task of xp holds while it runs: settings, database, Redis, the award path,
and named advisory locks so that two runs at once never do the same work twice."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from wee5_kit.db import create_engine, create_sessionmaker, exclusive
from wee5_kit.events import Outbox
from wee5_kit.redis import Keys, create_redis
from wee5_xp.config import XpSettings
from wee5_xp.cooldowns import Cooldowns
from wee5_xp.leaderboards import Leaderboards
from wee5_xp.locks import xp_lock
from wee5_xp.models import outbox
from wee5_xp.points import PointAmounts, PointsService
from wee5_xp.service import XpService, default_config
from wee5_xp.syncs.http import RetryPolicy
from wee5_xp.syncs.mee6 import Mee6Client


@dataclass
class TaskContext:
    settings: XpSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    service: XpService
    points: PointsService

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: XpSettings) -> AsyncIterator[TaskContext]:
        engine = create_engine(settings.database_url, pool_size=2)
        redis = create_redis(settings.redis_url)
        keys = Keys(settings.redis_prefix)
        # Events go to the outbox; the xp server's relay publishes them.
        sessionmaker = create_sessionmaker(engine)
        service = XpService(
            defaults=default_config(settings),
            cooldowns=Cooldowns(redis, keys),
            leaderboards=Leaderboards(redis, keys),
            outbox=Outbox(outbox),
            sessionmaker=sessionmaker,
            # A task reads each community's config afresh.
            config_cache_seconds=0,
        )
        try:
            yield cls(
                settings=settings,
                engine=engine,
                sessionmaker=sessionmaker,
                redis=redis,
                service=service,
                points=PointsService(service, PointAmounts.from_settings(settings)),
            )
        finally:
            await redis.aclose()
            await engine.dispose()

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.settings.provider_attempts,
            backoff=self.settings.provider_backoff_seconds,
        )

    def mee6_client(self) -> Mee6Client:
        return Mee6Client(
            self.settings.mee6_api_url,
            timeout=self.settings.provider_timeout_seconds,
            retry=self.retry_policy(),
            page_delay=self.settings.mee6_page_delay_seconds,
            page_size=self.settings.mee6_page_size,
        )

    @asynccontextmanager
    async def exclusive(self, *name: str) -> AsyncIterator[bool]:
        """Holds the named Postgres advisory lock for the block; yields False (without
        waiting) when another run holds it."""
        async with exclusive(self.engine, xp_lock(*name)) as held:
            yield held


JobRun = Callable[[TaskContext, argparse.Namespace], Awaitable[int]]
JobArguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Job:
    """A task: its help line, its command-line options and the function that runs it (which
    returns the process exit code)."""

    help: str
    arguments: JobArguments
    run: JobRun
