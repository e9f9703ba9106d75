"""The resource library under test, all real and over real sockets: the resources process
(gRPC + its file endpoint on HTTP, local storage in a temporary directory), the gateway served
by uvicorn, the xp process that owns Whop memberships, Postgres, Redis and NATS."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
import uvicorn
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.resources.files import pdf_bytes
from tests.support.gateway import bearer, gateway_settings, new_account
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_gateway.app import create_app
from wee5_gateway.config import GatewaySettings
from wee5_kit.events import EventBus
from wee5_kit.grpc import GrpcServer, channel
from wee5_resources.config import ResourcesSettings
from wee5_resources.server import build
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

Sessions = async_sessionmaker[AsyncSession]
SIGNING_KEY = "test-signing-key-" + "k" * 32
PDF = "application/pdf"


class MembershipBook:
    """Sets members' Whop memberships in the real xp service, as its `membership.*` webhook
    intake does; the resources service then asks xp `GetMembership` on every download."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.xp: XpServiceAsyncStub = xp_pb2_grpc.XpServiceStub(channel)

    async def set(self, community_id: str, user_id: str, status: str, active: bool) -> None:
        membership = xp_pb2.Membership(
            company_id=f"biz_{community_id}",
            user_id=user_id,
            membership_id=f"mem_{user_id}",
            status=status,
            active=active,
        )
        membership.updated_at.FromDatetime(datetime.now(UTC))
        await self.xp.SetMembership(
            xp_pb2.SetMembershipRequest(membership=membership, community_id=community_id)
        )


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Library:
    """Everything a test of the library talks to."""

    gateway: httpx.AsyncClient
    files: httpx.AsyncClient  # plain client for signed URLs (no gateway credentials)
    settings: GatewaySettings
    resources_settings: ResourcesSettings
    sessions: Sessions
    memberships: MembershipBook
    storage_dir: Path
    bus: EventBus

    def as_account(self, account_id: uuid.UUID) -> dict[str, str]:
        return bearer(self.settings, account_id)


@dataclass
class Community:
    id: str
    admin: uuid.UUID
    member: uuid.UUID
    member_user_id: str
    lib: Library

    @property
    def base(self) -> str:
        return f"/api/v1/communities/{self.id}"

    @property
    def admin_headers(self) -> dict[str, str]:
        return self.lib.as_account(self.admin)

    @property
    def member_headers(self) -> dict[str, str]:
        return self.lib.as_account(self.member)

    async def add_member(self, user_id: str, *, active: bool = True) -> dict[str, str]:
        account = await new_account(self.lib.sessions, self.id, "member", member_user_id=user_id)
        if active:
            await self.lib.memberships.set(self.id, user_id, "active", True)
        return self.lib.as_account(account)

    async def upload(
        self,
        content: bytes,
        *,
        content_type: str = PDF,
        file_name: str = "playbook.pdf",
        size_bytes: int | None = None,
    ) -> dict[str, Any]:
        """Asks for an upload URL and PUTs the bytes to it; returns the grant."""
        grant = await self.lib.gateway.post(
            f"{self.base}/resources/uploads",
            json={
                "file_name": file_name,
                "content_type": content_type,
                "size_bytes": size_bytes or len(content),
            },
            headers=self.admin_headers,
        )
        assert grant.status_code == 201, grant.text
        body: dict[str, Any] = grant.json()
        put = await self.lib.files.request(
            body["method"], body["url"], content=content, headers=body["headers"]
        )
        assert put.status_code == 200, put.text
        return body

    async def publish(
        self,
        content: bytes | None = None,
        *,
        content_type: str = PDF,
        file_name: str = "playbook.pdf",
        **fields: Any,
    ) -> dict[str, Any]:
        """Uploads and creates a resource; returns it."""
        grant = await self.upload(
            content if content is not None else pdf_bytes(),
            content_type=content_type,
            file_name=file_name,
        )
        body = {
            "storage_key": grant["storage_key"],
            "title": "Cold email playbook",
            "category": "Cold email",
            "type": "playbook",
            **fields,
        }
        created = await self.lib.gateway.post(
            f"{self.base}/resources", json=body, headers=self.admin_headers
        )
        assert created.status_code == 201, created.text
        resource: dict[str, Any] = created.json()
        return resource


async def _serve_http(app: Any, port: int) -> tuple[_Uvicorn, asyncio.Task[None]]:
    server = _Uvicorn(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):
        while not server.started:
            if task.done():
                await task
                raise AssertionError("the HTTP server did not start")
            await asyncio.sleep(0.02)
    return server, task


async def _wait_http(url: str) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(20):
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
async def membership_server(
    database_url: str, redis: Redis, bus: EventBus
) -> AsyncIterator[tuple[MembershipBook, str]]:
    """The real xp process (gRPC), which owns Whop memberships."""
    addr = f"127.0.0.1:{free_port()}"
    xp = await build_xp(XpSettings(xp_addr=addr))
    await xp.start()
    xp_channel = channel(addr)
    yield MembershipBook(xp_channel), addr
    await xp_channel.close(None)
    await xp.stop()


@pytest.fixture(scope="session")
async def library(
    database_url: str,
    redis: Redis,
    bus: EventBus,
    sessionmaker: Sessions,
    membership_server: tuple[MembershipBook, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Library]:
    book, xp_addr = membership_server
    storage_dir = tmp_path_factory.mktemp("storage")
    http_port = free_port()
    resources_addr = f"127.0.0.1:{free_port()}"
    resources_settings = ResourcesSettings(
        resources_addr=resources_addr,
        xp_addr=xp_addr,
        storage_dir=storage_dir,
        storage_signing_key=SIGNING_KEY,
        resources_http_host="127.0.0.1",
        resources_http_port=http_port,
        resources_public_url=f"http://127.0.0.1:{http_port}",
    )
    resources: GrpcServer = await build(resources_settings)
    await resources.start()
    await _wait_http(f"http://127.0.0.1:{http_port}/healthz")
    settings = gateway_settings(xp_addr, resources_addr=resources_addr)
    gateway_port = free_port()
    server, task = await _serve_http(create_app(settings), gateway_port)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_port}", timeout=30) as gateway,
        httpx.AsyncClient(timeout=30) as files,
    ):
        yield Library(
            gateway=gateway,
            files=files,
            settings=settings,
            resources_settings=resources_settings,
            sessions=sessionmaker,
            memberships=book,
            storage_dir=storage_dir,
            bus=bus,
        )
    server.should_exit = True
    await task
    await resources.stop()


@pytest.fixture
async def community(library: Library) -> Community:
    """A community of the test's own with an admin and an active member."""
    community_id = f"exp_{uuid.uuid4().hex[:12]}"
    admin = await new_account(library.sessions, community_id, "admin")
    member_user_id = f"user_{uuid.uuid4().hex[:10]}"
    member = await new_account(
        library.sessions, community_id, "member", member_user_id=member_user_id
    )
    await library.memberships.set(community_id, member_user_id, "active", True)
    return Community(community_id, admin, member, member_user_id, library)
