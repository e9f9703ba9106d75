"""Billing through the gateway: an owner checks out, Stripe's signed webhook arrives at
`POST /webhooks/stripe`, and the premium route opens, against real gateway, billing and xp
processes in-process, Postgres, NATS, and a local server speaking Stripe's API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from tests.support.stripe import API_KEY, WEBHOOK_SECRET, FakeStripe, StripeServer, event, sign
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_billing.config import BillingSettings
from wee5_billing.models import StripeEvent
from wee5_billing.server import build as build_billing
from wee5_gateway.config import GatewaySettings
from wee5_gateway.db.models import AuditEntry
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub

Sessions = async_sessionmaker[AsyncSession]
Client = httpx.AsyncClient
PROBLEM = "application/problem+json"
SUCCESS = "https://app.example.test/billing/done"
CANCEL = "https://app.example.test/billing/cancel"


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with StripeServer() as fake:
        yield fake


def billing_settings(stripe: FakeStripe | None) -> BillingSettings:
    configured: dict[str, Any] = (
        {
            "stripe_secret_key": API_KEY,
            "stripe_api_base": stripe.base_url,
            "stripe_price_premium_monthly": "price_premium_monthly",
            "stripe_price_premium_yearly": "price_premium_yearly",
            "stripe_max_network_retries": 0,
        }
        if stripe
        else {}
    )
    return BillingSettings(
        billing_addr=f"127.0.0.1:{free_port()}",
        stripe_webhook_secret=WEBHOOK_SECRET,
        **configured,
    )


@pytest.fixture(scope="module")
async def xp_addr(database_url: str, redis: Redis, bus: EventBus) -> AsyncIterator[str]:
    addr = f"127.0.0.1:{free_port()}"
    server = await build_xp(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    await server.start()
    yield addr
    await server.stop()


@pytest.fixture(scope="module")
async def billing_addr(database_url: str, bus: EventBus, stripe: FakeStripe) -> AsyncIterator[str]:
    settings = billing_settings(stripe)
    server = await build_billing(settings)
    await server.start()
    yield settings.billing_addr
    await server.stop()


@pytest.fixture
def settings(xp_addr: str, billing_addr: str) -> GatewaySettings:
    return gateway_settings(xp_addr, billing_addr=billing_addr)


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[Client]:
    async with serve(settings) as client:
        yield client


def base(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


async def post_webhook(
    gateway: Client, body: bytes, signature: str | None = None
) -> httpx.Response:
    return await gateway.post(
        "/webhooks/stripe",
        content=body,
        headers={
            "content-type": "application/json",
            "stripe-signature": sign(body) if signature is None else signature,
        },
    )


async def start_checkout(
    gateway: Client, community_id: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    payload = {
        "plan": "premium",
        "interval": "monthly",
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        **body,
    }
    return await gateway.post(f"{base(community_id)}/checkout", json=payload, headers=headers)


async def test_checkout_then_stripe_confirmation_unlocks_analytics_through_the_gateway(
    gateway: Client,
    settings: GatewaySettings,
    stripe: FakeStripe,
    sessionmaker: Sessions,
    community_id: str,
) -> None:
    owner_id = await new_account(sessionmaker, community_id, "owner", member_user_id="user_boss")
    owner = bearer(settings, owner_id)
    admin = bearer(settings, await new_account(sessionmaker, community_id, "admin"))
    locked = await gateway.get(f"{base(community_id)}/analytics", headers=admin)
    assert assert_problem(locked, 402)["required_plan"] == "premium"

    started = await start_checkout(gateway, community_id, owner)

    assert started.status_code == 201, started.text
    checkout = started.json()
    assert checkout["url"] == f"https://checkout.stripe.com/c/pay/{checkout['session_id']}"
    metadata = stripe.sessions[checkout["session_id"]]["metadata"]
    assert metadata["owner_account_id"] == str(owner_id)
    assert metadata["owner_user_id"] == "user_boss"
    # Nothing unlocks before Stripe confirms.
    assert (await gateway.get(f"{base(community_id)}/analytics", headers=admin)).status_code == 402

    session, subscription = stripe.complete_checkout(checkout["session_id"])
    delivered = await post_webhook(gateway, event("checkout.session.completed", session))

    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["status"] == "processed"
    unlocked = await gateway.get(f"{base(community_id)}/analytics", headers=admin)
    assert unlocked.status_code == 200, unlocked.text
    shown = await gateway.get(f"{base(community_id)}/subscription", headers=admin)
    assert shown.status_code == 200, shown.text
    period_end = subscription["items"]["data"][0]["current_period_end"]
    view = shown.json()
    assert {k: view[k] for k in ("plan", "source", "status", "subscribed_plan", "interval")} == {
        "plan": "premium",
        "source": "stripe",
        "status": "active",
        "subscribed_plan": "premium",
        "interval": "monthly",
    }
    assert view["current_period_end"].startswith(
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(period_end))
    )
    async with sessionmaker() as s:
        audit = list(
            await s.scalars(
                select(AuditEntry).where(
                    AuditEntry.community_id == community_id,
                    AuditEntry.action == "billing.checkout_started",
                )
            )
        )
    assert [(a.actor_account_id, a.after) for a in audit] == [
        (owner_id, {"plan": "premium", "interval": "monthly", "session_id": checkout["session_id"]})
    ]


async def completed_checkout(
    gateway: Client,
    settings: GatewaySettings,
    stripe: FakeStripe,
    sessionmaker: Sessions,
    community_id: str,
) -> bytes:
    """The `checkout.session.completed` event of a checkout the community's owner started
    and Stripe completed."""
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    started = (await start_checkout(gateway, community_id, owner)).json()
    session, _ = stripe.complete_checkout(started["session_id"])
    return event("checkout.session.completed", session)


async def test_a_redelivered_webhook_answers_duplicate(
    gateway: Client,
    settings: GatewaySettings,
    stripe: FakeStripe,
    sessionmaker: Sessions,
    community_id: str,
) -> None:
    body = await completed_checkout(gateway, settings, stripe, sessionmaker, community_id)

    first = await post_webhook(gateway, body)
    second = await post_webhook(gateway, body)

    assert (first.json()["status"], second.json()["status"]) == ("processed", "duplicate")
    assert first.json()["event_id"] == second.json()["event_id"] == json.loads(body)["id"]


@pytest.mark.parametrize("signature", ["t=1,v1=deadbeef", "", "garbage"])
async def test_a_bad_stripe_signature_answers_400_and_changes_nothing(
    gateway: Client,
    settings: GatewaySettings,
    stripe: FakeStripe,
    sessionmaker: Sessions,
    community_id: str,
    signature: str,
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    started = (await start_checkout(gateway, community_id, owner)).json()
    session, _ = stripe.complete_checkout(started["session_id"])
    body = event("checkout.session.completed", session)

    response = await post_webhook(gateway, body, signature)

    problem = assert_problem(response, 400)
    assert "signature" in problem["detail"].lower()
    plan = await gateway.get(f"{base(community_id)}/subscription", headers=owner)
    assert plan.json()["plan"] == "free"
    async with sessionmaker() as s:
        assert await s.get(StripeEvent, json.loads(body)["id"]) is None


async def test_checkout_is_for_owners_with_valid_urls(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    admin = bearer(settings, await new_account(sessionmaker, community_id, "admin"))

    assert_problem(await start_checkout(gateway, community_id, admin), 403)
    bad_url = assert_problem(
        await start_checkout(gateway, community_id, owner, success_url="javascript:alert(1)"), 400
    )
    free = assert_problem(await start_checkout(gateway, community_id, owner, plan="free"), 400)
    unsold = assert_problem(
        await start_checkout(gateway, community_id, owner, plan="enterprise", interval="yearly"),
        409,
    )

    assert "success_url" in bad_url["detail"]
    assert "plan" in free["detail"]
    assert "WEE5_STRIPE_PRICE_ENTERPRISE_YEARLY" in unsold["detail"]


async def test_the_portal_opens_for_the_owner_who_pays_only(
    gateway: Client,
    settings: GatewaySettings,
    stripe: FakeStripe,
    sessionmaker: Sessions,
    community_id: str,
) -> None:
    payer = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    co_owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    never_paid = assert_problem(
        await gateway.post(f"{base(community_id)}/billing-portal", json={}, headers=payer), 409
    )
    # The body is optional.
    assert_problem(await gateway.post(f"{base(community_id)}/billing-portal", headers=payer), 409)
    started = (await start_checkout(gateway, community_id, payer)).json()
    session, _ = stripe.complete_checkout(started["session_id"])
    await post_webhook(gateway, event("checkout.session.completed", session))

    opened = await gateway.post(
        f"{base(community_id)}/billing-portal", json={"return_url": SUCCESS}, headers=payer
    )
    refused = await gateway.post(f"{base(community_id)}/billing-portal", json={}, headers=co_owner)

    assert "no subscription" in never_paid["detail"]
    assert opened.status_code == 201, opened.text
    assert opened.json()["url"].startswith("https://billing.stripe.com/p/session/")
    assert_problem(refused, 403)


async def test_a_change_billing_announces_drops_the_cached_entitlements(
    gateway: Client,
    settings: GatewaySettings,
    billing_addr: str,
    sessionmaker: Sessions,
    community_id: str,
) -> None:
    """Set elsewhere (another replica, the billing checks): the gateway hears
    billing.subscription.changed and asks billing again, long before its 30 s cache ends."""
    admin = bearer(settings, await new_account(sessionmaker, community_id, "admin"))
    assert (await gateway.get(f"{base(community_id)}/analytics", headers=admin)).status_code == 402
    async with channel(billing_addr) as chan:
        stub: BillingServiceAsyncStub = billing_pb2_grpc.BillingServiceStub(chan)
        await stub.SetCommunityPlan(
            billing_pb2.SetCommunityPlanRequest(
                community_id=community_id,
                plan=billing_pb2.PLAN_PREMIUM,
                admin_user_id="ops",
                reason="set outside this gateway",
            )
        )

    status = 402
    async with asyncio.timeout(10):
        while status == 402:
            await asyncio.sleep(0.05)
            status = (
                await gateway.get(f"{base(community_id)}/analytics", headers=admin)
            ).status_code
    assert status == 200
    assert settings.entitlements_cache_seconds >= 30


async def test_without_stripe_settings_its_routes_answer_503_and_the_rest_works_on_free(
    xp_addr: str, database_url: str, bus: EventBus, sessionmaker: Sessions, community_id: str
) -> None:
    unconfigured = BillingSettings(billing_addr=f"127.0.0.1:{free_port()}")
    server = await build_billing(unconfigured)
    await server.start()
    try:
        settings = gateway_settings(xp_addr, billing_addr=unconfigured.billing_addr)
        owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
        async with serve(settings) as gateway:
            checkout = await start_checkout(gateway, community_id, owner)
            portal = await gateway.post(
                f"{base(community_id)}/billing-portal", json={}, headers=owner
            )
            shown = await gateway.get(f"{base(community_id)}/subscription", headers=owner)
            plans = await gateway.get("/api/v1/plans")
            body = event("customer.subscription.created", {"id": "sub_test_x"})
            webhook = await post_webhook(gateway, body)
    finally:
        await server.stop()

    problem = assert_problem(checkout, 503)
    assert problem["title"] == "Stripe is not configured"
    assert "WEE5_STRIPE_SECRET_KEY" in problem["detail"]
    assert assert_problem(portal, 503)["title"] == "Stripe is not configured"
    assert shown.status_code == 200
    assert (shown.json()["plan"], shown.json()["source"]) == ("free", "free")
    assert plans.status_code == 200
    assert all(plan["prices"] == [] for plan in plans.json()["plans"])
    assert "WEE5_STRIPE_WEBHOOK_SECRET" in assert_problem(webhook, 503)["detail"]


@pytest.mark.parametrize(
    ("route", "content", "headers"),
    [
        ("checkout", b"not json", {}),
        ("checkout", b'{"plan": "premium"}', {}),
        (
            "checkout",
            b'{"plan": "premium", "interval": "weekly", "success_url": "https://a.test/x", "cancel_url": "https://a.test/y"}',
            {},
        ),
        (
            "checkout",
            b'{"plan": "premium", "interval": "monthly", "success_url": "https://a.test/x", "cancel_url": "https://a.test/y", "coupon": "FREE"}',
            {},
        ),
        (
            "checkout",
            b'{"plan": "premium", "interval": "monthly", "success_url": "https://a.test/x", "cancel_url": "https://a.test/y"}',
            {"idempotency-key": "k" * 201},
        ),
        ("billing-portal", b"[]", {}),
        ("billing-portal", b'{"return_url": "ftp://files.test/x"}', {}),
    ],
)
async def test_malformed_billing_requests_answer_400(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    community_id: str,
    route: str,
    content: bytes,
    headers: dict[str, str],
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))

    response = await gateway.post(
        f"{base(community_id)}/{route}",
        content=content,
        headers={**owner, "content-type": "application/json", **headers},
    )

    assert_problem(response, 400)


async def test_plans_list_the_prices_that_can_be_bought(gateway: Client) -> None:
    plans = {plan["plan"]: plan for plan in (await gateway.get("/api/v1/plans")).json()["plans"]}

    assert plans["free"]["prices"] == []
    assert plans["premium"]["prices"] == [
        {"interval": "monthly", "amount_minor": 1900, "currency": "usd"},
        {"interval": "yearly", "amount_minor": 19000, "currency": "usd"},
    ]
    # No enterprise price is configured in this test: it is not offered.
    assert plans["enterprise"]["prices"] == []


async def test_a_webhook_without_a_signature_header_is_400(gateway: Client) -> None:
    response = await gateway.post("/webhooks/stripe", content=b"{}")

    assert "Stripe-Signature" in assert_problem(response, 400)["detail"]


async def test_new_routes_are_in_the_openapi_document(gateway: Client) -> None:
    paths = (await gateway.get("/schema/openapi.json")).json()["paths"]
    community = "/api/v1/communities/{community_id}"

    assert "post" in paths[f"{community}/checkout"]
    assert "post" in paths[f"{community}/billing-portal"]
    assert "get" in paths[f"{community}/subscription"]
    assert "post" in paths["/webhooks/stripe"]
