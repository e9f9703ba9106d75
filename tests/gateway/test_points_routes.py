"""`POST …/points` and `POST …/imports` through the real gateway app and xp gRPC server:
idempotent awards, clear problems for bad input, audit entries for what changed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from wee5_gateway.config import GatewaySettings
from wee5_gateway.db.models import AuditEntry
from wee5_kit.events import EventBus
from wee5_xp.config import XpSettings
from wee5_xp.server import build

Sessions = async_sessionmaker[AsyncSession]
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def settings(
    database_url: str, redis: Redis, bus: EventBus
) -> AsyncIterator[GatewaySettings]:
    for context in ("benchmarks", "resources", "billing"):
        await bus.ensure_stream(context)
    addr = f"127.0.0.1:{free_port()}"
    xp = await build(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    await xp.start()
    yield gateway_settings(addr)
    await xp.stop()


@pytest.fixture
async def client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client


def base(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}"


async def audit_actions(sessions: Sessions, community_id: str) -> list[tuple[str, str | None]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.community_id == community_id)
            .order_by(AuditEntry.id)
        )
        return [(row.action, row.target) for row in rows]


async def test_admin_awards_intro_points_once_and_it_is_audited(
    client: httpx.AsyncClient, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    admin = bearer(settings, await new_account(sessionmaker, community_id, "admin"))
    body = {"user_id": "user_new", "reason": "intro", "idempotency_key": "intro:user_new"}

    first = await client.post(f"{base(community_id)}/points", json=body, headers=admin)
    again = await client.post(f"{base(community_id)}/points", json=body, headers=admin)

    assert first.status_code == 200, first.text
    assert first.json() == {"duplicate": False, "total_xp": 25, "level": 1}
    assert again.json() == {"duplicate": True, "total_xp": 25, "level": 1}
    assert await audit_actions(sessionmaker, community_id) == [
        ("points.awarded", "member:user_new")
    ]


async def test_bad_points_bodies_are_400_problems_and_a_reused_key_409(
    client: httpx.AsyncClient, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    admin = bearer(settings, await new_account(sessionmaker, community_id, "admin"))
    url = f"{base(community_id)}/points"
    for body in (
        {"user_id": "u1", "reason": "intro"},
        {"user_id": "u1", "reason": "Intro!", "idempotency_key": "k"},
        {"user_id": "u1", "reason": "quest", "idempotency_key": "k", "points": 0},
        {"user_id": "u1", "reason": "quest", "idempotency_key": "k"},  # no amount for quest
    ):
        reply = await client.post(url, json=body, headers=admin)
        assert reply.status_code == 400, (body, reply.text)
        assert reply.headers["content-type"].startswith(PROBLEM)

    used = {"user_id": "u1", "reason": "quest", "idempotency_key": "q", "points": 3}
    assert (await client.post(url, json=used, headers=admin)).status_code == 200
    reused = await client.post(url, json={**used, "user_id": "u2"}, headers=admin)
    assert reused.status_code == 409
    assert reused.headers["content-type"].startswith(PROBLEM)


async def test_owner_imports_members_and_a_repeat_imports_nothing(
    client: httpx.AsyncClient, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    body = {
        "source": "mee6",
        "members": [
            {"user_id": "111", "xp": 4675, "message_count": 200},
            {"user_id": "222", "xp": 100},
        ],
    }
    url = f"{base(community_id)}/imports"

    first = await client.post(url, json=body, headers=owner)
    again = await client.post(url, json=body, headers=owner)
    card = await client.get(f"{base(community_id)}/members/111", headers=owner)

    assert (first.status_code, first.json()) == (200, {"imported": 2})
    assert again.json() == {"imported": 0}
    assert (card.json()["xp"], card.json()["level"]) == (4675, 11)
    assert [action for action, _ in await audit_actions(sessionmaker, community_id)] == [
        "members.imported",
        "members.imported",
    ]


async def test_bad_import_bodies_are_400_problems(
    client: httpx.AsyncClient, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    url = f"{base(community_id)}/imports"
    for body in (
        {"source": "mee6", "members": []},
        {"source": "carl-bot", "members": [{"user_id": "1", "xp": 1}]},
        {"source": "mee6", "members": [{"user_id": "1", "xp": -1}]},
        {"source": "mee6", "members": [{"user_id": "1", "xp": 1}, {"user_id": "1", "xp": 2}]},
        {"source": "mee6", "members": [{"user_id": str(n), "xp": 1} for n in range(1001)]},
    ):
        reply = await client.post(url, json=body, headers=owner)
        assert reply.status_code == 400, (body, reply.text)
        assert reply.headers["content-type"].startswith(PROBLEM)
    assert await audit_actions(sessionmaker, community_id) == []


async def test_bot_key_with_xp_admin_awards_points(
    client: httpx.AsyncClient, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    created = await client.post(
        f"{base(community_id)}/api-keys",
        json={"name": "intro bot", "scopes": ["xp:admin"]},
        headers=owner,
    )
    key = created.json()["key"]
    body = {"user_id": "user_x", "reason": "intro", "idempotency_key": uuid.uuid4().hex}

    reply = await client.post(f"{base(community_id)}/points", json=body, headers={"X-API-Key": key})

    assert reply.status_code == 200, reply.text
    assert reply.json()["total_xp"] == 25
