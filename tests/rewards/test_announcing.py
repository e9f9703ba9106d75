"""Announcements sent by the real rewards process's worker through a local Whop stand-in:
once per member, level and target whatever is redelivered, the cadence, push, dead ones and
an admin retry, and a burst held to its limit plus one summary. (A module of its own: no other
rewards process consumes level-ups while these run.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.rewards.conftest import RealXp, XpMemberships, eventually
from tests.support.whop_api import FakeWhop
from wee5.events.v1 import events_pb2
from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5.xp.v1 import xp_pb2
from wee5_kit.events import EventBus, new_meta
from wee5_kit.grpc import channel
from wee5_rewards.config import RewardsSettings
from wee5_rewards.models import (
    Announcement,
    AnnouncementAttempt,
    Reward,
    outbox,
    processed_events,
)
from wee5_rewards.server import build as build_rewards

Sessions = async_sessionmaker[AsyncSession]
ZWSP = "\u200b"
# Level-ups one curve change brings at once.
BURST = 2000


@dataclass
class Sending:
    whop: FakeWhop
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub
    xp: RealXp
    bus: EventBus
    sessions: Sessions

    async def configure(self, community_id: str, **settings: Any) -> None:
        wanted = rewards_pb2.AnnouncementSettings(
            community_id=community_id, enabled=True, level_ups=True
        )
        for name, value in settings.items():
            setattr(wanted, name, value)
        await self.rewards.UpdateAnnouncementSettings(
            rewards_pb2.UpdateAnnouncementSettingsRequest(settings=wanted)
        )

    async def message(
        self, community_id: str, user_id: str, name: str, channel_id: str = "chat_feed_room1"
    ) -> int:
        """One 1000-XP chat message in `channel_id` (level 5 for a new member)."""
        reply = await self.xp.stub.RecordActivity(
            xp_pb2.RecordActivityRequest(
                activity=xp_pb2.Activity(
                    community_id=community_id,
                    user_id=user_id,
                    kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                    source=xp_pb2.SOURCE_WHOP,
                    idempotency_key=uuid.uuid4().hex,
                    channel_id=channel_id,
                    profile=xp_pb2.Profile(display_name=name, username="ada"),
                )
            )
        )
        return reply.level

    async def level_up_again(self, community_id: str, user_id: str, level: int) -> str:
        """A second `xp.level_up` for the same level (another event id), as an overlapping or
        replayed level-up would bring."""
        event = events_pb2.LevelUp(
            meta=new_meta(community_id),
            user_id=user_id,
            from_level=level - 1,
            to_level=level,
            channel_id="chat_feed_room1",
        )
        subject = self.bus.subject("xp.level_up")
        await self.bus.publish(subject, event.SerializeToString(), event.meta.event_id)
        return event.meta.event_id

    async def handled(self, event_id: str) -> bool:
        async with self.sessions() as session:
            found = await session.scalar(
                select(processed_events.c.event_id).where(
                    processed_events.c.event_id == uuid.UUID(event_id)
                )
            )
        return found is not None

    async def statuses(self, community_id: str) -> list[str]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Announcement.status)
                .where(Announcement.community_id == community_id)
                .order_by(Announcement.id)
            )
            return list(rows)


@asynccontextmanager
async def rewards_process(
    whop: FakeWhop, real_xp: RealXp, bus: EventBus, sessionmaker: Sessions, **settings: Any
) -> AsyncIterator[Sending]:
    address = f"127.0.0.1:{free_port()}"
    server = await build_rewards(
        RewardsSettings(
            rewards_addr=address,
            xp_addr=real_xp.address,
            whop_api_url=whop.base_url,
            whop_api_key=whop.api_key,
            reward_backoff_base_seconds=0.05,
            reward_backoff_max_seconds=0.2,
            reward_poll_seconds=0.05,
            announcement_max_attempts=3,
            **settings,
        )
    )
    await server.start()
    rewards_channel = channel(address)
    try:
        yield Sending(
            whop, rewards_pb2_grpc.RewardsServiceStub(rewards_channel), real_xp, bus, sessionmaker
        )
    finally:
        await rewards_channel.close(None)
        await server.stop()


@pytest.fixture
async def sending(
    whop: FakeWhop, real_xp: RealXp, bus: EventBus, sessionmaker: Sessions
) -> AsyncIterator[Sending]:
    async with rewards_process(whop, real_xp, bus, sessionmaker) as process:
        yield process


async def test_level_five_is_announced_once_in_the_activity_channel_despite_a_500_and_a_replay(
    sending: Sending,
) -> None:
    community_id = f"exp_{uuid.uuid4().hex[:12]}"
    await sending.configure(
        community_id,
        target=rewards_pb2.ANNOUNCEMENT_TARGET_ACTIVITY_CHANNEL,
        level_up_template="GG {member} ({mention}), level {level}!",
        every_levels=5,
    )
    sending.whop.script["post_message"].append("500")  # Whop fails the first post

    assert await sending.message(community_id, "user_ada", "@everyone Ada") == 5
    replayed = await sending.level_up_again(community_id, "user_ada", 5)

    async def sent() -> bool:
        return await sending.statuses(community_id) == ["sent"]

    await eventually(sent)
    await eventually(lambda: sending.handled(replayed))
    await asyncio.sleep(0.5)  # time for a second message, were there one
    assert await sending.statuses(community_id) == ["sent"]
    posted = [m for m in sending.whop.messages if m["channel_id"] == "chat_feed_room1"]
    assert [m["content"] for m in posted] == [f"GG @{ZWSP}everyone Ada (@ada), level 5!"]
    async with sending.sessions() as session:
        (announcement,) = await session.scalars(
            select(Announcement).where(Announcement.community_id == community_id)
        )
        attempts = await session.scalars(
            select(AnnouncementAttempt.outcome)
            .where(AnnouncementAttempt.announcement_id == announcement.id)
            .order_by(AnnouncementAttempt.number)
        )
        # The 500 left the first attempt's outcome unknown; the second read the channel,
        # found no such message, settled the first as not sent, and posted.
        assert list(attempts) == ["not_sent", "sent"]


async def test_levels_the_cadence_skips_are_not_announced_and_push_goes_to_the_member(
    sending: Sending,
) -> None:
    community_id = f"exp_{uuid.uuid4().hex[:12]}"
    await sending.configure(
        community_id, target=rewards_pb2.ANNOUNCEMENT_TARGET_WHOP_PUSH, every_levels=10
    )
    await sending.message(community_id, "user_bo", "Bo")  # level 5: not a tenth level

    async def bo_handled() -> bool:  # the level-up consumed (its level-5 reward recorded)
        async with sending.sessions() as session:
            found = await session.scalar(
                select(Reward.id).where(
                    Reward.community_id == community_id, Reward.user_id == "user_bo"
                )
            )
        return found is not None

    await eventually(bo_handled)
    await sending.configure(
        community_id, target=rewards_pb2.ANNOUNCEMENT_TARGET_WHOP_PUSH, every_levels=5
    )
    await sending.message(community_id, "user_cy", "Cy")  # level 5 now announced

    async def pushed() -> bool:
        return await sending.statuses(community_id) == ["sent"]

    await eventually(pushed)
    (push,) = sending.whop.notifications
    assert push["experience_id"] == community_id
    assert push["user_ids"] == ["user_cy"]
    assert "Cy reached level 5" in push["content"]


async def test_a_dead_announcement_shows_its_attempts_and_an_admin_retry_sends_it_once(
    sending: Sending,
) -> None:
    community_id = f"exp_{uuid.uuid4().hex[:12]}"
    await sending.configure(
        community_id,
        target=rewards_pb2.ANNOUNCEMENT_TARGET_WHOP_CHANNEL,
        channel_id="chat_feed_news",
    )
    sending.whop.down = True
    await sending.message(community_id, "user_di", "Di")

    async def dead() -> bool:
        return await sending.statuses(community_id) == ["dead"]

    await eventually(dead)
    listed = await sending.rewards.ListAnnouncements(
        rewards_pb2.ListAnnouncementsRequest(community_id=community_id, status="dead")
    )
    (shown,) = listed.announcements
    # The first post's 503 may have posted it (unknown); the next two could not even read the
    # channel to check, so they never posted.
    assert [a.outcome for a in shown.attempts] == ["unknown", "failed", "failed"]
    assert all(a.http_status == 503 for a in shown.attempts)

    sending.whop.down = False
    await sending.rewards.RetryAnnouncement(
        rewards_pb2.RetryAnnouncementRequest(community_id=community_id, announcement_id=shown.id)
    )

    async def sent() -> bool:
        return await sending.statuses(community_id) == ["sent"]

    await eventually(sent)
    await asyncio.sleep(0.3)
    assert [m["channel_id"] for m in sending.whop.messages] == ["chat_feed_news"]


async def test_a_burst_of_level_ups_sends_at_most_the_burst_and_one_summary(
    whop: FakeWhop, real_xp: RealXp, bus: EventBus, sessionmaker: Sessions
) -> None:
    async with rewards_process(
        whop,
        real_xp,
        bus,
        sessionmaker,
        announcement_burst=5,
        # Longer than handling the burst takes on a loaded machine: one window, one summary.
        announcement_burst_window_seconds=30,
    ) as sending:
        community_id = f"exp_{uuid.uuid4().hex[:12]}"
        await sending.configure(
            community_id,
            target=rewards_pb2.ANNOUNCEMENT_TARGET_WHOP_CHANNEL,
            channel_id="chat_feed_levels",
        )
        # A curve change levels up 2,000 members at once: 2,000 level-up events.
        subject = bus.subject("xp.level_up")
        events = [
            events_pb2.LevelUp(
                meta=new_meta(community_id), user_id=f"user_{n}", from_level=1, to_level=2
            )
            for n in range(BURST)
        ]
        for start in range(0, BURST, 200):
            await asyncio.gather(
                *(
                    bus.publish(subject, event.SerializeToString(), event.meta.event_id)
                    for event in events[start : start + 200]
                )
            )

        async def rows() -> list[tuple[str, str]]:
            async with sending.sessions() as session:
                found = await session.execute(
                    select(Announcement.user_id, Announcement.status).where(
                        Announcement.community_id == community_id
                    )
                )
                return [(row.user_id, row.status) for row in found]

        async def all_settled() -> bool:
            # Every member's level-up recorded, and nothing left to send.
            found = await rows()
            members = [status for user_id, status in found if user_id]
            return len(members) == BURST and {s for _, s in found} <= {"sent", "collapsed"}

        try:
            await eventually(all_settled, within=120)
        except AssertionError:
            statuses = [status for _, status in await rows()]
            raise AssertionError({s: statuses.count(s) for s in set(statuses)}) from None
    texts = [m["content"] for m in whop.messages if m["channel_id"] == "chat_feed_levels"]
    summaries = [t for t in texts if t.startswith("🎉 … and ")]
    counted = [int(t.split(" and ")[1].split(" more")[0].replace(",", "")) for t in summaries]
    # Each window: at most the burst of 5, then one summary counting the rest. Handling 2,000
    # events takes one window here, two on a loaded machine; nobody is lost or told twice.
    assert summaries
    assert texts[-1] == summaries[-1]
    assert len(texts) - len(summaries) <= 5 * len(summaries)
    assert len(texts) - len(summaries) + sum(counted) == BURST
    if len(summaries) == 1:  # one window: the burst of 5, then one summary
        assert len(texts) == 6
        assert summaries == [f"🎉 … and {BURST - 5:,} more members leveled up"]


async def test_a_granted_reward_is_announced_without_its_code_once_it_is_applied(
    sending: Sending, memberships_xp: XpMemberships
) -> None:
    community_id = f"exp_{uuid.uuid4().hex[:12]}"
    await sending.configure(
        community_id,
        target=rewards_pb2.ANNOUNCEMENT_TARGET_WHOP_CHANNEL,
        channel_id="chat_feed_rewards",
        level_ups=False,
        rewards=True,
    )
    membership = sending.whop.add_membership(company_id="biz_announce")
    await memberships_xp.link(community_id, "user_ada", membership, "biz_announce")

    await sending.message(community_id, "user_ada", "Ada")  # level 5: 3 free days

    async def announced() -> bool:
        return "sent" in await sending.statuses(community_id)

    await eventually(announced)
    assert [m["content"] for m in sending.whop.messages] == ["🎁 Ada earned 3 free days!"]
    assert sending.whop.applications("add_free_days")  # announced after it was applied
    # The app hears both, level-ups included (those only stay out of the chat), in plain text.
    async with sending.sessions() as session:
        (reward_id,) = await session.scalars(
            select(Reward.id).where(Reward.community_id == community_id)
        )
        payloads = await session.scalars(
            select(outbox.c.payload).where(outbox.c.subject == "rewards.announced")
        )
        in_app = [events_pb2.Announced.FromString(p) for p in payloads]
    mine = [e for e in in_app if e.meta.community_id == community_id]
    assert [(e.kind, e.level, e.reward_id, e.text) for e in mine] == [
        ("level_up", 5, "", "🎉 Ada reached level 5!"),
        ("reward", 5, str(reward_id), "🎁 Ada earned 3 free days!"),
    ]
