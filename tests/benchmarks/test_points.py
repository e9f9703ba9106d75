"""First submissions earn points end to end: the gateway, the benchmarks process and its
outbox relay, JetStream, and xp's consumer of `benchmarks.submitted`, all real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.benchmarks.conftest import Benchmarks
from tests.conftest import free_port
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp

Sessions = async_sessionmaker[AsyncSession]
FIRST_SUBMISSION_POINTS = 50


@pytest.fixture
async def xp_addr(database_url: str, redis: Redis, bus: EventBus) -> AsyncIterator[str]:
    addr = f"127.0.0.1:{free_port()}"
    server = await build_xp(XpSettings(xp_addr=addr))
    await server.start()
    yield addr
    await server.stop()


async def member_xp(xp_addr: str, community_id: str, user_id: str) -> int:
    async with channel(xp_addr) as chan:
        try:
            reply = await xp_pb2_grpc.XpServiceStub(chan).GetMember(
                xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return 0
            raise
    return int(reply.member.xp)


async def wait_for_xp(xp_addr: str, community_id: str, user_id: str, wanted: int) -> int:
    """The member's XP once it reached `wanted` (or what it was after 20 s)."""
    xp = 0
    for _ in range(200):
        xp = await member_xp(xp_addr, community_id, user_id)
        if xp >= wanted:
            return xp
        await asyncio.sleep(0.1)
    return xp


async def test_first_submission_per_category_earns_points_once(
    benchmarks_server: Benchmarks, xp_addr: str, sessionmaker: Sessions, community_id: str
) -> None:
    settings = gateway_settings(xp_addr, benchmarks_addr=benchmarks_server.addr)
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    member = bearer(
        settings, await new_account(sessionmaker, community_id, "member", member_user_id="user_m")
    )
    base = f"/api/v1/communities/{community_id}/benchmarks"

    def pay(salary: int) -> dict[str, Any]:
        return {"answers": {"role": "sdr", "region": "europe", "base_salary": salary}}

    async with serve(settings) as client:
        assert (
            await client.put(f"{base}/settings", json={"enabled": True}, headers=owner)
        ).status_code == 200
        first = await client.put(
            f"{base}/compensation/submission", json=pay(50_000), headers=member
        )
        assert first.json()["first_submission"] is True
        assert await wait_for_xp(xp_addr, community_id, "user_m", 50) == FIRST_SUBMISSION_POINTS
        # Changing, deleting and answering again publish nothing more.
        await client.put(f"{base}/compensation/submission", json=pay(51_000), headers=member)
        await client.delete(f"{base}/submissions/{first.json()['id']}", headers=member)
        await client.put(f"{base}/compensation/submission", json=pay(52_000), headers=member)
        # A first answer in another category earns again; once it has, every event published
        # before it has been handled too (one consumer, in stream order).
        body = {"answers": {"channel": "cold_email", "reply_rate": 3.5}}
        other = await client.put(f"{base}/operational/submission", json=body, headers=member)
        assert other.json()["first_submission"] is True
        assert (
            await wait_for_xp(xp_addr, community_id, "user_m", 100) == 2 * FIRST_SUBMISSION_POINTS
        )
