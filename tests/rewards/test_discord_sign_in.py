"""Sign in with Discord for the pages outside Whop, through the real gateway and rewards with
Discord played by the local stand-in: the user's roles follow their servers bound to
communities (owner or Manage Server: admin; otherwise a linked member), are worked out anew at
each sign-in, and a state not started in this browser, unknown or used is refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.rewards.conftest import RealXp
from tests.support.gateway import (
    bearer,
    gateway_settings,
    late_access_announcements,
    new_account,
    serve,
)
from tests.support.whop_api import FakeDiscord, serving
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import ACCESS_COOKIE
from wee5_gateway.db.repository import make_platform_admin
from wee5_kit.events import EventBus
from wee5_rewards.config import RewardsSettings
from wee5_rewards.server import build as build_rewards

Sessions = async_sessionmaker[AsyncSession]
MANAGE_GUILD = 1 << 5
START = "/app/sign-in/discord"
CALLBACK = "/app/sign-in/discord/callback"
STATE_COOKIE = "wee5_discord_state"


@dataclass
class Stack:
    client: httpx.AsyncClient
    settings: GatewaySettings
    sessions: Sessions
    discord: FakeDiscord
    operator: dict[str, str]

    async def bound_community(self) -> tuple[str, str]:
        """A community with a Discord server bound to it (by a platform admin)."""
        community_id, guild = f"exp_{uuid.uuid4().hex[:12]}", snowflake()
        bound = await self.client.put(
            f"/api/v1/communities/{community_id}/discord-guild",
            json={"guild_id": guild},
            headers=self.operator,
        )
        assert bound.status_code == 200, bound.text
        return community_id, guild

    async def start(self, next_path: str = "/app/") -> str:
        self.client.cookies.clear()
        started = await self.client.get(START, params={"next": next_path})
        assert started.status_code == 302, started.text
        url = urlsplit(started.headers["location"])
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        assert query["client_id"] == self.discord.client_id
        assert query["scope"] == "identify guilds"
        assert query["response_type"] == "code"
        assert query["redirect_uri"] == self.settings.public_url.rstrip("/") + CALLBACK
        assert started.cookies[STATE_COOKIE] == query["state"]
        self.client.cookies.clear()
        return str(query["state"])

    async def callback(self, code: str, state: str, browser_state: str | None) -> httpx.Response:
        headers = {"Cookie": f"{STATE_COOKIE}={browser_state}"} if browser_state else {}
        answer = await self.client.get(
            CALLBACK, params={"code": code, "state": state}, headers=headers
        )
        self.client.cookies.clear()
        return answer

    async def sign_in(self, user_id: str, guilds: list[dict[str, Any]]) -> str:
        """Signs the Discord user in; their access token (the session cookie's value)."""
        state = await self.start()
        code = self.discord.sign_in(user_id, self.redirect, guilds, name="Ada")
        answer = await self.callback(code, state, state)
        assert answer.status_code == 200, answer.text
        assert 'url=/app/"' in answer.text
        return str(answer.cookies[ACCESS_COOKIE])

    @property
    def redirect(self) -> str:
        return self.settings.public_url.rstrip("/") + CALLBACK

    async def status(self, path: str, token: str) -> int:
        answer = await self.client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code < 500, answer.text
        return answer.status_code


def guild(guild_id: str, *, owner: bool = False, permissions: int = 0) -> dict[str, Any]:
    return {
        "id": guild_id,
        "name": "Test server",
        "icon": None,
        "owner": owner,
        "permissions": str(permissions),
        "features": [],
    }


def snowflake() -> str:
    return str(10**18 + uuid.uuid4().int % 10**17)


def admin_route(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}/reward-rules"


def member_route(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}/members/me/reward-standing"


@pytest.fixture(scope="module")
async def stack(
    real_xp: RealXp, database_url: str, redis: Redis, bus: EventBus, sessionmaker: Sessions
) -> AsyncIterator[Stack]:
    rewards_addr = f"127.0.0.1:{free_port()}"
    rewards = await build_rewards(
        RewardsSettings(rewards_addr=rewards_addr, xp_addr=real_xp.address, rewards_workers=False)
    )
    await rewards.start()
    discord = FakeDiscord()
    operator_id = await new_account(sessionmaker)
    async with sessionmaker.begin() as session:
        await make_platform_admin(await session.connection(), operator_id)
    async with serving(discord, "/api/v10") as discord_url:
        settings = gateway_settings(
            real_xp.address,
            rewards_addr=rewards_addr,
            discord_client_id=discord.client_id,
            discord_client_secret=SecretStr(discord.client_secret),
            discord_api_url=discord_url,
        )
        async with serve(settings) as client:
            operator = bearer(settings, operator_id, platform_admin=True)
            yield Stack(client, settings, sessionmaker, discord, operator)
    await rewards.stop()


async def test_a_server_owner_signs_in_as_admin_of_its_community(stack: Stack) -> None:
    community_id, guild_id = await stack.bound_community()

    token = await stack.sign_in(snowflake(), [guild(guild_id, owner=True)])

    assert await stack.status(admin_route(community_id), token) == 200
    # The session cookie opens the pages outside Whop, which link to the community's dashboard.
    home = await stack.client.get("/app/", headers={"Cookie": f"{ACCESS_COOKIE}={token}"})
    assert home.status_code == 200, home.text
    assert f"/app/dashboard/{community_id}" in home.text
    me = await stack.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    roles = {role["community_id"]: role["role"] for role in me.json()["roles"]}
    assert roles == {community_id: "admin"}


async def test_manage_server_makes_an_admin_and_a_plain_member_a_linked_member(
    stack: Stack,
) -> None:
    community_id, guild_id = await stack.bound_community()
    user_id = snowflake()

    manager = await stack.sign_in(snowflake(), [guild(guild_id, permissions=MANAGE_GUILD)])
    member = await stack.sign_in(user_id, [guild(guild_id, permissions=1 << 10)])

    assert await stack.status(admin_route(community_id), manager) == 200
    assert await stack.status(admin_route(community_id), member) == 403
    assert await stack.status(member_route(community_id), member) == 200
    me = await stack.client.get("/api/v1/me", headers={"Authorization": f"Bearer {member}"})
    assert [(r["role"], r["member_user_id"]) for r in me.json()["roles"]] == [("member", user_id)]


async def test_a_server_bound_to_no_community_gives_no_role(stack: Stack) -> None:
    token = await stack.sign_in(snowflake(), [guild(snowflake(), owner=True)])

    me = await stack.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["roles"] == []


async def test_losing_manage_server_drops_admin_at_the_next_sign_in(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process that signed the user in knows at once, before Postgres's announcement.
    late_access_announcements(monkeypatch)
    community_id, guild_id = await stack.bound_community()
    user_id = snowflake()
    first = await stack.sign_in(user_id, [guild(guild_id, permissions=MANAGE_GUILD)])
    assert await stack.status(admin_route(community_id), first) == 200

    second = await stack.sign_in(user_id, [guild(guild_id, permissions=0)])

    assert await stack.status(admin_route(community_id), second) == 403
    assert await stack.status(member_route(community_id), second) == 200
    # The same account both times: one per Discord user.
    ids = set()
    for token in (first, second):
        me = await stack.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        ids.add(me.json()["account"]["id"])
    assert len(ids) == 1

    # Leaving the server drops the role altogether.
    third = await stack.sign_in(user_id, [])
    assert await stack.status(member_route(community_id), third) == 403


async def test_a_bad_or_reused_state_is_refused(stack: Stack) -> None:
    user_id = snowflake()
    state = await stack.start()
    code = stack.discord.sign_in(user_id, stack.redirect, [])

    not_this_browser = await stack.callback(code, state, None)
    other_browser = await stack.callback(code, state, "x" * 43)
    unknown = await stack.callback(code, "y" * 43, "y" * 43)
    too_long = await stack.callback(code, "z" * 500, "z" * 500)
    used = await stack.callback(code, state, state)
    reused = await stack.callback(code, state, state)

    assert used.status_code == 200, used.text
    for refused in (not_this_browser, other_browser, unknown, too_long, reused):
        assert refused.status_code == 400, refused.text
        assert ACCESS_COOKIE not in refused.cookies


async def test_a_code_discord_does_not_know_is_refused(stack: Stack) -> None:
    state = await stack.start()

    answer = await stack.callback("not-a-code", state, state)

    assert answer.status_code == 400, answer.text
    assert ACCESS_COOKIE not in answer.cookies


async def test_the_sign_in_page_offers_discord_only_when_configured(stack: Stack) -> None:
    page = await stack.client.get("/app/sign-in")
    assert page.status_code == 200
    assert "Sign in with Discord" in page.text
    assert 'href="/app/sign-in/discord?next=%2Fapp%2F"' in page.text


async def test_without_a_client_id_discord_sign_in_is_hidden_and_off(real_xp: RealXp) -> None:
    async with serve(gateway_settings(real_xp.address)) as client:
        page = await client.get("/app/sign-in")
        start = await client.get(START)

    assert page.status_code == 200
    assert "Sign in with Discord" not in page.text
    assert start.status_code == 503, start.text
    assert STATE_COOKIE not in start.cookies
