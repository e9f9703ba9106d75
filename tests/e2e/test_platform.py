"""End to end: the six real processes started the way `make up` starts them (scripts/up.py),
signed Whop webhooks over real HTTP, and assertions on the leaderboard, the ledger and the
reward row.

Two stacks run: one with the default 60 s cooldown, one with cooldown 0 to climb levels fast.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.gateway import bearer
from tests.support.stack import SECRET, SERVICES, Stack, start_stack, stop_stack
from tests.support.whop import (
    chat_message_created,
    chat_reaction_created,
    sign_legacy,
    sign_standard,
)
from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5_gateway.config import GatewaySettings
from wee5_kit.grpc import channel
from wee5_rewards.models import Reward
from wee5_xp.models import LedgerEntry

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(
    database_url: str, test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    # Each assertion reads what the step before wrote: no second of shared board answers
    # (tests/gateway/test_public_boards.py covers those).
    stack = start_stack(test_env, tmp_path_factory.mktemp("e2e"), WEE5_SHARED_READ_SECONDS="0")
    yield stack
    stop_stack(stack)


@pytest.fixture(scope="module")
def fast_stack(
    database_url: str, test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = start_stack(
        test_env,
        tmp_path_factory.mktemp("e2e"),
        WEE5_XP_COOLDOWN_SECONDS="0",
        WEE5_SHARED_READ_SECONDS="0",
    )
    yield stack
    stop_stack(stack)


def platform_admin() -> dict[str, str]:
    # Webhooks need no credentials; reading the results back does.
    return bearer(GatewaySettings(), platform_admin=True)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.base_url, timeout=10, headers=platform_admin()
    ) as client:
        yield client


@pytest.fixture
async def fast_http(fast_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=fast_stack.base_url, timeout=10, headers=platform_admin()
    ) as client:
        yield client


def signed(
    payload: dict[str, object], webhook_id: str | None = None, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    headers = sign_standard(
        SECRET, body, webhook_id or f"msg_{uuid.uuid4().hex}", timestamp or int(time.time())
    )
    return body, {**headers, "content-type": "application/json"}


async def deliver(
    client: httpx.AsyncClient, payload: dict[str, object], webhook_id: str | None = None
) -> httpx.Response:
    body, headers = signed(payload, webhook_id)
    return await client.post("/webhooks/whop", content=body, headers=headers)


def named(user: str) -> dict[str, object]:
    """The profile a board shows for `user`, from the `user` object of the messages the tests
    send (tests/support/whop.py)."""
    short = user.removeprefix("user_")
    return {"display_name": f"Member {short}", "username": f"member_{short}", "avatar_url": None}


async def leaderboard(client: httpx.AsyncClient, community_id: str) -> list[dict[str, object]]:
    reply = await client.get(f"/api/v1/communities/{community_id}/leaderboard")
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, object]] = reply.json()["entries"]
    return entries


async def ledger_total(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str, user_id: str
) -> int:
    async with sessionmaker() as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.delta), 0)).where(
                LedgerEntry.community_id == community_id, LedgerEntry.user_id == user_id
            )
        )
    return int(total or 0)


async def test_signed_chat_message_puts_its_author_on_the_leaderboard_once(
    http: httpx.AsyncClient, community_id: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    payload = chat_message_created(experience_id=community_id, user_id="user_alice")
    statuses = [
        (await deliver(http, payload, webhook_id="msg_e2e_once_" + community_id)).status_code
        for _ in range(3)
    ]

    assert statuses == [200, 200, 200]
    assert await leaderboard(http, community_id) == [
        {"rank": 1, "user_id": "user_alice", "xp": 20, "level": 1, **named("user_alice")}
        | {"progress": pytest.approx(0.2), "rank_approximate": False}
    ]
    assert await ledger_total(sessionmaker, community_id, "user_alice") == 20
    card = (await http.get(f"/api/v1/communities/{community_id}/members/user_alice")).json()
    assert (card["xp"], card["level"], card["rank"], card["xp_for_next_level"]) == (20, 1, 1, 100)


async def test_second_message_inside_the_cooldown_earns_nothing(
    http: httpx.AsyncClient, community_id: str
) -> None:
    first = await deliver(
        http, chat_message_created(experience_id=community_id, user_id="user_bob")
    )
    second = await deliver(
        http, chat_message_created(experience_id=community_id, user_id="user_bob")
    )
    reaction = await deliver(
        http, chat_reaction_created(experience_id=community_id, user_id="user_bob")
    )

    assert (first.json()["status"], second.json()["status"], reaction.json()["status"]) == (
        "awarded",
        "skipped",
        "awarded",
    )
    assert await leaderboard(http, community_id) == [
        {"rank": 1, "user_id": "user_bob", "xp": 25, "level": 1, **named("user_bob")}
        | {"progress": pytest.approx(0.25), "rank_approximate": False}
    ]


async def test_bad_and_stale_signatures_are_rejected_and_legacy_ones_accepted(
    http: httpx.AsyncClient, community_id: str
) -> None:
    payload = chat_message_created(experience_id=community_id, user_id="user_carol")
    body, headers = signed(payload)
    bad = await http.post(
        "/webhooks/whop", content=body, headers={**headers, "webhook-signature": "v1,AAAA"}
    )
    stale_body, stale_headers = signed(payload, timestamp=int(time.time()) - 600)
    stale = await http.post("/webhooks/whop", content=stale_body, headers=stale_headers)
    unsigned = await http.post("/webhooks/whop", content=body)

    for reply in (bad, stale, unsigned):
        assert reply.status_code == 401
        assert reply.headers["content-type"].startswith("application/problem+json")
    assert await leaderboard(http, community_id) == []

    legacy = await http.post(
        "/webhooks/whop", content=body, headers=sign_legacy(SECRET, body, int(time.time()))
    )
    assert legacy.status_code == 200, legacy.text
    assert await leaderboard(http, community_id) == [
        {"rank": 1, "user_id": "user_carol", "xp": 20, "level": 1, **named("user_carol")}
        | {"progress": pytest.approx(0.2), "rank_approximate": False}
    ]


async def test_concurrent_deliveries_for_one_member_all_count(
    fast_http: httpx.AsyncClient, community_id: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    payloads = [
        chat_message_created(experience_id=community_id, user_id="user_dave") for _ in range(8)
    ]
    replies = await asyncio.gather(*(deliver(fast_http, payload) for payload in payloads))

    assert [reply.status_code for reply in replies] == [200] * 8
    assert await leaderboard(fast_http, community_id) == [
        {"rank": 1, "user_id": "user_dave", "xp": 160, "level": 2, **named("user_dave")}
        | {"progress": pytest.approx(60 / 155), "rank_approximate": False}
    ]
    assert await ledger_total(sessionmaker, community_id, "user_dave") == 160


async def test_reaching_level_5_gives_exactly_one_reward_waiting_for_a_whop_key(
    fast_http: httpx.AsyncClient,
    fast_stack: Stack,
    community_id: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # Level 5 needs 770 XP: 39 messages of 20 XP, each delivered twice.
    for _ in range(39):
        payload = chat_message_created(experience_id=community_id, user_id="user_erin")
        webhook_id = f"msg_{uuid.uuid4().hex}"
        for _ in range(2):
            assert (await deliver(fast_http, payload, webhook_id)).status_code == 200

    assert await leaderboard(fast_http, community_id) == [
        {"rank": 1, "user_id": "user_erin", "xp": 780, "level": 5, **named("user_erin")}
        | {"progress": pytest.approx(10 / 380), "rank_approximate": False}
    ]

    async def rewards() -> list[Reward]:
        async with sessionmaker() as session:
            return list(
                await session.scalars(select(Reward).where(Reward.community_id == community_id))
            )

    # The stack runs without WEE5_WHOP_API_KEY: the reward is recorded and waits, visibly.
    async with asyncio.timeout(20):
        while [row.status for row in await rewards()] != ["waiting"]:
            await asyncio.sleep(0.1)
    await asyncio.sleep(1)  # any second (wrong) row would have arrived by now
    rows = await rewards()
    assert [(row.user_id, row.level, row.kind, row.free_days, row.status) for row in rows] == [
        ("user_erin", 5, "free_days", 3, "waiting")
    ]
    async with channel(fast_stack.env["WEE5_REWARDS_ADDR"]) as chan:
        listed = await rewards_pb2_grpc.RewardsServiceStub(chan).ListRewards(
            rewards_pb2.ListRewardsRequest(community_id=community_id)
        )
    assert [(r.user_id, r.level, r.status) for r in listed.rewards] == [
        ("user_erin", 5, rewards_pb2.REWARD_STATUS_WAITING)
    ]
    assert "WEE5_WHOP_API_KEY" in listed.rewards[0].last_error


def test_every_service_reports_healthy_through_readyz(stack: Stack) -> None:
    reply = httpx.get(f"{stack.base_url}/readyz", timeout=5)
    assert reply.status_code == 200
    assert set(reply.json()["checks"]) >= {"database", *SERVICES}
