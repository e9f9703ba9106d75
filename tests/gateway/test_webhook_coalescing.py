"""Activities of webhook deliveries that arrive together go to xp in one call
(api/webhooks/coalescing.py), against a real xp server: each still gets its own answer, a
refused one fails only itself, and every delivery counts once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from tests.gateway import test_webhooks as webhooks
from tests.gateway.test_webhooks import deliver, member
from tests.support.gateway import SECRET, bearer, gateway_settings, serve
from tests.support.whop import chat_message_created, new_id
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_gateway.api.webhooks.coalescing import ActivitySender
from wee5_kit.grpc import channel

xp_addr = webhooks.xp_addr


class CountingXp:
    """xp's stub, counting the calls made through it."""

    def __init__(self, stub: Any) -> None:
        self.stub = stub
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.stub, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return call


@pytest.fixture
async def xp(xp_addr: str) -> AsyncIterator[CountingXp]:
    async with channel(xp_addr) as chan:
        yield CountingXp(xp_pb2_grpc.XpServiceStub(chan))


def message(community_id: str, user_id: str) -> xp_pb2.Activity:
    return xp_pb2.Activity(
        community_id=community_id,
        user_id=user_id,
        kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
        source=xp_pb2.SOURCE_WHOP,
        idempotency_key=new_id("msg"),
    )


async def test_activities_arriving_while_a_call_is_out_leave_together(
    xp: CountingXp, community_id: str
) -> None:
    sender = ActivitySender(xp, max_in_flight=1, max_batch=100)  # type: ignore[arg-type]
    activities = [message(community_id, new_id("user")) for _ in range(6)]

    answers = await asyncio.gather(*(sender.record(a) for a in activities))

    assert [a.outcome for a in answers] == [xp_pb2.ACTIVITY_OUTCOME_AWARDED] * 6
    # The first went alone; the five that came while it was out went in one call.
    assert xp.calls == {"RecordActivity": 1, "RecordActivities": 1}


async def test_a_second_call_leaves_only_for_enough_waiting_activities(
    xp: CountingXp, community_id: str
) -> None:
    sender = ActivitySender(xp, max_in_flight=2, max_batch=100, extra_from=3)  # type: ignore[arg-type]
    activities = [message(community_id, new_id("user")) for _ in range(6)]

    answers = await asyncio.gather(*(sender.record(a) for a in activities))

    assert [a.outcome for a in answers] == [xp_pb2.ACTIVITY_OUTCOME_AWARDED] * 6
    # The first went alone; two waiting were not worth a second call, the third was: those
    # three left while the first was out; the last two when a call returned. (From the first
    # waiting activity, the second would have gone alone too: two RecordActivity calls.)
    assert xp.calls == {"RecordActivity": 1, "RecordActivities": 2}


async def test_a_refused_activity_fails_alone_and_the_others_of_its_call_count(
    xp: CountingXp, community_id: str
) -> None:
    sender = ActivitySender(xp, max_in_flight=1, max_batch=100)  # type: ignore[arg-type]
    first, before, after = (message(community_id, new_id("user")) for _ in range(3))
    refused = message("exp:not a community", new_id("user"))

    answers = await asyncio.gather(
        *(sender.record(a) for a in (first, before, refused, after)), return_exceptions=True
    )

    outcomes = [a.outcome if isinstance(a, xp_pb2.RecordActivityResponse) else a for a in answers]
    assert outcomes[:2] == [xp_pb2.ACTIVITY_OUTCOME_AWARDED] * 2
    assert outcomes[3] == xp_pb2.ACTIVITY_OUTCOME_AWARDED
    assert isinstance(outcomes[2], grpc.aio.AioRpcError)
    assert outcomes[2].code() == grpc.StatusCode.INVALID_ARGUMENT
    # The shared call was refused whole; each of its activities then went on its own.
    assert xp.calls == {"RecordActivity": 4, "RecordActivities": 1}


async def test_a_storm_of_deliveries_through_one_call_at_a_time_counts_each_once(
    xp_addr: str, community_id: str
) -> None:
    # One call out at a time: most of the storm waits and goes to xp in shared calls.
    settings = gateway_settings(xp_addr, whop_webhook_secret=SECRET, webhook_xp_calls=1)
    user = new_id("user")
    envelopes = [chat_message_created(community_id, user) for _ in range(6)]
    async with serve(settings, headers=bearer(settings, platform_admin=True)) as gateway:
        # Each delivery twice at once: one of the two is the duplicate, wherever it lands.
        responses = await asyncio.gather(*(deliver(gateway, e) for e in envelopes + envelopes))

        card = (await member(gateway, community_id, user)).json()
    assert sorted(r.json()["status"] for r in responses) == ["awarded"] * 6 + ["duplicate"] * 6
    assert (card["xp"], card["totals"]["messages"]) == (120, 6)


async def test_a_call_returning_to_few_waiting_holds_its_place_for_the_answered_to_join(
    xp: CountingXp, community_id: str
) -> None:
    # A long hold, so that the deliveries answered by a call are surely back within it.
    sender = ActivitySender(xp, max_in_flight=1, max_batch=100, hold=0.5)  # type: ignore[arg-type]
    first, b, c, d, e = (message(community_id, new_id("user")) for _ in range(5))

    async def then(one: xp_pb2.Activity, next_one: xp_pb2.Activity) -> list[int]:
        # A sender that sends its next delivery as soon as the last one is answered.
        return [(await sender.record(one)).outcome, (await sender.record(next_one)).outcome]

    alone, pair, other_pair = await asyncio.gather(sender.record(first), then(b, d), then(c, e))

    assert alone.outcome == xp_pb2.ACTIVITY_OUTCOME_AWARDED
    assert pair == other_pair == [xp_pb2.ACTIVITY_OUTCOME_AWARDED] * 2
    # The first went alone (a call of one never holds); b and c, which came while it was
    # out, together; d and e came back while that call held its place and left together.
    # Without the hold d left alone the moment b and c were answered, and e after it.
    assert xp.calls == {"RecordActivity": 1, "RecordActivities": 2}
