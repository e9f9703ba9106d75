"""End to end: level-ups reached through signed Whop webhooks are announced by the processes
`make up` starts, through a local Whop stand-in that fails on demand: one chat message in the
channel the activity happened in, or one push notification to the member, whatever is
redelivered or fails once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.gateway import bearer
from tests.support.stack import SECRET, Stack, start_stack, stop_stack
from tests.support.whop import chat_message_created, sign_standard
from tests.support.whop_api import FakeWhop, serving
from wee5.events.v1 import events_pb2
from wee5_gateway.config import GatewaySettings
from wee5_kit.events import EventBus, new_meta

pytestmark = pytest.mark.e2e

CHANNEL = "chat_feed_1CAnnounce"
# Level 5 needs 770 XP: 39 messages of 20 XP (no cooldown in this stack).
MESSAGES_TO_LEVEL_5 = 39


@pytest.fixture(scope="module")
async def whop() -> AsyncIterator[FakeWhop]:
    fake = FakeWhop()
    async with serving(fake, "") as base_url:
        fake.base_url = base_url
        yield fake


@pytest.fixture(scope="module")
def stack(
    database_url: str,
    test_env: dict[str, str],
    whop: FakeWhop,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = start_stack(
        test_env,
        tmp_path_factory.mktemp("announcements"),
        WEE5_XP_COOLDOWN_SECONDS="0",
        WEE5_WHOP_API_URL=f"{whop.base_url}/api/v1",
        WEE5_WHOP_API_KEY=whop.api_key,
        WEE5_REWARD_POLL_SECONDS="0.1",
        WEE5_REWARD_BACKOFF_BASE_SECONDS="0.1",
        WEE5_REWARD_BACKOFF_MAX_SECONDS="0.3",
    )
    yield stack
    stop_stack(stack)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    admin = bearer(GatewaySettings(), platform_admin=True)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=20, headers=admin) as client:
        yield client


async def deliver(http: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    """One webhook, signed as Whop signs it, delivered twice (Whop redelivers)."""
    body = json.dumps(payload).encode()
    headers = sign_standard(SECRET, body, f"msg_{uuid.uuid4().hex}", int(time.time()))
    for _ in range(2):
        reply = await http.post(
            "/webhooks/whop", content=body, headers={**headers, "content-type": "application/json"}
        )
        assert reply.status_code == 200, reply.text


async def chat_to_level_5(http: httpx.AsyncClient, community_id: str, user_id: str) -> None:
    """Messages in CHANNEL from a member whose display name tries to mention everyone."""
    for _ in range(MESSAGES_TO_LEVEL_5):
        payload = chat_message_created(community_id, user_id, channel_id=CHANNEL)
        payload["data"]["message"]["user"]["name"] = "@everyone Ada"
        await deliver(http, payload)


async def announce(http: httpx.AsyncClient, community_id: str, **settings: Any) -> None:
    reply = await http.put(
        f"/api/v1/communities/{community_id}/announcement-settings",
        json={"enabled": True, "every_levels": 5, **settings},
    )
    assert reply.status_code == 200, reply.text


async def announcements(http: httpx.AsyncClient, community_id: str) -> list[dict[str, Any]]:
    reply = await http.get(f"/api/v1/communities/{community_id}/announcements")
    assert reply.status_code == 200, reply.text
    listed: list[dict[str, Any]] = reply.json()["announcements"]
    return listed


async def until_sent(http: httpx.AsyncClient, community_id: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            listed = await announcements(http, community_id)
            if listed and all(a["status"] == "sent" for a in listed):
                [announcement] = listed
                return announcement
            await asyncio.sleep(0.2)


async def level_up_again(bus: EventBus, community_id: str, user_id: str) -> None:
    """The level-up to 5 published a second time (another event id), as an overlapping or
    replayed level-up brings it."""
    event = events_pb2.LevelUp(
        meta=new_meta(community_id),
        user_id=user_id,
        from_level=4,
        to_level=5,
        channel_id=CHANNEL,
    )
    await bus.publish(bus.subject("xp.level_up"), event.SerializeToString(), event.meta.event_id)


async def test_level_5_is_posted_once_in_the_activity_channel_despite_a_500_and_a_replay(
    http: httpx.AsyncClient, whop: FakeWhop, bus: EventBus
) -> None:
    community_id = f"exp_{uuid.uuid4().hex[:12]}"
    await announce(http, community_id, target="activity_channel")
    whop.script["post_message"].append("500")

    await chat_to_level_5(http, community_id, "user_ada")
    await level_up_again(bus, community_id, "user_ada")

    announcement = await until_sent(http, community_id)
    await asyncio.sleep(1)  # a second (wrong) message would have been posted by now
    posted = [m for m in whop.messages if m["channel_id"] == CHANNEL]
    # Every 5 levels: levels 2 to 4 were not announced; level 5 once, after one 500.
    assert len(posted) == 1, posted
    assert posted[0]["content"].startswith("🎉 @\u200beveryone Ada reached level 5!")
    assert "@everyone" not in posted[0]["content"]
    assert announcement["event_key"] == "level_up:5"
    assert [a["outcome"] for a in announcement["attempts"]] == ["not_sent", "sent"]


async def test_level_5_is_one_push_notification_to_the_member_when_push_is_chosen(
    http: httpx.AsyncClient, whop: FakeWhop, bus: EventBus
) -> None:
    community_id = f"exp_{uuid.uuid4().hex[:12]}"
    await announce(http, community_id, target="whop_push")
    whop.script["send_notification"].append("500")

    await chat_to_level_5(http, community_id, "user_bea")
    await level_up_again(bus, community_id, "user_bea")

    await until_sent(http, community_id)
    await asyncio.sleep(1)
    pushed = [n for n in whop.notifications if n["experience_id"] == community_id]
    assert len(pushed) == 1, pushed
    assert pushed[0]["user_ids"] == ["user_bea"]
    assert "level 5" in pushed[0]["content"]
    assert "@everyone" not in pushed[0]["content"]
