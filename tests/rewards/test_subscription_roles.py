"""Subscription roles: a member with an active Whop membership of the community holds its
subscription role on the bound Discord server, and loses it when the membership ends. Through
the real xp (memberships as the gateway tells them after `membership.*` webhooks, its outbox
relay and NATS) and the real rewards process (the `xp.membership_changed` consumer and the
role worker), with Discord played by the local stand-in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.rewards.conftest import RealXp, eventually
from tests.support.whop_api import FakeDiscord, serving
from wee5.events.v1 import events_pb2
from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5.xp.v1 import xp_pb2
from wee5_kit.grpc import channel
from wee5_rewards.config import RewardsSettings
from wee5_rewards.models import RoleAssignment
from wee5_rewards.server import build as build_rewards

Sessions = async_sessionmaker[AsyncSession]


def snowflake() -> str:
    return str(10**18 + uuid.uuid4().int % 10**17)


@dataclass
class Stack:
    xp: RealXp
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub
    discord: FakeDiscord
    sessions: Sessions


@dataclass
class Community:
    """A Whop community (experience) of a company, its bound Discord server and its
    subscription role."""

    stack: Stack
    community_id: str
    company_id: str
    guild: str
    role: str

    async def membership(self, user_id: str, *, active: bool, at: datetime) -> None:
        """What the gateway tells xp after a `membership.*` webhook."""
        membership = xp_pb2.Membership(
            company_id=self.company_id,
            user_id=user_id,
            membership_id=f"mem_{user_id}",
            status="active" if active else "canceled",
            active=active,
        )
        membership.updated_at.FromDatetime(at)
        await self.stack.xp.stub.SetMembership(
            xp_pb2.SetMembershipRequest(membership=membership, community_id=self.community_id)
        )

    async def row(self, user_id: str) -> RoleAssignment | None:
        async with self.stack.sessions() as session:
            return await session.scalar(
                select(RoleAssignment).where(
                    RoleAssignment.community_id == self.community_id,
                    RoleAssignment.user_id == user_id,
                )
            )

    async def settled(self, user_id: str, status: str) -> RoleAssignment:
        async def done() -> bool:
            row = await self.row(user_id)
            return row is not None and row.status == status

        await eventually(done)
        row = await self.row(user_id)
        assert row is not None
        return row

    async def consumed(self, user_id: str, events: int) -> None:
        """Waits until rewards handled the `events` membership changes xp published for the
        member in this community."""

        async def handled() -> bool:
            async with self.stack.sessions() as session:
                published = await session.execute(
                    text(
                        "SELECT event_id, payload FROM xp.outbox"
                        " WHERE subject = 'xp.membership_changed'"
                    )
                )
                ids = [
                    event_id
                    for event_id, payload in published
                    if _is_change_of(payload, self.community_id, user_id)
                ]
                done = await session.scalar(
                    text(
                        "SELECT count(*) FROM rewards.processed_events"
                        " WHERE consumer = 'rewards.membership_changed'"
                        " AND event_id = ANY(:ids)"
                    ),
                    {"ids": ids},
                )
            return len(ids) == events and done == events

        await eventually(handled)

    def role_calls(self, member: str) -> list[str]:
        """The methods of the calls giving or taking this member's role."""
        path = f"/api/v10/guilds/{self.guild}/members/{member}/roles/{self.role}"
        return [call.method for call in self.stack.discord.calls if call.path == path]


@pytest.fixture(scope="module")
async def stack(real_xp: RealXp, sessionmaker: Sessions) -> AsyncIterator[Stack]:
    discord = FakeDiscord()
    async with serving(discord, "/api/v10") as discord_url:
        discord.base_url = discord_url
        address = f"127.0.0.1:{free_port()}"
        rewards = await build_rewards(
            RewardsSettings(
                rewards_addr=address,
                xp_addr=real_xp.address,
                discord_api_url=discord_url,
                discord_bot_token=SecretStr(discord.token),
                reward_poll_seconds=0.05,
            )
        )
        await rewards.start()
        rewards_channel = channel(address)
        yield Stack(
            real_xp, rewards_pb2_grpc.RewardsServiceStub(rewards_channel), discord, sessionmaker
        )
        await rewards_channel.close(None)
        await rewards.stop()


@pytest.fixture
async def community(stack: Stack) -> Community:
    """A community whose bound server has the role, set as its subscription role."""
    community = Community(
        stack,
        f"exp_{uuid.uuid4().hex[:12]}",
        f"biz_{uuid.uuid4().hex[:12]}",
        snowflake(),
        snowflake(),
    )
    stack.discord.add_guild(community.guild, community.role)
    await stack.rewards.BindDiscordGuild(
        rewards_pb2.BindDiscordGuildRequest(
            community_id=community.community_id, guild_id=community.guild, bound_by="install:t"
        )
    )
    await stack.rewards.UpdateRewardSettings(
        rewards_pb2.UpdateRewardSettingsRequest(
            community_id=community.community_id,
            discord_guild_id=community.guild,
            discord_subscription_role_id=community.role,
        )
    )
    return community


async def linked_member(stack: Stack) -> tuple[str, str]:
    """A Whop user who linked their Discord account: (Whop user id, Discord user id)."""
    user_id, discord_id = f"user_{uuid.uuid4().hex[:12]}", snowflake()
    await stack.rewards.LinkDiscordAccount(
        rewards_pb2.LinkDiscordAccountRequest(user_id=user_id, discord_user_id=discord_id)
    )
    return user_id, discord_id


async def test_an_activated_membership_gives_the_role_once_even_when_told_twice(
    stack: Stack, community: Community
) -> None:
    user_id, discord_id = await linked_member(stack)
    at = datetime.now(UTC)

    await community.membership(user_id, active=True, at=at)
    await community.membership(user_id, active=True, at=at)  # the webhook delivered again
    await community.consumed(user_id, events=2)
    given = await community.settled(user_id, "assigned")
    await community.membership(user_id, active=True, at=at)  # and once more, after it is given
    await community.consumed(user_id, events=3)

    assert (given.action, given.last_error) == ("add", None)
    assert (community.guild, discord_id, community.role) in stack.discord.roles
    row = await community.row(user_id)
    assert row is not None
    # Not queued again: the row is as the worker left it.
    assert (row.status, row.next_attempt_at) == ("assigned", given.next_attempt_at)
    assert community.role_calls(discord_id) == ["PUT"]


async def test_a_deactivated_membership_takes_the_role(stack: Stack, community: Community) -> None:
    user_id, discord_id = await linked_member(stack)
    started = datetime.now(UTC)
    await community.membership(user_id, active=True, at=started)
    await community.settled(user_id, "assigned")

    await community.membership(user_id, active=False, at=started + timedelta(seconds=1))
    row = await community.settled(user_id, "removed")

    assert row.action == "remove"
    assert (community.guild, discord_id, community.role) not in stack.discord.roles
    assert community.role_calls(discord_id) == ["PUT", "DELETE"]


async def test_an_end_told_before_its_start_leaves_the_role_taken(
    stack: Stack, community: Community
) -> None:
    user_id, discord_id = await linked_member(stack)
    started = datetime.now(UTC)

    await community.membership(user_id, active=False, at=started + timedelta(seconds=1))
    await community.settled(user_id, "removed")
    # The activation arrives late: xp keeps the newer end, nothing gives the role back.
    await community.membership(user_id, active=True, at=started)
    row = await community.settled(user_id, "removed")

    assert (community.guild, discord_id, community.role) not in stack.discord.roles
    assert "PUT" not in community.role_calls(discord_id)
    assert row.action == "remove"


async def test_a_member_without_a_linked_discord_account_waits_and_gets_it_once_linked(
    stack: Stack, community: Community
) -> None:
    user_id = f"user_{uuid.uuid4().hex[:12]}"

    await community.membership(user_id, active=True, at=datetime.now(UTC))
    row = await community.settled(user_id, "waiting")

    assert row.last_error == (
        f"member {user_id} has linked no Discord account "
        "(POST /api/v1/communities/{community_id}/members/me/discord-link); "
        "the role follows once they do"
    )
    assert not [call for call in stack.discord.calls if user_id in call.path]
    assert not any(role[0] == community.guild for role in stack.discord.roles)

    discord_id = snowflake()
    linked = await stack.rewards.LinkDiscordAccount(
        rewards_pb2.LinkDiscordAccountRequest(user_id=user_id, discord_user_id=discord_id)
    )
    await community.settled(user_id, "assigned")

    assert linked.roles_resumed == 1
    assert community.role_calls(discord_id) == ["PUT"]


async def test_a_subscription_role_not_of_the_server_is_dead_with_the_reason(
    stack: Stack, community: Community
) -> None:
    other_role = snowflake()  # a role of another server
    await stack.rewards.UpdateRewardSettings(
        rewards_pb2.UpdateRewardSettingsRequest(
            community_id=community.community_id,
            discord_guild_id=community.guild,
            discord_subscription_role_id=other_role,
        )
    )
    user_id, discord_id = await linked_member(stack)

    await community.membership(user_id, active=True, at=datetime.now(UTC))
    row = await community.settled(user_id, "dead")

    assert row.last_error == (
        f"role {other_role} is not a role of the community's Discord guild {community.guild}"
    )
    assert not [call for call in stack.discord.calls if discord_id in call.path]


async def test_without_a_subscription_role_a_membership_queues_nothing(
    stack: Stack, community: Community
) -> None:
    await stack.rewards.UpdateRewardSettings(
        rewards_pb2.UpdateRewardSettingsRequest(
            community_id=community.community_id, discord_guild_id=community.guild
        )
    )
    user_id, discord_id = await linked_member(stack)
    await community.membership(user_id, active=True, at=datetime.now(UTC))
    await community.consumed(user_id, events=1)

    assert await community.row(user_id) is None
    assert community.role_calls(discord_id) == []


def _is_change_of(payload: bytes, community_id: str, user_id: str) -> bool:
    event = events_pb2.MembershipChanged.FromString(payload)
    return (event.meta.community_id, event.user_id) == (community_id, user_id)
