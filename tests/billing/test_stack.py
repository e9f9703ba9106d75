"""End to end: the real processes started as `make up` starts them, with Stripe's settings in
the environment pointing at a local server speaking Stripe's API; a checkout over HTTP, the
signed webhook over HTTP, the premium route unlocked, and the daily task run as a CronJob
runs it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.gateway import bearer
from tests.support.stack import Stack, start_stack, stop_stack
from tests.support.stripe import API_KEY, WEBHOOK_SECRET, FakeStripe, StripeServer, event, sign
from wee5_gateway.config import GatewaySettings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with StripeServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(
    database_url: str,
    test_env: dict[str, str],
    stripe: FakeStripe,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = start_stack(
        test_env,
        tmp_path_factory.mktemp("billing-e2e"),
        WEE5_STRIPE_SECRET_KEY=API_KEY,
        WEE5_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        WEE5_STRIPE_API_BASE=stripe.base_url,
        WEE5_STRIPE_PRICE_PREMIUM_MONTHLY="price_premium_monthly",
    )
    yield stack
    stop_stack(stack)


async def test_a_paid_checkout_unlocks_analytics_across_the_real_processes(
    stack: Stack, stripe: FakeStripe, community_id: str
) -> None:
    admin = bearer(GatewaySettings(), platform_admin=True)
    base = f"/api/v1/communities/{community_id}"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10, headers=admin) as http:
        assert (await http.get(f"{base}/analytics")).status_code == 402
        started = await http.post(
            f"{base}/checkout",
            json={
                "plan": "premium",
                "interval": "monthly",
                "success_url": "https://app.example.test/done",
                "cancel_url": "https://app.example.test/cancel",
            },
        )
        assert started.status_code == 201, started.text
        session, _ = stripe.complete_checkout(started.json()["session_id"])
        body = event("checkout.session.completed", session)
        delivered = await http.post(
            "/webhooks/stripe",
            content=body,
            headers={"content-type": "application/json", "stripe-signature": sign(body)},
        )
        assert delivered.status_code == 200, delivered.text
        unlocked = await http.get(f"{base}/analytics")
        subscription = await http.get(f"{base}/subscription")

    assert unlocked.status_code == 200, unlocked.text
    assert (subscription.json()["plan"], subscription.json()["status"]) == ("premium", "active")


async def test_the_billing_checks_task_runs_against_the_stack(stack: Stack) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wee5_billing.tasks",
        "billing-checks",
        env={**os.environ, **stack.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()

    assert process.returncode == 0, output.decode()
    report = json.loads(output.decode().strip().splitlines()[-1])
    assert report["reconciled"] is True
    assert report["stripe_subscriptions"] >= 1
