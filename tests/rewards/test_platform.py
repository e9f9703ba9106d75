"""The whole path through the real processes (`make up`'s launcher): a `membership.activated`
webhook tells xp the member's Whop membership, chat webhooks (each delivered twice) level the
member up, and rewards applies levels 5 and 10 at a local server speaking Whop's API, once each;
the gateway's reward ledger shows them granted."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import PLATFORM_ADMIN_ID
from tests.support.stack import SECRET, Stack, start_stack, stop_stack
from tests.support.whop import chat_message_created, membership_event, sign_standard
from tests.support.whop_api import FakeWhop, serving
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.security import AccessTokens


@pytest.fixture
async def whop() -> AsyncIterator[FakeWhop]:
    fake = FakeWhop()
    async with serving(fake, "/api/v1") as url:
        fake.base_url = url
        yield fake


@pytest.fixture
async def stack(
    test_env: dict[str, str], database_url: str, whop: FakeWhop, tmp_path: Path
) -> AsyncIterator[Stack]:
    stack = await asyncio.to_thread(
        start_stack,
        test_env,
        tmp_path,
        WEE5_XP_COOLDOWN_SECONDS="0",
        WEE5_XP_MESSAGE="1000",
        WEE5_WHOP_API_URL=whop.base_url,
        WEE5_WHOP_API_KEY=whop.api_key,
        WEE5_REWARD_BACKOFF_BASE_SECONDS="0.2",
        WEE5_REWARD_POLL_SECONDS="0.2",
    )
    yield stack
    await asyncio.to_thread(stop_stack, stack)


async def deliver(client: httpx.AsyncClient, payload: dict[str, object], webhook_id: str) -> None:
    body = json.dumps(payload).encode()
    headers = sign_standard(SECRET, body, webhook_id, int(time.time()))
    response = await client.post(
        "/webhooks/whop", content=body, headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


async def test_level_rewards_reach_whop_once_through_the_real_processes(
    stack: Stack, whop: FakeWhop
) -> None:
    community_id, company_id = f"exp_{uuid.uuid4().hex[:12]}", f"biz_{uuid.uuid4().hex[:12]}"
    membership_id = whop.add_membership(company_id=company_id)
    end_before = whop.period_end(membership_id)
    tokens = AccessTokens(
        GatewaySettings().jwt_secret.get_secret_value(),  # type: ignore[union-attr]
        timedelta(minutes=5),
    )
    token, _ = tokens.issue(PLATFORM_ADMIN_ID, is_platform_admin=True)
    async with httpx.AsyncClient(
        base_url=stack.base_url, timeout=10, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        activated = membership_event(
            "membership.activated", "user_erin", company_id, membership_id=membership_id
        )
        await deliver(client, activated, f"msg_{uuid.uuid4().hex}")
        for _ in range(4):  # 4 x 1000 XP: level 10
            message = chat_message_created(community_id, "user_erin", company_id=company_id)
            webhook_id = f"msg_{uuid.uuid4().hex}"
            for _ in range(2):
                await deliver(client, message, webhook_id)

        async def ledger() -> list[tuple[int, str]]:
            reply = await client.get(f"/api/v1/communities/{community_id}/rewards")
            assert reply.status_code == 200, reply.text
            return sorted((r["level"], r["status"]) for r in reply.json()["rewards"])

        try:
            async with asyncio.timeout(60):
                while await ledger() != [(5, "granted"), (10, "granted")]:
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(f"{await ledger()}\n{stack.output()}") from None

    assert sorted(c.body["free_days"] for c in whop.applications("add_free_days")) == [3, 7]
    assert whop.period_end(membership_id) - end_before == timedelta(days=10)
