"""A Discord guild belongs to one community, bound only with proof; the role worker gives only
roles of that guild, only to Discord user ids; every id the Discord and Whop clients put in a
path arrives percent-encoded. Against real Postgres and the local Discord and Whop stand-ins."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.rewards.conftest import RealXp
from tests.support.whop_api import FakeDiscord, FakeWhop
from wee5.events.v1 import events_pb2
from wee5_kit.discord_rest import DiscordClient, DiscordRejected
from wee5_kit.events import new_meta
from wee5_rewards.errors import GuildBoundElsewhere, GuildNeedsProof
from wee5_rewards.models import RoleAssignment
from wee5_rewards.repository import RoleRepository
from wee5_rewards.roles import RoleDelivery, RolePolicy
from wee5_rewards.service import RewardRule, RewardsService
from wee5_rewards.whop import WhopClient, WhopRejected

Sessions = async_sessionmaker[AsyncSession]


def snowflake() -> str:
    return str(10**18 + uuid.uuid4().int % 10**17)


@pytest.fixture
def service(real_xp: RealXp) -> RewardsService:
    return RewardsService(xp=real_xp.stub)


async def bind(sessionmaker: Sessions, service: RewardsService, community: str, guild: str) -> None:
    async with sessionmaker.begin() as session:
        await service.bind_guild(session, community, guild_id=guild, bound_by="install:test")


async def queue_role(
    sessionmaker: Sessions, service: RewardsService, community: str, user: str, role: str
) -> None:
    async with sessionmaker.begin() as session:
        await service.upsert_rule(
            session, community, RewardRule(level=2, kind="role", role_id=role)
        )
    event = events_pb2.LevelUp(meta=new_meta(community), user_id=user, from_level=1, to_level=2)
    async with sessionmaker.begin() as session:
        await service.record_level_up(session, event)


async def deliver(sessionmaker: Sessions, discord: FakeDiscord, community: str) -> RoleAssignment:
    client = DiscordClient(discord.base_url, discord.token, timeout=2.0)
    try:
        await RoleDelivery(sessionmaker, client, RolePolicy()).deliver_due()
    finally:
        await client.close()
    async with sessionmaker() as session:
        row = await session.scalar(
            select(RoleAssignment).where(RoleAssignment.community_id == community)
        )
    assert row is not None
    return row


async def test_the_reward_settings_cannot_point_the_community_at_another_guild(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    victim = snowflake()

    with pytest.raises(GuildNeedsProof) as refused:
        async with sessionmaker.begin() as session:
            await service.update_settings(
                session, community_id, template="gg {member}", guild_id=victim
            )

    assert "discord-guild/install" in str(refused.value)
    async with sessionmaker() as session:
        assert await RoleRepository(session).guild_of(community_id) is None


async def test_a_guild_is_bound_to_one_community_only(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    guild = snowflake()
    await bind(sessionmaker, service, community_id, guild)

    with pytest.raises(GuildBoundElsewhere):
        await bind(sessionmaker, service, f"exp_{uuid.uuid4().hex[:12]}", guild)
    # The community's own template changes keep its guild (the same id may be repeated).
    async with sessionmaker.begin() as session:
        kept = await service.update_settings(
            session, community_id, template="gg {member}", guild_id=guild
        )

    assert (kept.discord_guild_id, kept.discord_guild_bound_by) == (guild, "install:test")


async def test_a_guild_bound_elsewhere_is_no_longer_the_implicit_guild_of_its_namesake(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    guild = snowflake()  # a community whose id is a guild id uses that guild ...
    async with sessionmaker() as session:
        assert await RoleRepository(session).guild_of(guild) == guild

    await bind(sessionmaker, service, community_id, guild)  # ... until it is proven elsewhere

    async with sessionmaker() as session:
        assert await RoleRepository(session).guild_of(guild) is None
        assert await RoleRepository(session).guild_of(community_id) == guild


async def test_a_role_of_another_guild_is_refused_and_never_sent(
    sessionmaker: Sessions, service: RewardsService, discord: FakeDiscord, community_id: str
) -> None:
    own, other = snowflake(), snowflake()
    discord.add_guild(own, "1300000000000000001")
    discord.add_guild(other, "1300000000000000666")  # a role the community does not own
    await bind(sessionmaker, service, community_id, own)
    await queue_role(sessionmaker, service, community_id, snowflake(), "1300000000000000666")

    row = await deliver(sessionmaker, discord, community_id)

    assert row.status == "dead"
    assert row.last_error == (
        f"role 1300000000000000666 is not a role of the community's Discord guild {own}"
    )
    assert discord.roles == set()
    assert [call.method for call in discord.calls] == ["GET"]  # the roles, nothing else


async def test_a_role_of_the_bound_guild_is_given(
    sessionmaker: Sessions, service: RewardsService, discord: FakeDiscord, community_id: str
) -> None:
    guild, member = snowflake(), snowflake()
    discord.add_guild(guild, "1300000000000000001")
    await bind(sessionmaker, service, community_id, guild)
    await queue_role(sessionmaker, service, community_id, member, "1300000000000000001")

    row = await deliver(sessionmaker, discord, community_id)

    assert (row.status, row.last_error) == ("assigned", None)
    assert discord.roles == {(guild, member, "1300000000000000001")}


# (A Whop user id waits for a linked Discord account: test_subscription_roles.)
@pytest.mark.parametrize("member", ["123?x=", "..", "user_a/b", "12345"])
async def test_a_member_id_that_is_not_a_discord_user_id_is_never_sent(
    sessionmaker: Sessions,
    service: RewardsService,
    discord: FakeDiscord,
    community_id: str,
    member: str,
) -> None:
    guild = snowflake()
    discord.add_guild(guild, "1300000000000000001")
    await bind(sessionmaker, service, community_id, guild)
    await queue_role(sessionmaker, service, community_id, member, "1300000000000000001")

    row = await deliver(sessionmaker, discord, community_id)

    assert row.status == "dead"
    assert row.last_error == f"member {member!r} has no Discord user id (a snowflake)"
    assert discord.calls == []


async def test_discord_ids_arrive_as_one_encoded_path_segment_each(
    discord: FakeDiscord,
) -> None:
    client = DiscordClient(discord.base_url, discord.token, timeout=2.0)
    try:
        await client.add_role("1000000000000000001", "123?x=", "..")
        with pytest.raises(DiscordRejected):  # no such member: one segment, not two
            await client.add_role("1000000000000000001", "a/b", "1300000000000000001")
    finally:
        await client.close()

    assert [call.raw_path for call in discord.calls] == [
        "/api/v10/guilds/1000000000000000001/members/123%3Fx%3D/roles/%2E%2E",
        "/api/v10/guilds/1000000000000000001/members/a%2Fb/roles/1300000000000000001",
    ]


async def test_whop_membership_ids_arrive_as_one_encoded_path_segment(whop: FakeWhop) -> None:
    client = WhopClient(whop.base_url, whop.api_key, timeout=2.0)
    try:
        for membership_id in ("..", "mem_1?x=", "../promo_codes"):
            with pytest.raises(WhopRejected):
                await client.get_membership(membership_id)
        with pytest.raises(WhopRejected):
            await client.add_free_days("..", 3, idempotency_key="k")
    finally:
        await client.close()

    assert [call.raw_path for call in whop.calls] == [
        "/api/v1/memberships/%2E%2E",
        "/api/v1/memberships/mem_1%3Fx%3D",
        "/api/v1/memberships/..%2Fpromo_codes",
        "/api/v1/memberships/%2E%2E/add_free_days",
    ]
    assert all(not call.query for call in whop.calls)


async def test_roles_waiting_for_a_guild_are_given_once_one_is_bound(
    sessionmaker: Sessions, service: RewardsService, discord: FakeDiscord, community_id: str
) -> None:
    guild, member = snowflake(), snowflake()
    discord.add_guild(guild, "1300000000000000001")
    await queue_role(sessionmaker, service, community_id, member, "1300000000000000001")
    waiting = await deliver(sessionmaker, discord, community_id)
    assert waiting.status == "waiting"
    assert "discord-guild/install" in (waiting.last_error or "")

    await bind(sessionmaker, service, community_id, guild)
    row = await deliver(sessionmaker, discord, community_id)

    assert row.status == "assigned"
    assert discord.roles == {(guild, member, "1300000000000000001")}


async def test_concurrent_bindings_of_one_guild_leave_it_with_one_community(
    sessionmaker: Sessions, service: RewardsService
) -> None:
    guild = snowflake()
    communities = [f"exp_{uuid.uuid4().hex[:12]}" for _ in range(4)]

    results = await asyncio.gather(
        *(bind(sessionmaker, service, community, guild) for community in communities),
        return_exceptions=True,
    )

    assert sum(result is None for result in results) == 1
    assert all(isinstance(r, GuildBoundElsewhere) for r in results if r is not None)
    async with sessionmaker() as session:
        owners = [await RoleRepository(session).guild_of(c) for c in communities]
    assert owners.count(guild) == 1
