"""Fixtures of the rewards tests: Whop and Discord as local HTTP servers speaking their formats,
and an xp that answers GetMembership (a real grpc.aio server over the generated base class)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from tests.conftest import free_port
from tests.support.whop_api import FakeDiscord, FakeWhop, serving
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp


@dataclass
class MembershipsXp(xp_pb2_grpc.XpServiceServicer):
    """xp's GetMembership over (community, user) → membership; NOT_FOUND for anyone else."""

    known: dict[tuple[str, str], xp_pb2.Membership] = field(default_factory=dict)
    address: str = ""

    def link(self, community_id: str, user_id: str, membership_id: str, company_id: str) -> None:
        self.known[(community_id, user_id)] = xp_pb2.Membership(
            company_id=company_id,
            user_id=user_id,
            membership_id=membership_id,
            status="active",
            active=True,
        )

    async def GetMembership(
        self, request: xp_pb2.GetMembershipRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xp_pb2.GetMembershipResponse:
        membership = self.known.get((request.community_id, request.user_id))
        if membership is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no membership known")
        return xp_pb2.GetMembershipResponse(membership=membership)


@pytest.fixture
async def memberships_xp() -> AsyncIterator[MembershipsXp]:
    servicer = MembershipsXp()  # type: ignore[abstract]
    server = grpc.aio.server()
    xp_pb2_grpc.add_XpServiceServicer_to_server(servicer, server)
    servicer.address = f"127.0.0.1:{free_port()}"
    server.add_insecure_port(servicer.address)
    await server.start()
    yield servicer
    await server.stop(None)


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
