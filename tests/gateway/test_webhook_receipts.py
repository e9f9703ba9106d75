"""Webhook receipts (api/webhooks/receipts.py): a redelivery is answered from this process's
recent ids or the Redis key every replica shares, the Postgres rows are written behind the
answers, and xp, not the receipt, is what counts a delivery once.

Against a real xp server, Postgres and Redis. A test that needs the Postgres rows "not written
yet" holds a lock on the receipts table that keeps the writer's insert waiting (reads still
pass), instead of stubbing the writer.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.gateway import test_member_profiles as profiles
from tests.gateway import test_webhooks as webhooks
from tests.gateway.test_webhooks import deliver, member
from tests.support.gateway import (
    flush_receipts,
    gateway_settings,
    receipts_held,
    receipts_of,
    serve,
)
from tests.support.whop import chat_message_created, new_id
from wee5_gateway.api.webhooks.receipts import Receipt, RecentIds, RedisBatcher
from wee5_gateway.config import GatewaySettings
from wee5_gateway.db.models import WebhookReceipt, WhopExperience

Client = httpx.AsyncClient
Sessions = async_sessionmaker[AsyncSession]
xp_addr = webhooks.xp_addr
settings = profiles.settings
gateway = profiles.gateway


def xp_down() -> GatewaySettings:
    """Another replica, whose xp does not answer: whatever it acknowledges came from a receipt."""
    return gateway_settings(f"127.0.0.1:{free_port()}")


async def stored_receipts(sessionmaker: Sessions, webhook_id: str) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(WebhookReceipt.outcome).where(WebhookReceipt.webhook_id == webhook_id)
        )
        return list(rows)


async def test_a_redelivery_before_its_receipt_is_written_is_a_duplicate_counted_once(
    gateway: Client, engine: AsyncEngine, sessionmaker: Sessions, community_id: str
) -> None:
    user = new_id("user")
    envelope = chat_message_created(community_id, user)

    async with receipts_held(engine):
        first = await deliver(gateway, envelope)
        again = await deliver(gateway, envelope)
        assert await stored_receipts(sessionmaker, envelope["id"]) == []
        # Another replica: it knows the delivery from Redis, without xp or the Postgres row.
        async with serve(xp_down()) as other:
            elsewhere = await deliver(other, envelope)

    assert [r.json()["status"] for r in (first, again, elsewhere)] == [
        "awarded",
        "duplicate",
        "duplicate",
    ]
    assert (await member(gateway, community_id, user)).json()["xp"] == 20
    await flush_receipts(gateway)
    assert await stored_receipts(sessionmaker, envelope["id"]) == ["awarded"]


async def test_a_redelivery_after_its_receipt_is_written_is_a_duplicate_counted_once(
    gateway: Client, sessionmaker: Sessions, community_id: str
) -> None:
    user = new_id("user")
    envelope = chat_message_created(community_id, user)
    assert (await deliver(gateway, envelope)).json() == {"status": "awarded"}
    await flush_receipts(gateway)

    statuses = [(await deliver(gateway, envelope)).json()["status"] for _ in range(2)]

    assert statuses == ["duplicate", "duplicate"]
    assert (await member(gateway, community_id, user)).json()["xp"] == 20
    assert await stored_receipts(sessionmaker, envelope["id"]) == ["awarded"]


async def test_a_lost_receipt_costs_a_trip_to_xp_which_counts_the_delivery_once(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    redis: Redis,
    community_id: str,
) -> None:
    user = new_id("user")
    envelope = chat_message_created(community_id, user)
    assert (await deliver(gateway, envelope)).json() == {"status": "awarded"}
    await flush_receipts(gateway)
    # Every trace of the receipt gone: Redis lost the key, Postgres the row, a new process.
    await redis.delete(receipts_of(gateway).key("whop", envelope["id"]))
    async with sessionmaker.begin() as session:
        await session.execute(
            delete(WebhookReceipt).where(WebhookReceipt.webhook_id == envelope["id"])
        )

    async with serve(settings) as restarted:
        response = await deliver(restarted, envelope)

    assert response.json() == {"status": "duplicate"}
    assert (await member(gateway, community_id, user)).json()["xp"] == 20


async def test_while_redis_is_down_receipts_are_checked_in_postgres(
    xp_addr: str, sessionmaker: Sessions, community_id: str
) -> None:
    no_redis = {"redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    user = new_id("user")
    envelope = chat_message_created(community_id, user)
    async with serve(gateway_settings(xp_addr, **no_redis)) as gateway:
        assert (await deliver(gateway, envelope)).json() == {"status": "awarded"}
        await flush_receipts(gateway)

    # A replica without Redis and without xp: only the Postgres row can answer.
    async with serve(gateway_settings(f"127.0.0.1:{free_port()}", **no_redis)) as other:
        response = await deliver(other, envelope)

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "duplicate"}
    assert await stored_receipts(sessionmaker, envelope["id"]) == ["awarded"]


async def test_receipts_waiting_to_be_written_are_written_at_shutdown(
    settings: GatewaySettings, engine: AsyncEngine, sessionmaker: Sessions, community_id: str
) -> None:
    company = new_id("biz")
    envelopes = [
        chat_message_created(community_id, new_id("user"), company_id=company) for _ in range(3)
    ]
    shutdown: asyncio.Task[None] | None = None

    async def serve_then_stop(released: asyncio.Event) -> None:
        async with serve(settings) as gateway:
            for envelope in envelopes:
                assert (await deliver(gateway, envelope)).json() == {"status": "awarded"}
            released.set()

    async with receipts_held(engine):
        delivered = asyncio.Event()
        shutdown = asyncio.create_task(serve_then_stop(delivered))
        await delivered.wait()
        assert [await stored_receipts(sessionmaker, e["id"]) for e in envelopes] == [[]] * 3
    await shutdown  # the writer's inserts go through once the lock is released

    assert [await stored_receipts(sessionmaker, e["id"]) for e in envelopes] == [["awarded"]] * 3
    async with sessionmaker() as session:
        known = await session.get(WhopExperience, community_id)
    assert known is not None
    assert known.company_id == company


def test_recent_ids_forget_the_least_recently_seen_first() -> None:
    recent = RecentIds(2)
    recent.add("a")
    recent.add("b")
    assert "a" in recent  # seen again: now "b" is the oldest

    recent.add("c")

    assert ("a" in recent, "b" in recent, "c" in recent) == (True, False, True)


def test_a_receipt_row_is_always_one_postgres_can_store() -> None:
    receipt = Receipt("whop", "msg_\x00x", "chat\x00." + "t" * 300, "ignored", "exp:not/an id")

    row = receipt.row()

    assert (row.webhook_id, row.event_type[:6], len(row.event_type), row.community_id) == (
        "msg_x",
        "chat.t",
        200,
        None,
    )


class CountedRedis(Redis):
    """Redis as it is, counting the pipelines run through it and the commands sent alone."""

    pipelines = 0
    alone = 0

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        self.pipelines += 1
        return super().pipeline(transaction, shard_hint)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.alone += 1
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


async def test_commands_asked_for_together_go_to_redis_in_one_pipeline(
    test_env: dict[str, str], redis: Redis
) -> None:
    prefix = test_env["WEE5_REDIS_PREFIX"]
    counted = cast(
        CountedRedis, CountedRedis.from_url(test_env["WEE5_REDIS_URL"], decode_responses=True)
    )
    batcher = RedisBatcher(counted)
    try:
        await redis.set(f"{prefix}:batch:list", "a string")
        sets = [batcher.call("SET", f"{prefix}:batch:{i}", f"v{i}", "EX", 60) for i in range(16)]
        # A command Redis refuses fails its own caller only.
        wrong = batcher.call("LPUSH", f"{prefix}:batch:list", "x")
        exists = batcher.call("EXISTS", f"{prefix}:batch:3")
        replies = await asyncio.gather(*sets, exists)
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await wrong

        assert replies == [True] * 16 + [1]
        assert (counted.pipelines, counted.alone) == (1, 0)
        assert await redis.get(f"{prefix}:batch:15") == "v15"
        # The next turn of the loop is the next pipeline.
        assert await batcher.call("GET", f"{prefix}:batch:0") == "v0"
        assert counted.pipelines == 2
    finally:
        await batcher.close()
        await counted.aclose()


async def test_when_redis_is_away_every_command_of_the_pipeline_fails() -> None:
    away = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    batcher = RedisBatcher(away)
    try:
        calls = [batcher.call("EXISTS", f"k{i}") for i in range(3)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert [type(outcome) for outcome in outcomes] == [RedisConnectionError] * 3
    finally:
        await batcher.close()
        await away.aclose()
