"""Who may call which route, in their own community and in another: every protected route ×
every kind of caller × own/other community, against the real gateway, database and xp.

The expectations are written out here (not derived from the policy table), so a change to
the policy that this matrix does not also record fails the test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from wee5_billing.config import BillingSettings
from wee5_billing.server import build as build_billing
from wee5_gateway.config import GatewaySettings
from wee5_gateway.models import ApiKey
from wee5_gateway.security import new_api_key, token_hash
from wee5_kit.events import EventBus
from wee5_xp.config import XpSettings
from wee5_xp.server import build

Sessions = async_sessionmaker[AsyncSession]

CALLERS = (
    "anonymous",
    "member",
    "admin",
    "owner",
    "stranger",  # an owner of another community, with no role in this one
    "platform_admin",
    "key",  # an API key of this community with every scope
    "key_of_other",  # an API key of another community with every scope
)
# This matrix sends a few hundred requests; its subject is access, not throttling.
RELAXED_LIMITS = {
    f"rate_limit_{kind}": "100000/minute" for kind in ("auth", "read", "write", "activities")
}
OK = "ok"  # anything but 401/403: the access check let the call through

# route name → caller → expected answer, in the caller's own community.
OWN: dict[str, dict[str, int | str]] = {
    "read_leaderboard": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_member_card": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "list_roles": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "grant_member": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "grant_admin": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "revoke_member": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "revoke_admin": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "create_api_key": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "list_api_keys": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "revoke_api_key": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "read_audit_log": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "record_activity": dict(anonymous=401, member=403, admin=403, owner=403, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_analytics": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_plan": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "set_plan": dict(anonymous=401, member=403, admin=403, owner=403, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    "award_points": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "import_members": dict(anonymous=401, member=403, admin=403, owner=OK, stranger=403, platform_admin=OK, key=403, key_of_other=403),
    # A granted stream never ends, so only refusals are checked here (test_stream covers the rest).
    "open_stream": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_member_history": dict(anonymous=401, member=OK, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "read_xp_config": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "update_xp_config": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
    "adjust_xp": dict(anonymous=401, member=403, admin=OK, owner=OK, stranger=403, platform_admin=OK, key=OK, key_of_other=403),
}  # fmt: skip


@dataclass
class Community:
    id: str
    member: uuid.UUID
    admin: uuid.UUID
    owner: uuid.UUID
    key: str


@dataclass
class World:
    settings: GatewaySettings
    sessions: Sessions
    client: httpx.AsyncClient
    own: Community
    other: Community

    def headers(self, caller: str) -> dict[str, str]:
        own, other = self.own, self.other
        accounts = {
            "member": own.member,
            "admin": own.admin,
            "owner": own.owner,
            "stranger": other.owner,
        }
        if caller == "anonymous":
            return {}
        if caller == "platform_admin":
            return bearer(self.settings, platform_admin=True)
        if caller == "key":
            return {"X-API-Key": own.key}
        if caller == "key_of_other":
            return {"Authorization": f"Bearer {other.key}"}
        return bearer(self.settings, accounts[caller])


async def make_key(sessions: Sessions, community_id: str) -> tuple[uuid.UUID, str]:
    secret = new_api_key()
    key = ApiKey(
        community_id=community_id,
        name="matrix",
        prefix=secret[:14],
        key_hash=token_hash(secret),
        scopes=["activities:write", "xp:admin", "xp:read"],
    )
    async with sessions.begin() as session:
        session.add(key)
    return key.id, secret


async def make_community(sessions: Sessions) -> Community:
    community_id = f"exp_{uuid.uuid4().hex[:12]}"
    member = await new_account(sessions, community_id, "member", member_user_id="user_member")
    admin = await new_account(sessions, community_id, "admin")
    owner = await new_account(sessions, community_id, "owner")
    _, key = await make_key(sessions, community_id)
    return Community(community_id, member, admin, owner, key)


@pytest.fixture(scope="module")
async def world(
    database_url: str, redis: Redis, bus: EventBus, sessionmaker: Sessions
) -> AsyncIterator[World]:
    addr, billing_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    xp = await build(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    billing = await build_billing(BillingSettings(billing_addr=billing_addr))
    await xp.start()
    await billing.start()
    settings = gateway_settings(addr, billing_addr=billing_addr, **RELAXED_LIMITS)
    own, other = await make_community(sessionmaker), await make_community(sessionmaker)
    async with serve(settings) as client:
        yield World(settings, sessionmaker, client, own, other)
    await billing.stop()
    await xp.stop()


Call = Callable[[World, str, dict[str, str]], Awaitable[httpx.Response]]


def _base(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}"


async def read_leaderboard(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/leaderboard", headers=h)


async def read_member_card(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/members/user_member", headers=h)


async def list_roles(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/roles", headers=h)


async def grant_member(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    target = await new_account(w.sessions)
    return await w.client.put(f"{_base(c)}/roles/{target}", json={"role": "member"}, headers=h)


async def grant_admin(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    target = await new_account(w.sessions)
    return await w.client.put(f"{_base(c)}/roles/{target}", json={"role": "admin"}, headers=h)


async def revoke_member(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    target = await new_account(w.sessions, c, "member")
    return await w.client.delete(f"{_base(c)}/roles/{target}", headers=h)


async def revoke_admin(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    target = await new_account(w.sessions, c, "admin")
    return await w.client.delete(f"{_base(c)}/roles/{target}", headers=h)


async def create_api_key(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.post(
        f"{_base(c)}/api-keys", json={"name": "bot", "scopes": ["xp:read"]}, headers=h
    )


async def list_api_keys(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/api-keys", headers=h)


async def revoke_api_key(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    key_id, _ = await make_key(w.sessions, c)
    return await w.client.delete(f"{_base(c)}/api-keys/{key_id}", headers=h)


async def read_audit_log(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/audit-log", headers=h)


async def read_analytics(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/analytics", headers=h)


async def read_plan(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/plan", headers=h)


async def set_plan(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"plan": "premium", "reason": "access matrix"}
    return await w.client.put(f"{_base(c)}/plan", json=body, headers=h)


async def open_stream(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/stream", headers=h)


async def record_activity(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"kind": "message", "user_id": "user_bot", "idempotency_key": uuid.uuid4().hex}
    return await w.client.post(f"{_base(c)}/activities", json=body, headers=h)


async def award_points(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"user_id": "user_member", "reason": "intro", "idempotency_key": uuid.uuid4().hex}
    return await w.client.post(f"{_base(c)}/points", json=body, headers=h)


async def import_members(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"source": "api", "members": [{"user_id": "user_imported", "xp": 10}]}
    return await w.client.post(f"{_base(c)}/imports", json=body, headers=h)


async def read_member_history(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/members/user_member/history", headers=h)


async def read_xp_config(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    return await w.client.get(f"{_base(c)}/xp-config", headers=h)


async def update_xp_config(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {
        "message": {"min": 10, "max": 10},
        "post": {"min": 5, "max": 9},
        "reaction": {"min": 1, "max": 1},
    }
    return await w.client.put(f"{_base(c)}/xp-config", json=body, headers=h)


async def adjust_xp(w: World, c: str, h: dict[str, str]) -> httpx.Response:
    body = {"delta": 5, "reason": "access matrix", "idempotency_key": uuid.uuid4().hex}
    return await w.client.post(
        f"{_base(c)}/members/user_member/xp-adjustments", json=body, headers=h
    )


ROUTES: dict[str, Call] = {call.__name__: call for call in (
    read_leaderboard, read_member_card, list_roles, grant_member, grant_admin, revoke_member,
    revoke_admin, create_api_key, list_api_keys, revoke_api_key, read_audit_log, record_activity,
    read_analytics, read_plan, set_plan, open_stream,
    award_points, import_members,
    read_member_history, read_xp_config, update_xp_config, adjust_xp,
)}  # fmt: skip


def test_every_route_has_an_expectation_for_every_caller() -> None:
    assert set(OWN) == set(ROUTES)
    assert all(set(row) == set(CALLERS) for row in OWN.values())


def _check(response: httpx.Response, expected: int | str) -> None:
    if expected == OK:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text
    else:
        assert response.status_code == expected, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_caller_in_own_community(world: World, route: str, caller: str) -> None:
    if route == "open_stream" and OWN[route][caller] == OK:
        pytest.skip("a granted stream never ends; tests/gateway/test_stream.py covers it")
    response = await ROUTES[route](world, world.own.id, world.headers(caller))
    _check(response, OWN[route][caller])


@pytest.mark.parametrize("caller", [c for c in CALLERS if c not in ("platform_admin", "stranger")])
@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_caller_in_another_community_is_refused(
    world: World, route: str, caller: str
) -> None:
    """Tenant isolation: the same caller against a community where it has no role."""
    third = f"exp_{uuid.uuid4().hex[:12]}"
    response = await ROUTES[route](world, third, world.headers(caller))
    _check(response, 401 if caller == "anonymous" else 403)
