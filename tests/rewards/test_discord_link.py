"""A Whop member links their Discord account, then their Whop membership gives and takes the
community's subscription role in its Discord server: through the real gateway (Whop sign-in,
the link flow, Whop webhooks), xp, NATS and rewards (consumer and role worker), with Whop and
Discord played by the local stand-ins."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.rewards.conftest import RealXp, eventually
from tests.support.gateway import SECRET, bearer, gateway_settings, new_account, serve
from tests.support.whop import chat_message_created, membership_event, new_id, sign_standard
from tests.support.whop_api import FakeDiscord, FakeWhop, serving
from tests.support.whop_tokens import APP_ID, WhopSigningKey, whop_user
from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5_gateway.config import GatewaySettings
from wee5_kit.grpc import channel
from wee5_rewards.config import RewardsSettings
from wee5_rewards.server import build as build_rewards

Sessions = async_sessionmaker[AsyncSession]
CALLBACK = "/api/v1/discord/link/callback"


@dataclass
class World:
    client: httpx.AsyncClient
    settings: GatewaySettings
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub
    whop: FakeWhop
    discord: FakeDiscord
    signing_key: WhopSigningKey
    sessions: Sessions

    async def community(self) -> Community:
        """A Whop experience with a bound Discord server and a subscription role."""
        company = new_id("biz")
        community = Community(self, self.whop.add_experience(company), company, snowflake())
        self.discord.add_guild(community.guild, community.role)
        await self.rewards.BindDiscordGuild(
            rewards_pb2.BindDiscordGuildRequest(
                community_id=community.id, guild_id=community.guild, bound_by="install:t"
            )
        )
        await self.rewards.UpdateRewardSettings(
            rewards_pb2.UpdateRewardSettingsRequest(
                community_id=community.id,
                discord_guild_id=community.guild,
                discord_subscription_role_id=community.role,
            )
        )
        # xp learns the experience's company from a webhook that names both.
        await self.webhook(chat_message_created(community.id, new_id("user"), company_id=company))
        return community

    def customer(self, community: Community) -> tuple[str, dict[str, str]]:
        """A Whop user with access to the experience, and their iframe token."""
        user_id = new_id("user")
        self.whop.access_levels[(user_id, community.id)] = "customer"
        return user_id, whop_user(self.signing_key.token(user_id))

    async def start_link(self, community: Community, headers: dict[str, str]) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/communities/{community.id}/members/me/discord-link", headers=headers
        )

    async def link(self, community: Community, headers: dict[str, str], discord_id: str) -> Any:
        started = await self.start_link(community, headers)
        assert started.status_code == 201, started.text
        query = parse_qs(urlsplit(started.json()["authorize_url"]).query)
        assert query["scope"] == ["identify"]
        redirect = self.settings.public_url.rstrip("/") + CALLBACK
        assert query["redirect_uri"] == [redirect]
        code = self.discord.sign_in(discord_id, redirect, [], name="Ada")
        linked = await self.client.get(CALLBACK, params={"code": code, "state": query["state"][0]})
        assert linked.status_code == 200, linked.text
        return linked.json()

    async def webhook(self, envelope: dict[str, Any]) -> httpx.Response:
        body = json.dumps(envelope).encode()
        headers = sign_standard(SECRET, body, envelope["id"])
        answer = await self.client.post("/webhooks/whop", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer


@dataclass
class Community:
    world: World
    id: str
    company: str
    guild: str
    role: str = ""

    def __post_init__(self) -> None:
        self.role = self.role or snowflake()

    def role_calls(self, discord_id: str) -> list[str]:
        path = f"/api/v10/guilds/{self.guild}/members/{discord_id}/roles/{self.role}"
        return [call.method for call in self.world.discord.calls if call.path == path]


def snowflake() -> str:
    return str(10**18 + uuid.uuid4().int % 10**17)


@pytest.fixture(scope="module")
async def world(real_xp: RealXp, sessionmaker: Sessions) -> AsyncIterator[World]:
    signing_key = WhopSigningKey()
    whop, discord = FakeWhop(), FakeDiscord()
    whop.jwks = {"keys": [signing_key.jwk()]}
    async with serving(whop, "") as whop_url, serving(discord, "/api/v10") as discord_url:
        whop.base_url, discord.base_url = whop_url, discord_url
        rewards_addr = f"127.0.0.1:{free_port()}"
        rewards = await build_rewards(
            RewardsSettings(
                rewards_addr=rewards_addr,
                xp_addr=real_xp.address,
                discord_api_url=discord_url,
                discord_bot_token=SecretStr(discord.token),
                reward_poll_seconds=0.05,
            )
        )
        await rewards.start()
        settings = gateway_settings(
            real_xp.address,
            rewards_addr=rewards_addr,
            whop_app_id=APP_ID,
            whop_jwks_url=f"{whop_url}/.well-known/jwks.json",
            whop_api_url=f"{whop_url}/api/v1",
            whop_api_key=whop.api_key,
            public_url="https://wee5.example.test",
            discord_client_id=discord.client_id,
            discord_client_secret=SecretStr(discord.client_secret),
            discord_api_url=discord_url,
        )
        async with serve(settings) as client, channel(rewards_addr) as rewards_channel:
            yield World(
                client,
                settings,
                rewards_pb2_grpc.RewardsServiceStub(rewards_channel),
                whop,
                discord,
                signing_key,
                sessionmaker,
            )
        await rewards.stop()


async def test_a_linked_member_gets_the_role_once_from_a_webhook_sent_twice_and_loses_it(
    world: World,
) -> None:
    community = await world.community()
    user_id, headers = world.customer(community)
    discord_id = snowflake()
    linked = await world.link(community, headers, discord_id)
    assert linked == {
        "community_id": community.id,
        "user_id": user_id,
        "discord_user_id": discord_id,
        "roles_resumed": 0,
    }
    now = datetime.now(UTC)
    activated = membership_event("membership.activated", user_id, community.company, at=now)

    first = await world.webhook(activated)
    again = await world.webhook(activated)  # Whop delivers it again
    await eventually(lambda: _holds(community, discord_id))

    assert (first.json(), again.json()) == ({"status": "recorded"}, {"status": "duplicate"})
    assert community.role_calls(discord_id) == ["PUT"]

    ended = membership_event(
        "membership.deactivated",
        user_id,
        community.company,
        status="canceled",
        at=now + timedelta(seconds=1),
    )
    await world.webhook(ended)
    await eventually(lambda: _lost(community, discord_id))

    assert community.role_calls(discord_id) == ["PUT", "DELETE"]


async def test_admins_see_why_a_members_role_waits_until_they_link_discord(world: World) -> None:
    community = await world.community()
    user_id, headers = world.customer(community)
    admin_id = new_id("user")
    world.whop.access_levels[(admin_id, community.id)] = "admin"
    admin = whop_user(world.signing_key.token(admin_id))
    activated = membership_event("membership.activated", user_id, community.company)
    await world.webhook(activated)

    async def roles() -> list[dict[str, Any]]:
        answer = await world.client.get(
            f"/api/v1/communities/{community.id}/discord-roles",
            params={"user_id": user_id},
            headers=admin,
        )
        assert answer.status_code == 200, answer.text
        listed: list[dict[str, Any]] = answer.json()
        return listed

    async def in_status(status: str) -> bool:
        return [row["status"] for row in await roles()] == [status]

    await eventually(lambda: in_status("waiting"))
    (waiting,) = await roles()
    assert (waiting["role_id"], waiting["source"], waiting["action"]) == (
        community.role,
        "subscription",
        "add",
    )
    assert f"member {user_id} has linked no Discord account" in waiting["last_error"]
    assert not any(role[0] == community.guild for role in world.discord.roles)
    refused = await world.client.get(
        f"/api/v1/communities/{community.id}/discord-roles", headers=headers
    )
    assert refused.status_code == 403  # a member does not read the community's roles

    discord_id = snowflake()
    linked = await world.link(community, headers, discord_id)
    await eventually(lambda: in_status("assigned"))

    assert linked["roles_resumed"] == 1
    assert (await roles())[0]["last_error"] is None
    assert community.role_calls(discord_id) == ["PUT"]


async def test_a_link_works_once_and_only_for_a_whop_member(world: World) -> None:
    community = await world.community()
    _, headers = world.customer(community)
    started = await world.start_link(community, headers)
    state = parse_qs(urlsplit(started.json()["authorize_url"]).query)["state"][0]
    redirect = world.settings.public_url.rstrip("/") + CALLBACK
    first = world.discord.sign_in(snowflake(), redirect, [])
    assert (await world.client.get(CALLBACK, params={"code": first, "state": state})).is_success

    second = world.discord.sign_in(snowflake(), redirect, [])
    reused = await world.client.get(CALLBACK, params={"code": second, "state": state})
    account = bearer(world.settings, await new_account(world.sessions, community.id, "member"))
    not_whop = await world.start_link(community, account)
    stranger = whop_user(world.signing_key.token(new_id("user")))  # no access to the experience

    assert reused.status_code == 400
    assert reused.json()["type"].endswith("/invalid-discord-link")
    assert not_whop.status_code == 409
    assert (await world.start_link(community, stranger)).status_code == 403


async def _holds(community: Community, discord_id: str) -> bool:
    return (community.guild, discord_id, community.role) in community.world.discord.roles


async def _lost(community: Community, discord_id: str) -> bool:
    return "DELETE" in community.role_calls(discord_id) and not await _holds(community, discord_id)
