"""Fixtures of the rewards tests: Whop and Discord as local HTTP servers speaking their formats,
and the real xp service (memberships, leaderboards, member cards)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.conftest import free_port
from tests.support.whop_api import FakeDiscord, FakeWhop, serving
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp


@pytest.fixture
async def whop() -> AsyncIterator[FakeWhop]:
    fake = FakeWhop()
    async with serving(fake, "/api/v1") as url:
        fake.base_url = url
        yield fake


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    async with serving(fake, "/api/v10") as url:
        fake.base_url = url
        yield fake


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.05)


@dataclass
class RealXp:
    """The real xp service on a free port, one message worth 1000 XP (level 5 in one message,
    level 10 in four), no cooldown."""

    address: str
    stub: xp_pb2_grpc.XpServiceAsyncStub

    async def messages(self, community_id: str, user_id: str, count: int) -> int:
        level = 0
        for _ in range(count):
            reply = await self.stub.RecordActivity(
                xp_pb2.RecordActivityRequest(
                    activity=xp_pb2.Activity(
                        community_id=community_id,
                        user_id=user_id,
                        kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                        source=xp_pb2.SOURCE_API,
                        idempotency_key=uuid.uuid4().hex,
                    )
                )
            )
            level = reply.level
        return level


@pytest.fixture(scope="module")
async def real_xp(test_env: dict[str, str], database_url: str) -> AsyncIterator[RealXp]:
    address = f"127.0.0.1:{free_port()}"
    server = await build_xp(XpSettings(xp_addr=address, xp_cooldown_seconds=0, xp_message=1000))
    await server.start()
    xp_channel = channel(address)
    yield RealXp(address, xp_pb2_grpc.XpServiceStub(xp_channel))
    await xp_channel.close(None)
    await server.stop()


@dataclass
class XpMemberships:
    """Memberships told to the real xp as the gateway does after a `membership.activated`
    webhook (SetMembership with the community the webhook named)."""

    xp: RealXp

    @property
    def address(self) -> str:
        return self.xp.address

    async def link(
        self, community_id: str, user_id: str, membership_id: str, company_id: str
    ) -> None:
        membership = xp_pb2.Membership(
            company_id=company_id,
            user_id=user_id,
            membership_id=membership_id,
            status="active",
            active=True,
        )
        membership.updated_at.GetCurrentTime()
        await self.xp.stub.SetMembership(
            xp_pb2.SetMembershipRequest(membership=membership, community_id=community_id)
        )


@pytest.fixture
def memberships_xp(real_xp: RealXp) -> XpMemberships:
    return XpMemberships(real_xp)
