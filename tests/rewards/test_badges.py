"""Badges: criteria judged on XP events (with the real xp for counts, streaks and ranks),
awarded once even under concurrent events, manual award and revoke, Discord roles queued and
assigned through a local server speaking Discord's API."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.rewards.conftest import RealXp, eventually
from tests.support.whop_api import FakeDiscord
from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.discord_rest import DiscordClient
from wee5_kit.events import EventBus, new_meta
from wee5_kit.grpc import channel
from wee5_kit.uow import unit_of_work
from wee5_rewards.badge_catalog import BadgeCatalog
from wee5_rewards.errors import BadgeInUse, BadgeNameTaken, InvalidRequest
from wee5_rewards.models import MemberBadge, Reward, RoleAssignment, outbox
from wee5_rewards.roles import RoleDelivery, RolePolicy
from wee5_rewards.service import BadgeDraft, MemberFacts, RewardRule, RewardsService

Sessions = async_sessionmaker[AsyncSession]


def draft(criteria: str, threshold: int = 1, **extra: str | None) -> BadgeDraft:
    return BadgeDraft(
        name=str(extra.get("name") or f"{criteria}-{uuid.uuid4().hex[:6]}"),
        description="",
        image_url="https://cdn.example.test/badge.png",
        criteria=criteria,
        threshold=threshold,
        activity_kind=str(extra.get("activity_kind") or ""),
        period=str(extra.get("period") or "all_time"),
        role_id=extra.get("role_id"),
    )


async def create(
    sessionmaker: Sessions, service: RewardsService, community_id: str, badge: BadgeDraft
) -> int:
    async with unit_of_work(sessionmaker) as uow:  # as the RPC does: its commit drops caches
        return (await service.create_badge(uow.session, community_id, badge)).id


async def evaluate(
    sessionmaker: Sessions,
    service: RewardsService,
    community_id: str,
    user_id: str,
    facts: MemberFacts,
) -> list[int]:
    async with sessionmaker.begin() as session:
        return await service.evaluate_badges(session, community_id, user_id, facts)


async def held(sessionmaker: Sessions, community_id: str) -> list[tuple[str, int]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(MemberBadge.user_id, MemberBadge.badge_id)
            .where(MemberBadge.community_id == community_id, MemberBadge.revoked_at.is_(None))
            .order_by(MemberBadge.user_id, MemberBadge.badge_id)
        )
        return [(row.user_id, row.badge_id) for row in rows]


async def awarded_events(sessionmaker: Sessions, community_id: str) -> int:
    async with sessionmaker() as session:
        payloads = await session.scalars(
            select(outbox.c.payload).where(outbox.c.subject == "rewards.badge_awarded")
        )
        return sum(
            events_pb2.BadgeAwarded.FromString(p).meta.community_id == community_id
            for p in payloads
        )


@pytest.fixture
def service(real_xp: RealXp) -> RewardsService:
    return RewardsService(xp=real_xp.stub)


async def test_level_and_xp_badges_are_awarded_once_when_reached(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    level_badge = await create(sessionmaker, service, community_id, draft("level", 5))
    xp_badge = await create(sessionmaker, service, community_id, draft("xp", 1000))

    assert await evaluate(sessionmaker, service, community_id, "u1", MemberFacts(900, 4)) == []
    assert await evaluate(sessionmaker, service, community_id, "u1", MemberFacts(950, 5)) == [
        level_badge
    ]
    assert await evaluate(sessionmaker, service, community_id, "u1", MemberFacts(1200, 6)) == [
        xp_badge
    ]
    assert await evaluate(sessionmaker, service, community_id, "u1", MemberFacts(5000, 9)) == []

    assert await held(sessionmaker, community_id) == [("u1", level_badge), ("u1", xp_badge)]
    assert await awarded_events(sessionmaker, community_id) == 2


async def test_a_badge_created_is_judged_by_the_next_event(
    sessionmaker: Sessions, real_xp: RealXp, community_id: str
) -> None:
    # The community's automatic badges are kept in memory for an hour here: a creation,
    # change or deletion must drop them all the same.
    service = RewardsService(xp=real_xp.stub, badges=BadgeCatalog(ttl=3600))
    level_six = MemberFacts(1000, 6)
    assert await evaluate(sessionmaker, service, community_id, "u1", level_six) == []

    badge = await create(sessionmaker, service, community_id, draft("level", 5))
    assert await evaluate(sessionmaker, service, community_id, "u1", level_six) == [badge]

    async with unit_of_work(sessionmaker) as uow:
        await service.update_badge(uow.session, community_id, badge, draft("level", 9))
    assert await evaluate(sessionmaker, service, community_id, "u2", level_six) == []
    async with unit_of_work(sessionmaker) as uow:
        await service.delete_badge(uow.session, community_id, badge)
    other = await create(sessionmaker, service, community_id, draft("xp", 500))
    assert await evaluate(sessionmaker, service, community_id, "u2", level_six) == [other]


async def test_a_badge_changed_in_one_replica_is_judged_at_once_in_every_other(
    sessionmaker: Sessions, bus: EventBus, real_xp: RealXp, community_id: str
) -> None:
    replicas = [RewardsService(xp=real_xp.stub, badges=BadgeCatalog(ttl=3600)) for _ in range(2)]
    subscriptions = [await replica.badges.listen(bus) for replica in replicas]
    one, other = replicas
    try:
        # `other` keeps that the community has no automatic badge...
        assert await evaluate(sessionmaker, other, community_id, "u1", MemberFacts(1000, 6)) == []
        # ...until `one` creates one: the next event in `other` judges it.
        badge = await create(sessionmaker, one, community_id, draft("level", 5))

        async def judged_in_other() -> bool:
            async with sessionmaker() as session:
                return bool(await other.badges.automatic(session, community_id))

        await eventually(judged_in_other, within=5)
        assert await evaluate(sessionmaker, other, community_id, "u1", MemberFacts(1000, 6)) == [
            badge
        ]

        async with unit_of_work(sessionmaker) as uow:
            await one.update_badge(uow.session, community_id, badge, draft("level", 9))

        async def changed_in_other() -> bool:
            async with sessionmaker() as session:
                badges = await other.badges.automatic(session, community_id)
            return [b.threshold for b in badges] == [9]

        await eventually(changed_in_other, within=5)
        assert await evaluate(sessionmaker, other, community_id, "u2", MemberFacts(1000, 6)) == []
    finally:
        for replica, subscription in zip(replicas, subscriptions, strict=True):
            await replica.badges.stop(subscription)


async def test_concurrent_events_award_a_badge_once(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    badge = await create(sessionmaker, service, community_id, draft("level", 5))

    results = await asyncio.gather(
        *(
            evaluate(sessionmaker, service, community_id, "u1", MemberFacts(1000 + i, 5))
            for i in range(8)
        )
    )

    assert sorted(len(result) for result in results) == [0] * 7 + [1]
    assert await held(sessionmaker, community_id) == [("u1", badge)]
    assert await awarded_events(sessionmaker, community_id) == 1


async def test_activity_count_streak_and_rank_badges_ask_xp(
    sessionmaker: Sessions, service: RewardsService, real_xp: RealXp, community_id: str
) -> None:
    chatty = await create(
        sessionmaker, service, community_id, draft("activity_count", 3, activity_kind="message")
    )
    streak = await create(sessionmaker, service, community_id, draft("streak", 1))
    top = await create(sessionmaker, service, community_id, draft("rank", 1, period="weekly"))
    await real_xp.messages(community_id, "leader", 3)
    await real_xp.messages(community_id, "second", 1)

    leader = await evaluate(sessionmaker, service, community_id, "leader", MemberFacts(3000, 8))
    second = await evaluate(sessionmaker, service, community_id, "second", MemberFacts(1000, 5))

    # Both were active today, so xp reports a one-day streak for each.
    assert sorted(leader) == sorted([chatty, streak, top])
    assert second == [streak]


async def test_a_streak_badge_is_awarded_on_the_streak_xp_reports(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    streak = await create(sessionmaker, service, community_id, draft("streak", 7))
    six = MemberFacts(100, 2, member=xp_pb2.Member(streak_days=6))
    seven = MemberFacts(100, 2, member=xp_pb2.Member(streak_days=7))

    assert await evaluate(sessionmaker, service, community_id, "u1", six) == []
    assert await evaluate(sessionmaker, service, community_id, "u1", seven) == [streak]


async def test_a_revoked_badge_is_not_given_back_automatically_but_can_be_by_an_admin(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    badge = await create(sessionmaker, service, community_id, draft("level", 5))
    await evaluate(sessionmaker, service, community_id, "u1", MemberFacts(1000, 5))

    async with sessionmaker.begin() as session:
        assert await service.revoke_badge(session, community_id, badge, "u1")
    async with sessionmaker.begin() as session:
        assert not await service.revoke_badge(session, community_id, badge, "u1")
    assert await evaluate(sessionmaker, service, community_id, "u1", MemberFacts(2000, 6)) == []
    assert await held(sessionmaker, community_id) == []

    async with sessionmaker.begin() as session:
        restored, _, new = await service.award_badge(session, community_id, badge, "u1", "admin_1")
    async with sessionmaker.begin() as session:
        _, _, again = await service.award_badge(session, community_id, badge, "u1", "admin_1")
    assert (new, again, restored.awarded_by) == (True, False, "admin_1")
    assert await held(sessionmaker, community_id) == [("u1", badge)]


async def test_manual_badges_are_never_awarded_by_events(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    await create(sessionmaker, service, community_id, draft("manual", 0))

    assert await evaluate(sessionmaker, service, community_id, "u1", MemberFacts(10**6, 99)) == []


async def test_badge_names_are_unique_per_community_and_criteria_are_checked(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    await create(sessionmaker, service, community_id, draft("level", 5, name="Veteran"))

    with pytest.raises(BadgeNameTaken):
        await create(sessionmaker, service, community_id, draft("level", 9, name="Veteran"))
    with pytest.raises(InvalidRequest, match="threshold"):
        await create(sessionmaker, service, community_id, draft("xp", 0))
    with pytest.raises(InvalidRequest, match="period"):
        await create(
            sessionmaker, service, community_id, draft("activity_count", 3, period="weekly")
        )
    with pytest.raises(InvalidRequest, match="role_id"):
        await create(sessionmaker, service, community_id, draft("level", 3, role_id="mods"))
    await create(sessionmaker, service, f"{community_id}_other", draft("level", 5, name="Veteran"))


async def test_a_badge_reward_rule_awards_the_badge_on_level_up(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    badge = await create(sessionmaker, service, community_id, draft("manual", 0))
    async with sessionmaker.begin() as session:
        await service.upsert_rule(
            session, community_id, RewardRule(level=3, kind="badge", badge_id=badge)
        )
    event = events_pb2.LevelUp(meta=new_meta(community_id), user_id="u1", from_level=2, to_level=3)
    async with sessionmaker.begin() as session:
        assert await service.record_level_up(session, event) == [3]

    assert await held(sessionmaker, community_id) == [("u1", badge)]
    with pytest.raises(BadgeInUse):  # the rule would give a badge that no longer exists
        async with unit_of_work(sessionmaker) as uow:
            await service.delete_badge(uow.session, community_id, badge)


async def test_badge_roles_are_assigned_through_discord_after_a_rate_limit(
    sessionmaker: Sessions, service: RewardsService, discord: FakeDiscord
) -> None:
    guild = str(900_000_000_000 + uuid.uuid4().int % 10**9)  # a Discord community: id = guild
    badge = await create(sessionmaker, service, guild, draft("level", 5, role_id="4242"))
    member = "310000000000000555"  # a Discord user id (a snowflake)
    await evaluate(sessionmaker, service, guild, member, MemberFacts(1000, 5))
    discord.add_guild(guild, "4242")
    discord.script = ["429"]
    client = DiscordClient(discord.base_url, discord.token, timeout=2.0)
    worker = RoleDelivery(sessionmaker, client, RolePolicy(base_seconds=0.05, poll_seconds=0.05))

    async def status() -> str:
        async with sessionmaker() as session:
            return str(
                await session.scalar(
                    select(RoleAssignment.status).where(RoleAssignment.community_id == guild)
                )
            )

    try:
        for _ in range(100):
            await worker.deliver_due()
            if await status() != "pending":
                break
            await asyncio.sleep(0.05)
    finally:
        await client.close()

    assert await status() == "assigned"
    assert discord.roles == {(guild, member, "4242")}
    # the guild's roles (rate limited, then answered), then the role itself
    assert [call.headers["authorization"] for call in discord.calls] == [f"Bot {discord.token}"] * 3
    async with sessionmaker() as session:
        queued = await session.scalar(
            select(func.count())
            .select_from(RoleAssignment)
            .where(RoleAssignment.community_id == guild)
        )
    assert queued == 1
    assert badge > 0


async def test_roles_wait_without_a_bot_token(
    sessionmaker: Sessions, service: RewardsService
) -> None:
    guild = str(800_000_000_000 + uuid.uuid4().int % 10**9)
    await create(sessionmaker, service, guild, draft("level", 5, role_id="4242"))
    await evaluate(sessionmaker, service, guild, "555", MemberFacts(1000, 5))

    await RoleDelivery(sessionmaker, None, RolePolicy()).deliver_due()

    async with sessionmaker() as session:
        row = await session.scalar(
            select(RoleAssignment).where(RoleAssignment.community_id == guild)
        )
    assert row is not None
    assert (row.status, row.last_error) == ("waiting", "WEE5_DISCORD_BOT_TOKEN is not set")


async def test_a_role_reward_is_granted_at_once_and_its_role_queued_for_discord(
    sessionmaker: Sessions, service: RewardsService, community_id: str
) -> None:
    async with sessionmaker.begin() as session:
        await service.upsert_rule(
            session, community_id, RewardRule(level=2, kind="role", role_id="777")
        )
    event = events_pb2.LevelUp(meta=new_meta(community_id), user_id="u1", from_level=1, to_level=3)
    async with sessionmaker.begin() as session:
        assert await service.record_level_up(session, event) == [2]
    async with sessionmaker.begin() as session:  # the same level-up again
        assert await service.record_level_up(session, event) == []

    async with sessionmaker() as session:
        reward = await session.scalar(select(Reward).where(Reward.community_id == community_id))
        queued = list(
            await session.scalars(
                select(RoleAssignment).where(RoleAssignment.community_id == community_id)
            )
        )
    assert reward is not None
    assert (reward.kind, reward.status, reward.role_id) == ("role", "granted", "777")
    assert [(row.user_id, row.role_id, row.status) for row in queued] == [("u1", "777", "pending")]


async def test_badges_needing_xp_wait_for_the_next_event_when_xp_is_unreachable(
    sessionmaker: Sessions, community_id: str
) -> None:
    nowhere = channel(f"127.0.0.1:{free_port()}")
    service = RewardsService(xp=xp_pb2_grpc.XpServiceStub(nowhere), xp_timeout=0.5)
    streak = await create(sessionmaker, service, community_id, draft("streak", 1))
    level = await create(sessionmaker, service, community_id, draft("level", 5))

    try:
        awarded = await evaluate(sessionmaker, service, community_id, "u1", MemberFacts(900, 5))
    finally:
        await nowhere.close(None)

    assert awarded == [level]
    assert streak not in awarded
