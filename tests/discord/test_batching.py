"""The bot's batches against the real xp server: a batch xp refuses whole (one bad activity)
is sent again one by one, so only the bad one is lost; a batch xp could not take (xp down)
stays pending and reaches xp once it answers."""

from __future__ import annotations

import uuid

from tests.conftest import free_port
from tests.discord.conftest import Platform
from tests.support.discord_gateway import snowflake
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_discord.activities import message_activity
from wee5_discord.batching import ActivityBatcher
from wee5_kit.grpc import channel


def activity(community: str, member: str) -> xp_pb2.Activity:
    return message_activity(
        community,
        message_id=int(snowflake()),
        author_id=int(member),
        channel_id=int(snowflake()),
        content_length=5,
        at=None,
    )


async def test_one_refused_activity_does_not_lose_the_rest_of_its_batch(
    platform: Platform,
) -> None:
    community = f"exp_{uuid.uuid4().hex[:12]}"
    members = [snowflake() for _ in range(3)]
    batcher = ActivityBatcher(platform.xp, max_batch=10, interval=60)
    bad = message_activity(
        community, message_id=1, author_id=1, channel_id=1, content_length=0, at=None
    )
    bad.user_id = "x" * 65  # xp refuses a user id longer than 64 characters
    for member in members[:2]:
        batcher.add(activity(community, member))
    batcher.add(bad)
    batcher.add(activity(community, members[2]))

    assert await batcher.flush_once()

    assert (batcher.sent, batcher.dropped, batcher.pending) == (3, 1, [])
    for member in members:
        assert await platform.xp_of(community, member) == 20


async def test_a_batch_xp_could_not_take_stays_pending(platform: Platform) -> None:
    community, member = f"exp_{uuid.uuid4().hex[:12]}", snowflake()
    nowhere = channel(f"127.0.0.1:{free_port()}", default_timeout=0.5)
    down: xp_pb2_grpc.XpServiceAsyncStub = xp_pb2_grpc.XpServiceStub(nowhere)
    batcher = ActivityBatcher(down, max_batch=10, interval=60)
    batcher.add(activity(community, member))

    assert not await batcher.flush_once()
    assert len(batcher.pending) == 1

    batcher.xp = platform.xp  # xp answers again
    assert await batcher.flush_once()
    assert await platform.xp_of(community, member) == 20
    await nowhere.close(None)
