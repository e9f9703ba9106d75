"""The member's toast text on the live stream, over real HTTP: Whop webhooks into the gateway
(uvicorn on a free port), a real xp server, a real rewards process consuming its level-ups and
publishing `rewards.announced` through its outbox, NATS JetStream, Postgres and Redis.

The community's template is rendered as plain text for the app, a display name cannot mention
`@everyone` in it, it comes with announcements switched off (the app shows the community's
words either way), and a level-up delivered again publishes nothing new. (A module of its own:
no other rewards process consumes level-ups while these run.)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.gateway.test_stream import (
    Gateway,
    member_headers,
    open_stream,
    serve_http,
    stream_settings,
)
from tests.support.gateway import SECRET
from tests.support.whop import chat_message_created, new_id, sign_standard
from wee5.events.v1 import events_pb2
from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5_kit.events import EventBus, new_meta
from wee5_kit.grpc import channel
from wee5_rewards.config import RewardsSettings
from wee5_rewards.models import InAppAnnouncement, processed_events
from wee5_rewards.server import build as build_rewards
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp

Sessions = async_sessionmaker[AsyncSession]
ZWSP = "\u200b"
HOSTILE_NAME = "@everyone *Ada* <@&1>"


@pytest.fixture(scope="module")
async def xp_addr(database_url: str, redis: Redis, bus: EventBus) -> AsyncIterator[str]:
    """A real xp server without cooldown, so every message earns 20 XP."""
    addr = f"127.0.0.1:{free_port()}"
    server = await build_xp(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    await server.start()
    yield addr
    await server.stop()


@pytest.fixture(scope="module")
async def rewards(xp_addr: str) -> AsyncIterator[rewards_pb2_grpc.RewardsServiceAsyncStub]:
    """A real rewards process (no Whop key: nothing is posted, the app still hears)."""
    addr = f"127.0.0.1:{free_port()}"
    server = await build_rewards(RewardsSettings(rewards_addr=addr, xp_addr=xp_addr))
    await server.start()
    rewards_channel = channel(addr)
    try:
        yield rewards_pb2_grpc.RewardsServiceStub(rewards_channel)
    finally:
        await rewards_channel.close(None)
        await server.stop()


@pytest.fixture(scope="module")
async def gateway(
    xp_addr: str, rewards: rewards_pb2_grpc.RewardsServiceAsyncStub
) -> AsyncIterator[Gateway]:
    async with serve_http(stream_settings(xp_addr)) as gateway:
        yield gateway


async def say(gateway: Gateway, community_id: str, user_id: str, name: str) -> None:
    """A signed `chat.message.created` by a Whop user called `name`: 20 XP."""
    envelope = chat_message_created(community_id, user_id)
    envelope["data"]["message"]["user"].update(name=name, username="ada")
    body = json.dumps(envelope).encode()
    answer = await gateway.client.post(
        "/webhooks/whop", content=body, headers=sign_standard(SECRET, body, envelope["id"])
    )
    assert answer.json() == {"status": "awarded"}, answer.text


async def use_template(
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub, community_id: str, template: str
) -> None:
    """The community's level-up template, with announcements switched off."""
    await rewards.UpdateAnnouncementSettings(
        rewards_pb2.UpdateAnnouncementSettingsRequest(
            settings=rewards_pb2.AnnouncementSettings(
                community_id=community_id,
                enabled=False,
                level_ups=True,
                level_up_template=template,
            )
        )
    )


async def handled(sessionmaker: Sessions, event_id: str) -> bool:
    async with sessionmaker() as session:
        found = await session.scalar(
            select(processed_events.c.event_id).where(
                processed_events.c.event_id == uuid.UUID(event_id)
            )
        )
    return found is not None


async def in_app_rows(sessionmaker: Sessions, community_id: str) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(InAppAnnouncement)
            .where(InAppAnnouncement.community_id == community_id)
        )
    return int(count or 0)


async def test_a_level_up_streams_the_communitys_template_as_plain_text_without_mentions(
    gateway: Gateway,
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub,
    sessionmaker: Sessions,
    community_id: str,
) -> None:
    await use_template(
        rewards, community_id, "GG {member} ({mention}): level {level} from {old_level}!"
    )
    user = new_id("user")
    for _ in range(4):  # 80 XP: the next message reaches level 2 at 100
        await say(gateway, community_id, user, HOSTILE_NAME)
    headers = await member_headers(gateway, sessionmaker, community_id)

    async with open_stream(gateway, community_id, headers) as stream:
        await stream.next()  # the opening block: the stream is live from here
        await say(gateway, community_id, user, HOSTILE_NAME)
        level_up = await stream.next_event("xp.level_up")
        announced = await stream.next_event("rewards.announced", within=10)

    event = announced.json
    shown = f"@{ZWSP}everyone *Ada* <@{ZWSP}&1>"  # plain text: no markdown escapes
    assert event["text"] == f"GG {shown} ({shown}): level 2 from 1!"
    assert "@everyone" not in event["text"]
    assert (event["user_id"], event["kind"], event["level"]) == (user, "level_up", 2)
    assert (event["reward_id"], event["badge_id"]) == ("", "")
    assert event["meta"]["community_id"] == community_id
    assert uuid.UUID(event["meta"]["event_id"])
    assert level_up.json["to_level"] == 2
    assert (announced.id or "").split(",")[1].startswith("rewards:")


async def test_a_level_up_delivered_again_publishes_no_second_announcement(
    gateway: Gateway,
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub,
    sessionmaker: Sessions,
    bus: EventBus,
    community_id: str,
) -> None:
    await use_template(rewards, community_id, "{member} is level {level}")
    user = new_id("user")
    for _ in range(4):
        await say(gateway, community_id, user, "Grace")
    headers = await member_headers(gateway, sessionmaker, community_id)

    async with open_stream(gateway, community_id, headers) as stream:
        await stream.next()
        await say(gateway, community_id, user, "Grace")
        first = await stream.next_event("rewards.announced", within=10)
        # The same level-up again under another event id, as an overlapping or replayed
        # level-up brings it.
        again = events_pb2.LevelUp(
            meta=new_meta(community_id), user_id=user, from_level=1, to_level=2, total_xp=100
        )
        await bus.publish(
            bus.subject("xp.level_up"), again.SerializeToString(), again.meta.event_id
        )
        async with asyncio.timeout(10):
            while not await handled(sessionmaker, again.meta.event_id):
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # time for a second announcement to reach the stream
        later = [block.event for block in stream.events_so_far()]

    assert first.json["text"] == "Grace is level 2"
    assert "rewards.announced" not in later
    assert await in_app_rows(sessionmaker, community_id) == 1


async def test_a_badge_an_admin_awards_streams_its_announcement_naming_the_badge(
    gateway: Gateway,
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub,
    sessionmaker: Sessions,
    community_id: str,
) -> None:
    user = new_id("user")
    await say(gateway, community_id, user, "Linus")
    created = await rewards.CreateBadge(
        rewards_pb2.CreateBadgeRequest(
            community_id=community_id,
            name="Early **Bird**",
            criteria=rewards_pb2.BadgeCriteria(kind=rewards_pb2.BADGE_CRITERIA_KIND_MANUAL),
        )
    )
    headers = await member_headers(gateway, sessionmaker, community_id)

    async with open_stream(gateway, community_id, headers) as stream:
        await stream.next()
        await rewards.AwardBadge(
            rewards_pb2.AwardBadgeRequest(
                community_id=community_id, badge_id=created.badge.id, user_id=user
            )
        )
        awarded = await stream.next_event("rewards.badge_awarded", within=10)
        announced = await stream.next_event("rewards.announced", within=10)

    event = announced.json
    assert (event["kind"], event["badge_id"], event["level"]) == ("badge", created.badge.id, 0)
    assert event["badge_id"] == awarded.json["badge_id"]
    assert event["text"] == "🏅 Linus earned the Early **Bird** badge!"  # the default template
