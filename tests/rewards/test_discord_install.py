"""Binding a Discord server to a community through the real gateway and rewards, with Discord's
OAuth2 install flow played by the local stand-in: only an installer who may manage the server
binds it, a server belongs to one community, the reward settings cannot bind one, and every
binding is audited."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.rewards.conftest import RealXp
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from tests.support.whop_api import FakeDiscord, serving
from wee5_gateway.config import GatewaySettings
from wee5_gateway.db.models import AuditEntry
from wee5_gateway.db.repository import make_platform_admin
from wee5_kit.events import EventBus
from wee5_rewards.config import RewardsSettings
from wee5_rewards.server import build as build_rewards

Sessions = async_sessionmaker[AsyncSession]
MANAGE_GUILD = 1 << 5
MANAGE_ROLES = 1 << 28
CALLBACK = "/api/v1/discord/install/callback"


@dataclass
class Stack:
    client: httpx.AsyncClient
    settings: GatewaySettings
    sessions: Sessions
    discord: FakeDiscord

    async def community(self) -> tuple[str, uuid.UUID, dict[str, str]]:
        community_id = f"exp_{uuid.uuid4().hex[:12]}"
        admin = await new_account(self.sessions, community_id, "admin")
        return community_id, admin, bearer(self.settings, admin)

    async def start_install(self, community_id: str, headers: dict[str, str]) -> str:
        started = await self.client.post(
            f"/api/v1/communities/{community_id}/discord-guild/install", headers=headers
        )
        assert started.status_code == 201, started.text
        url = urlsplit(started.json()["authorize_url"])
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        assert query["client_id"] == self.discord.client_id
        assert query["scope"] == "bot applications.commands guilds"
        assert query["response_type"] == "code"
        assert query["redirect_uri"] == self.settings.public_url.rstrip("/") + CALLBACK
        return str(query["state"])

    async def finish_install(self, code: str, state: str, guild_id: str) -> httpx.Response:
        return await self.client.get(
            CALLBACK,
            params={"code": code, "state": state, "guild_id": guild_id, "permissions": "0"},
        )

    def install(self, guild_id: str, *, permissions: int, owner: bool = False) -> str:
        redirect = self.settings.public_url.rstrip("/") + CALLBACK
        return self.discord.install(guild_id, redirect, permissions=permissions, owner=owner)

    async def settings_of(self, community_id: str, headers: dict[str, str]) -> dict[str, object]:
        read = await self.client.get(
            f"/api/v1/communities/{community_id}/reward-settings", headers=headers
        )
        assert read.status_code == 200, read.text
        body: dict[str, object] = read.json()
        return body

    async def audit(self, community_id: str) -> list[tuple[str, str | None]]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(AuditEntry.action, AuditEntry.status)
                .where(AuditEntry.community_id == community_id)
                .order_by(AuditEntry.id)
            )
            return [(row.action, row.status) for row in rows]


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
    async with serving(discord, "/api/v10") as discord_url:
        settings = gateway_settings(
            real_xp.address,
            rewards_addr=rewards_addr,
            discord_client_id=discord.client_id,
            discord_client_secret=SecretStr(discord.client_secret),
            discord_api_url=discord_url,
        )
        async with serve(settings) as client:
            yield Stack(client, settings, sessionmaker, discord)
    await rewards.stop()


def snowflake() -> str:
    return str(10**18 + uuid.uuid4().int % 10**17)


async def test_an_admin_cannot_point_the_reward_settings_at_another_server(stack: Stack) -> None:
    community_id, _, admin = await stack.community()
    path = f"/api/v1/communities/{community_id}/reward-settings"

    put = await stack.client.put(
        path, json={"level_up_template": "gg", "discord_guild_id": snowflake()}, headers=admin
    )
    patch = await stack.client.patch(path, json={"discord_guild_id": snowflake()}, headers=admin)

    for refused in (put, patch):
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "discord-guild/install" in refused.json()["detail"]
    assert (await stack.settings_of(community_id, admin))["discord_guild_id"] is None


async def test_installing_the_bot_binds_the_server_its_installer_manages(stack: Stack) -> None:
    community_id, admin_id, admin = await stack.community()
    guild = snowflake()
    state = await stack.start_install(community_id, admin)
    code = stack.install(guild, permissions=MANAGE_GUILD | MANAGE_ROLES)

    finished = await stack.finish_install(code, state, guild)

    assert finished.status_code == 200, finished.text
    assert finished.json() == {
        "community_id": community_id,
        "discord_guild_id": guild,
        "bound_by": f"install:{admin_id}",
    }
    assert (await stack.settings_of(community_id, admin))["discord_guild_id"] == guild
    assert await stack.audit(community_id) == [("discord_guild.bound", "done")]
    # The template can change and the bound guild stays (PATCH repeats it, PUT leaves it out).
    path = f"/api/v1/communities/{community_id}/reward-settings"
    patched = await stack.client.patch(path, json={"level_up_template": "gg"}, headers=admin)
    put = await stack.client.put(path, json={"level_up_template": "gg {member}"}, headers=admin)
    assert (patched.status_code, patched.json()["discord_guild_id"]) == (200, guild)
    assert (put.status_code, put.json()["discord_guild_id"]) == (200, guild)
    # The link works once.
    again = await stack.finish_install(stack.install(guild, permissions=MANAGE_GUILD), state, guild)
    assert again.status_code == 400
    assert again.json()["type"].endswith("invalid-discord-install")


async def test_an_installer_who_cannot_manage_the_server_binds_nothing(stack: Stack) -> None:
    community_id, _, admin = await stack.community()
    guild = snowflake()
    state = await stack.start_install(community_id, admin)
    code = stack.install(guild, permissions=MANAGE_ROLES)  # no Manage Server, not the owner

    finished = await stack.finish_install(code, state, guild)

    assert finished.status_code == 403, finished.text
    assert "Manage Server" in finished.json()["detail"]
    assert (await stack.settings_of(community_id, admin))["discord_guild_id"] is None


async def test_the_owner_of_the_server_may_bind_it(stack: Stack) -> None:
    community_id, _, admin = await stack.community()
    guild = snowflake()
    state = await stack.start_install(community_id, admin)

    finished = await stack.finish_install(
        stack.install(guild, permissions=0, owner=True), state, guild
    )

    assert finished.status_code == 200, finished.text


async def test_a_redirect_naming_another_server_binds_nothing(stack: Stack) -> None:
    community_id, _, admin = await stack.community()
    mine, victim = snowflake(), snowflake()
    state = await stack.start_install(community_id, admin)
    code = stack.install(mine, permissions=MANAGE_GUILD)  # the bot went to the attacker's server

    finished = await stack.finish_install(code, state, victim)  # the URL names the victim's

    assert finished.status_code == 400, finished.text
    assert (await stack.settings_of(community_id, admin))["discord_guild_id"] is None


async def test_a_forged_code_or_state_binds_nothing(stack: Stack) -> None:
    community_id, _, admin = await stack.community()
    guild = snowflake()
    state = await stack.start_install(community_id, admin)

    forged_code = await stack.finish_install("not-a-code", state, guild)
    fresh = await stack.start_install(community_id, admin)
    forged_state = await stack.finish_install(
        stack.install(guild, permissions=MANAGE_GUILD), "made-up", guild
    )
    bad_guild = await stack.finish_install("x", fresh, "123?x=")

    assert forged_code.status_code == 400, forged_code.text
    assert forged_state.status_code == 400, forged_state.text
    assert bad_guild.status_code == 400, bad_guild.text
    assert (await stack.settings_of(community_id, admin))["discord_guild_id"] is None


async def test_a_server_belongs_to_one_community(stack: Stack) -> None:
    first, _, first_admin = await stack.community()
    second, _, second_admin = await stack.community()
    guild = snowflake()
    state = await stack.start_install(first, first_admin)
    assert (
        await stack.finish_install(stack.install(guild, permissions=MANAGE_GUILD), state, guild)
    ).status_code == 200

    state = await stack.start_install(second, second_admin)
    taken = await stack.finish_install(stack.install(guild, permissions=MANAGE_GUILD), state, guild)
    by_operator = await stack.client.put(
        f"/api/v1/communities/{second}/discord-guild",
        json={"guild_id": guild},
        headers=bearer(stack.settings, platform_admin=True),
    )

    assert taken.status_code == 409, taken.text
    assert by_operator.status_code == 409, by_operator.text
    assert (await stack.settings_of(second, second_admin))["discord_guild_id"] is None


async def test_only_a_platform_admin_binds_a_server_without_the_install(stack: Stack) -> None:
    community_id, _, admin = await stack.community()
    guild = snowflake()
    path = f"/api/v1/communities/{community_id}/discord-guild"
    operator = await new_account(stack.sessions)
    async with stack.sessions.begin() as session:
        await make_platform_admin(await session.connection(), operator)

    by_admin = await stack.client.put(path, json={"guild_id": guild}, headers=admin)
    by_operator = await stack.client.put(
        path,
        json={"guild_id": guild},
        headers=bearer(stack.settings, operator, platform_admin=True),
    )
    unbound = await stack.client.delete(path, headers=admin)

    assert by_admin.status_code == 403, by_admin.text
    assert by_operator.status_code == 200, by_operator.text
    assert by_operator.json()["bound_by"] == f"platform_admin:{operator}"
    assert unbound.status_code == 200, unbound.text
    assert unbound.json()["discord_guild_id"] is None
    assert await stack.audit(community_id) == [
        ("discord_guild.bound", "done"),
        ("discord_guild.unbound", "done"),
    ]


async def test_the_install_is_refused_clearly_when_discord_is_not_configured(
    stack: Stack,
) -> None:
    community_id, _, admin = await stack.community()
    settings = stack.settings.model_copy(update={"discord_client_id": None})
    async with serve(settings) as client:
        started = await client.post(
            f"/api/v1/communities/{community_id}/discord-guild/install", headers=admin
        )

    assert started.status_code == 503
    assert "WEE5_DISCORD_CLIENT_ID" in started.json()["detail"]
