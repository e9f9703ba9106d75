"""Applying rewards through Whop exactly once: real Postgres, real HTTP to a local server
speaking Whop's API, a real gRPC xp answering GetMembership."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.rewards.conftest import XpMemberships, eventually
from tests.support.whop_api import FakeWhop
from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2_grpc
from wee5_kit.events import Outbox, new_meta
from wee5_kit.grpc import channel
from wee5_rewards.delivery import NO_KEY, RetryPolicy, RewardDelivery, promo_code_for
from wee5_rewards.memberships import Memberships
from wee5_rewards.models import Reward, RewardAttempt, outbox
from wee5_rewards.service import RewardsService
from wee5_rewards.whop import WhopClient

Sessions = async_sessionmaker[AsyncSession]
FAST = RetryPolicy(
    max_attempts=4, base_seconds=0.05, max_seconds=0.2, lease_seconds=5.0,
    membership_recheck_seconds=0.2, poll_seconds=0.05,
)  # fmt: skip
TERMINAL = {"granted", "dead"}


@pytest.fixture
async def make_delivery(
    sessionmaker: Sessions, memberships_xp: XpMemberships, whop: FakeWhop
) -> AsyncIterator[Callable[..., RewardDelivery]]:
    xp_channel = channel(memberships_xp.address)
    clients: list[WhopClient] = []

    def make(
        policy: RetryPolicy = FAST, *, with_key: bool = True, timeout: float = 0.5
    ) -> RewardDelivery:
        client = None
        if with_key:
            client = WhopClient(whop.base_url, whop.api_key, timeout=timeout)
            clients.append(client)
        return RewardDelivery(
            sessionmaker,
            Outbox(outbox),
            Memberships(xp_pb2_grpc.XpServiceStub(xp_channel), timeout=2.0),
            client,
            policy,
        )

    yield make
    for client in clients:
        await client.close()
    await xp_channel.close(None)


async def level_up(
    sessionmaker: Sessions, community_id: str, user_id: str, from_level: int, to_level: int
) -> None:
    event = events_pb2.LevelUp(
        meta=new_meta(community_id), user_id=user_id, from_level=from_level, to_level=to_level
    )
    async with sessionmaker.begin() as session:
        await RewardsService().record_level_up(session, event)


async def rewards_of(sessionmaker: Sessions, community_id: str) -> list[Reward]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Reward).where(Reward.community_id == community_id).order_by(Reward.level)
        )
        return list(rows)


async def attempts_of(sessionmaker: Sessions, reward_id: int) -> list[tuple[int, str | None]]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(RewardAttempt)
            .where(RewardAttempt.reward_id == reward_id)
            .order_by(RewardAttempt.number)
        )
        return [(row.number, row.outcome) for row in rows]


async def deliver_until(
    delivery: RewardDelivery,
    sessionmaker: Sessions,
    community_id: str,
    statuses: set[str] = TERMINAL,
    within: float = 20.0,
) -> list[Reward]:
    """Runs the worker until every reward of the community is in one of `statuses`."""

    async def settled() -> bool:
        await delivery.deliver_due()
        rows = await rewards_of(sessionmaker, community_id)
        return bool(rows) and all(row.status in statuses for row in rows)

    await eventually(settled, within)
    return await rewards_of(sessionmaker, community_id)


async def granted_events(sessionmaker: Sessions, community_id: str) -> list[str]:
    async with sessionmaker() as session:
        payloads = await session.scalars(
            select(outbox.c.payload).where(outbox.c.subject == "rewards.granted")
        )
        events = [events_pb2.RewardGranted.FromString(p) for p in payloads]
    return sorted(f"{e.user_id}:{e.level}" for e in events if e.meta.community_id == community_id)


async def member(
    whop: FakeWhop, memberships_xp: XpMemberships, community_id: str, user_id: str
) -> str:
    membership_id = whop.add_membership(company_id="biz_rewards")
    await memberships_xp.link(community_id, user_id, membership_id, "biz_rewards")
    return membership_id


async def test_every_default_level_reward_is_applied_exactly_once(
    sessionmaker: Sessions,
    whop: FakeWhop,
    memberships_xp: XpMemberships,
    make_delivery: Callable[..., RewardDelivery],
    community_id: str,
) -> None:
    membership_id = await member(whop, memberships_xp, community_id, "u1")
    end_before = whop.period_end(membership_id)
    await level_up(sessionmaker, community_id, "u1", 1, 100)
    delivery = make_delivery()

    rows = await deliver_until(delivery, sessionmaker, community_id)
    for _ in range(3):  # more passes find nothing left to do
        await delivery.deliver_due()

    assert [(r.level, r.kind, r.status, r.attempts) for r in rows] == [
        (5, "free_days", "granted", 1),
        (10, "free_days", "granted", 1),
        (25, "free_days", "granted", 1),
        (50, "free_days", "granted", 1),
        (100, "discount_code", "granted", 1),
    ]
    days = [call.body["free_days"] for call in whop.applications("add_free_days")]
    assert sorted(days) == [3, 7, 14, 30]
    assert whop.period_end(membership_id) - end_before == timedelta(days=54)
    [promo] = whop.promo_codes
    code = promo_code_for(community_id, "u1", 100)
    assert (promo["code"], promo["promo_type"], promo["amount_off"]) == (code, "percentage", 50)
    assert promo["company_id"] == "biz_rewards"
    assert rows[-1].code == code
    assert rows[-1].provider_ref == promo["id"]
    for call in whop.calls:
        assert call.headers["authorization"] == f"Bearer {whop.api_key}"
    for call in [c for c in whop.calls if c.method == "POST"]:
        assert call.headers["idempotency-key"].startswith("wee5-reward-")
    assert await granted_events(sessionmaker, community_id) == [
        "u1:10", "u1:100", "u1:25", "u1:5", "u1:50"
    ]  # fmt: skip


async def test_whop_500_then_success_grants_once(
    sessionmaker: Sessions,
    whop: FakeWhop,
    memberships_xp: XpMemberships,
    make_delivery: Callable[..., RewardDelivery],
    community_id: str,
) -> None:
    membership_id = await member(whop, memberships_xp, community_id, "u1")
    end_before = whop.period_end(membership_id)
    whop.script["add_free_days"] = ["500"]
    await level_up(sessionmaker, community_id, "u1", 4, 5)

    [reward] = await deliver_until(make_delivery(), sessionmaker, community_id)

    assert (reward.status, reward.attempts) == ("granted", 2)
    assert len(whop.applications("add_free_days")) == 1
    assert whop.period_end(membership_id) - end_before == timedelta(days=3)
    # The 500 left the outcome open; the next attempt checked and found nothing applied.
    assert await attempts_of(sessionmaker, reward.id) == [(1, "not_applied"), (2, "granted")]


async def test_timeout_after_whop_applied_the_days_still_grants_once(
    sessionmaker: Sessions,
    whop: FakeWhop,
    memberships_xp: XpMemberships,
    make_delivery: Callable[..., RewardDelivery],
    community_id: str,
) -> None:
    membership_id = await member(whop, memberships_xp, community_id, "u1")
    end_before = whop.period_end(membership_id)
    whop.script["add_free_days"] = ["timeout_after_apply"]
    whop.late_seconds = 2.0
    await level_up(sessionmaker, community_id, "u1", 4, 5)

    [reward] = await deliver_until(make_delivery(timeout=0.3), sessionmaker, community_id)

    assert reward.status == "granted"
    assert len(whop.applications("add_free_days")) == 1
    assert whop.period_end(membership_id) - end_before == timedelta(days=3)
    assert await attempts_of(sessionmaker, reward.id) == [(1, "applied"), (2, "already_applied")]


async def test_discount_code_created_before_a_timeout_is_found_not_created_twice(
    sessionmaker: Sessions,
    whop: FakeWhop,
    memberships_xp: XpMemberships,
    make_delivery: Callable[..., RewardDelivery],
    community_id: str,
) -> None:
    await member(whop, memberships_xp, community_id, "u1")
    whop.script["create_promo"] = ["timeout_after_apply"]
    whop.late_seconds = 2.0
    await level_up(sessionmaker, community_id, "u1", 99, 100)

    [reward] = await deliver_until(make_delivery(timeout=0.3), sessionmaker, community_id)

    [promo] = whop.promo_codes
    assert (reward.status, reward.provider_ref, reward.code) == (
        "granted",
        promo["id"],
        promo["code"],
    )
    assert len(whop.applications("create_promo")) == 1


async def test_whop_down_past_the_retry_budget_is_dead_then_an_admin_retry_grants_once(
    sessionmaker: Sessions,
    whop: FakeWhop,
    memberships_xp: XpMemberships,
    make_delivery: Callable[..., RewardDelivery],
    community_id: str,
) -> None:
    membership_id = await member(whop, memberships_xp, community_id, "u1")
    end_before = whop.period_end(membership_id)
    whop.down = True
    await level_up(sessionmaker, community_id, "u1", 4, 5)
    delivery = make_delivery()

    [dead] = await deliver_until(delivery, sessionmaker, community_id)
    assert (dead.status, dead.attempts) == ("dead", FAST.max_attempts)
    assert "503" in (dead.last_error or "")
    assert whop.applications("add_free_days") == []

    whop.down = False
    async with sessionmaker.begin() as session:
        retried = await RewardsService().retry(session, community_id, dead.id)
    assert retried.status == "pending"
    [reward] = await deliver_until(delivery, sessionmaker, community_id)

    assert (reward.status, reward.attempts) == ("granted", FAST.max_attempts + 1)
    assert len(whop.applications("add_free_days")) == 1
    assert whop.period_end(membership_id) - end_before == timedelta(days=3)


async def test_without_a_whop_key_rewards_wait_visibly_and_resume_once_a_key_is_set(
    sessionmaker: Sessions,
    whop: FakeWhop,
    memberships_xp: XpMemberships,
    make_delivery: Callable[..., RewardDelivery],
    community_id: str,
) -> None:
    await member(whop, memberships_xp, community_id, "u1")
    await level_up(sessionmaker, community_id, "u1", 4, 5)

    [waiting] = await deliver_until(
        make_delivery(with_key=False), sessionmaker, community_id, {"waiting"}
    )
    assert (waiting.last_error, waiting.attempts) == (NO_KEY, 0)
    assert whop.calls == []

    worker = asyncio.create_task(make_delivery().run())  # a process started with a key
    try:

        async def granted() -> bool:
            return [r.status for r in await rewards_of(sessionmaker, community_id)] == ["granted"]

        await eventually(granted)
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    assert len(whop.applications("add_free_days")) == 1


async def test_a_member_without_a_known_membership_waits_for_it(
    sessionmaker: Sessions,
    whop: FakeWhop,
    memberships_xp: XpMemberships,
    make_delivery: Callable[..., RewardDelivery],
    community_id: str,
) -> None:
    await level_up(sessionmaker, community_id, "u1", 4, 5)
    delivery = make_delivery()

    [waiting] = await deliver_until(delivery, sessionmaker, community_id, {"waiting_membership"})
    assert waiting.attempts == 0
    assert whop.calls == []

    await member(whop, memberships_xp, community_id, "u1")  # xp learns it from a webhook
    [reward] = await deliver_until(delivery, sessionmaker, community_id)
    assert reward.status == "granted"
    assert len(whop.applications("add_free_days")) == 1


async def test_two_workers_at_once_apply_each_reward_once(
    sessionmaker: Sessions,
    whop: FakeWhop,
    memberships_xp: XpMemberships,
    make_delivery: Callable[..., RewardDelivery],
    community_id: str,
) -> None:
    users = [f"u{i}" for i in range(8)]
    for user in users:
        await member(whop, memberships_xp, community_id, user)
        await level_up(sessionmaker, community_id, user, 1, 11)
    first, second = make_delivery(), make_delivery()

    async def settled() -> bool:
        await asyncio.gather(first.deliver_due(), second.deliver_due())
        rows = await rewards_of(sessionmaker, community_id)
        return all(row.status == "granted" for row in rows)

    await eventually(settled)

    applied = sorted(call.path for call in whop.applications("add_free_days"))
    assert len(applied) == len(set(applied)) * 2 == len(users) * 2
