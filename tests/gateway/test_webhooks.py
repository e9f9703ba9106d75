"""The gateway over HTTP against a real xp gRPC server, Postgres and Redis.

Whop deliveries are signed by tests/support/whop.py (by hand, as Whop signs them); every other
downstream service points at a port nothing listens on, so readiness can name it as down.

The app runs in the test's own event loop (httpx's ASGI transport inside `app.lifespan()`), not
through litestar's AsyncTestClient: that one runs the app on a portal thread and blocks the
calling loop for each request, which would starve the in-process xp server of this loop and
serialize the "concurrent" deliveries.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
import structlog
import structlog.testing
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import SECRET, bearer, flush_receipts, gateway_settings, serve
from tests.support.whop import (
    chat_message_created,
    chat_reaction_created,
    membership_event,
    new_id,
    new_secret,
    sign_legacy,
    sign_standard,
)
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_gateway.api.webhooks import controller as webhook_controller
from wee5_gateway.api.webhooks.whop import InvalidPayload, parse_envelope
from wee5_gateway.core import runtime
from wee5_gateway.db.models import WebhookReceipt, WhopExperience
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build

PROBLEM = "application/problem+json"
Client = httpx.AsyncClient


@pytest.fixture(scope="module")
async def xp_addr(database_url: str, redis: Redis, bus: EventBus) -> AsyncIterator[str]:
    """A real xp server (no cooldown, so every message earns). Depends on `redis` and `bus` so
    the test run's keys and streams are cleaned up afterwards."""
    addr = f"127.0.0.1:{free_port()}"
    server = await build(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    await server.start()
    yield addr
    await server.stop()


@pytest.fixture
async def gateway(xp_addr: str) -> AsyncIterator[Client]:
    settings = gateway_settings(xp_addr, whop_webhook_secret=SECRET)
    # Reads need a role; a platform admin has every role, which keeps these tests on webhooks.
    async with serve(settings, headers=bearer(settings, platform_admin=True)) as client:
        yield client


async def deliver(
    client: Client,
    envelope: dict[str, Any],
    *,
    webhook_id: str | None = None,
    secret: str = SECRET,
    timestamp: int | None = None,
) -> httpx.Response:
    body = json.dumps(envelope).encode()
    headers = sign_standard(secret, body, webhook_id or envelope["id"], timestamp)
    return await client.post("/webhooks/whop", content=body, headers=headers)


async def leaderboard(client: Client, community_id: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/api/v1/communities/{community_id}/leaderboard", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def member(client: Client, community_id: str, user_id: str) -> httpx.Response:
    return await client.get(f"/api/v1/communities/{community_id}/members/{user_id}")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["type"]
    assert problem["instance"] == response.request.url.path
    return problem


async def test_signed_chat_message_awards_20_xp_shown_on_the_leaderboard(
    gateway: Client, community_id: str
) -> None:
    user = new_id("user")

    response = await deliver(gateway, chat_message_created(community_id, user))

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "awarded"}
    assert await leaderboard(gateway, community_id) == {
        "community_id": community_id,
        "period": "all",
        "period_start": None,
        "entries": [
            {
                "rank": 1,
                "user_id": user,
                "xp": 20,
                "level": 1,
                # From the message's `user` object (tests/support/whop.py).
                "display_name": f"Member {user.removeprefix('user_')}",
                "username": f"member_{user.removeprefix('user_')}",
                "avatar_url": None,
                "progress": pytest.approx(0.2),
                "rank_approximate": False,
            }
        ],
        "next_cursor": None,
        "me": None,
        "me_cursor": None,
        # The all-time board has no past days to go back to.
        "earliest_day": None,
        # True while xp builds the new board in Redis and answers from Postgres.
        "updating": ANY,
    }


async def test_signed_reaction_awards_reaction_xp_to_the_reacting_member(
    gateway: Client, community_id: str
) -> None:
    reactor, author = new_id("user"), new_id("user")

    response = await deliver(
        gateway, chat_reaction_created(community_id, reactor, author_id=author)
    )

    assert response.json() == {"status": "awarded"}
    card = (await member(gateway, community_id, reactor)).json()
    assert card["xp"] == 5
    assert card["totals"]["reactions"] == 1
    assert (await member(gateway, community_id, author)).status_code == 404


async def test_redelivered_webhook_counts_once(
    gateway: Client, community_id: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    user = new_id("user")
    envelope = chat_message_created(community_id, user)

    statuses = [(await deliver(gateway, envelope)).json()["status"] for _ in range(3)]

    assert statuses == ["awarded", "duplicate", "duplicate"]
    assert (await leaderboard(gateway, community_id))["entries"][0]["xp"] == 20
    await flush_receipts(gateway)
    async with sessionmaker() as session:
        receipts = (
            await session.scalars(
                select(WebhookReceipt).where(WebhookReceipt.webhook_id == envelope["id"])
            )
        ).all()
    assert [(r.provider, r.event_type, r.outcome) for r in receipts] == [
        ("whop", "chat.message.created", "awarded")
    ]


async def test_concurrent_deliveries_for_one_member_all_count(
    gateway: Client, community_id: str
) -> None:
    user = new_id("user")
    envelopes = [chat_message_created(community_id, user) for _ in range(5)]

    responses = await asyncio.gather(*(deliver(gateway, e) for e in envelopes))

    assert [r.json() for r in responses] == [{"status": "awarded"}] * 5
    card = (await member(gateway, community_id, user)).json()
    assert card["xp"] == 100
    assert card["totals"]["messages"] == 5


async def test_concurrent_redeliveries_of_one_webhook_count_once(
    gateway: Client, community_id: str
) -> None:
    user = new_id("user")
    envelope = chat_message_created(community_id, user)

    responses = await asyncio.gather(*(deliver(gateway, envelope) for _ in range(4)))

    assert sorted(r.json()["status"] for r in responses) == ["awarded"] + ["duplicate"] * 3
    assert (await member(gateway, community_id, user)).json()["xp"] == 20


async def test_member_card_has_the_rank_card_fields(gateway: Client, community_id: str) -> None:
    user = new_id("user")
    await deliver(gateway, chat_message_created(community_id, user))

    response = await member(gateway, community_id, user)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "community_id": community_id,
        "user_id": user,
        "xp": 20,
        "level": 1,
        "rank": 1,
        "xp_into_level": 20,
        "xp_for_next_level": 100,
        "progress": pytest.approx(0.2),
        "totals": {"messages": 1, "posts": 0, "reactions": 0, "custom": 0},
        "streak_days": 1,
        "badges": [],
        "longest_streak_days": 1,
        "last_activity_at": ANY,
        "periods": {
            period: {"period_start": ANY, "rank": 1, "xp": 20}
            for period in ("day", "week", "month")
        },
        "custom_totals": {},
        "display_name": f"Member {user.removeprefix('user_')}",
        "username": f"member_{user.removeprefix('user_')}",
        "avatar_url": None,
        "hidden_from_leaderboards": False,
        "rank_approximate": False,
        "updating": ANY,
    }


async def test_legacy_signed_message_is_counted(gateway: Client, community_id: str) -> None:
    user = new_id("user")
    body = json.dumps(chat_message_created(community_id, user)).encode()

    response = await gateway.post("/webhooks/whop", content=body, headers=sign_legacy(SECRET, body))

    assert response.json() == {"status": "awarded"}
    assert (await member(gateway, community_id, user)).json()["xp"] == 20


async def test_bad_signature_is_rejected_with_401_problem_and_awards_nothing(
    gateway: Client, community_id: str
) -> None:
    user = new_id("user")

    response = await deliver(gateway, chat_message_created(community_id, user), secret=new_secret())

    problem = assert_problem(response, 401)
    assert problem["type"] == "https://wee5.dev/problems/invalid-webhook-signature"
    assert "signature mismatch" in problem["detail"]
    assert_problem(await member(gateway, community_id, user), 404)


async def test_stale_signature_is_rejected_with_401_problem(
    gateway: Client, community_id: str
) -> None:
    user = new_id("user")
    envelope = chat_message_created(community_id, user)

    response = await deliver(gateway, envelope, timestamp=int(time.time()) - 360)

    assert "stale timestamp" in assert_problem(response, 401)["detail"]
    assert_problem(await member(gateway, community_id, user), 404)


async def test_unsigned_request_is_rejected_with_401_problem(gateway: Client) -> None:
    response = await gateway.post("/webhooks/whop", json=chat_message_created("exp_x", "user_x"))

    assert "missing headers" in assert_problem(response, 401)["detail"]


def assert_rejected(response: httpx.Response) -> str:
    """An authentic delivery WEE5 cannot use: acknowledged (Whop must not redeliver what would
    fail again) as rejected, with the reason."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "rejected"
    reason: str = body["reason"]
    return reason


async def test_correctly_signed_malformed_json_is_acknowledged_as_rejected_once(
    gateway: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    body = b'{"type": "chat.message.created", "data": '
    webhook_id = new_id("msg")

    first = await gateway.post(
        "/webhooks/whop", content=body, headers=sign_standard(SECRET, body, webhook_id)
    )
    again = await gateway.post(
        "/webhooks/whop", content=body, headers=sign_standard(SECRET, body, webhook_id)
    )

    assert "JSON" in assert_rejected(first)
    assert again.json() == {"status": "duplicate"}
    await flush_receipts(gateway)
    async with sessionmaker() as session:
        receipt = await session.get(WebhookReceipt, ("whop", webhook_id))
    assert receipt is not None
    assert (receipt.outcome, receipt.reason) == ("rejected", "body is not valid JSON")


async def test_a_correctly_signed_body_that_is_not_utf8_is_rejected_not_a_bad_signature(
    gateway: Client,
) -> None:
    body = b'{"type": "chat.message.created", "data": "\xff\xfe"}'
    headers = sign_standard(SECRET, body)

    signed = await gateway.post("/webhooks/whop", content=body, headers=headers)
    forged = await gateway.post(
        "/webhooks/whop", content=body, headers=sign_standard(new_secret(), body)
    )

    assert assert_rejected(signed) == "body is not UTF-8"
    assert "signature mismatch" in assert_problem(forged, 401)["detail"]


async def test_known_type_missing_its_user_is_rejected_and_shown_to_the_admins(
    gateway: Client, community_id: str
) -> None:
    envelope = chat_message_created(community_id, new_id("user"))
    del envelope["data"]["message"]["user"]

    reason = assert_rejected(await deliver(gateway, envelope))

    assert "data.message.user" in reason
    await flush_receipts(gateway)
    setup = await gateway.get(f"/api/v1/communities/{community_id}/setup")
    assert setup.status_code == 200, setup.text
    assert [
        (shown["webhook_id"], shown["event_type"], shown["reason"])
        for shown in setup.json()["webhooks_rejected"]
    ] == [(envelope["id"], "chat.message.created", reason)]


async def test_unknown_event_type_is_acknowledged_as_ignored(
    gateway: Client, community_id: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    envelope = chat_message_created(community_id, new_id("user"), type="payment.succeeded")

    response = await deliver(gateway, envelope)

    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    await flush_receipts(gateway)
    async with sessionmaker() as session:
        receipt = await session.get(WebhookReceipt, ("whop", envelope["id"]))
    assert receipt is not None
    assert (receipt.event_type, receipt.outcome) == ("payment.succeeded", "ignored")


async def test_direct_message_is_acknowledged_as_ignored_and_earns_nothing(
    gateway: Client,
) -> None:
    user = new_id("user")

    response = await deliver(gateway, chat_message_created(None, user))

    assert response.json() == {"status": "ignored"}


async def test_webhooks_without_a_secret_answer_503_naming_the_setting(xp_addr: str) -> None:
    settings = gateway_settings(xp_addr, whop_webhook_secret=None)
    async with serve(settings) as client:
        response = await deliver(client, chat_message_created("exp_x", "user_x"))

    problem = assert_problem(response, 503)
    assert "WEE5_WHOP_WEBHOOK_SECRET" in problem["detail"]


async def test_webhook_is_not_acknowledged_while_xp_is_down(
    gateway: Client, community_id: str
) -> None:
    user = new_id("user")
    envelope = chat_message_created(community_id, user)
    settings = gateway_settings(f"127.0.0.1:{free_port()}")
    async with serve(settings) as xp_down:
        response = await deliver(xp_down, envelope)

    assert_problem(response, 503)
    # No receipt was kept, so Whop's redelivery is processed once xp is back.
    assert (await deliver(gateway, envelope)).json() == {"status": "awarded"}


async def test_redelivery_is_answered_from_the_receipt_without_calling_xp(
    gateway: Client, community_id: str
) -> None:
    envelope = chat_message_created(community_id, new_id("user"))
    assert (await deliver(gateway, envelope)).json() == {"status": "awarded"}

    async with serve(gateway_settings(f"127.0.0.1:{free_port()}")) as xp_down:
        response = await deliver(xp_down, envelope)

    assert response.status_code == 200
    assert response.json() == {"status": "duplicate"}


async def test_unknown_member_is_a_404_problem(gateway: Client, community_id: str) -> None:
    problem = assert_problem(await member(gateway, community_id, new_id("user")), 404)

    assert "has no XP" in problem["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"period": "year"}, "period"), ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit")],
)
async def test_leaderboard_rejects_bad_period_or_limit_with_400_problem(
    gateway: Client, community_id: str, params: dict[str, str], field: str
) -> None:
    response = await gateway.get(f"/api/v1/communities/{community_id}/leaderboard", params=params)

    assert field in assert_problem(response, 400)["detail"]


async def test_leaderboard_pages_with_next_cursor(gateway: Client, community_id: str) -> None:
    first, second = new_id("user"), new_id("user")
    await deliver(gateway, chat_message_created(community_id, first))
    await deliver(gateway, chat_message_created(community_id, first))
    await deliver(gateway, chat_message_created(community_id, second))

    page = await leaderboard(gateway, community_id, limit=1, period="week")
    rest = await leaderboard(
        gateway, community_id, limit=1, period="week", cursor=page["next_cursor"]
    )

    assert [(e["rank"], e["user_id"], e["xp"]) for e in page["entries"]] == [(1, first, 40)]
    assert page["next_cursor"]
    assert [(e["rank"], e["user_id"], e["xp"]) for e in rest["entries"]] == [(2, second, 20)]
    assert rest["next_cursor"] is None


async def test_readyz_names_the_failed_checks(gateway: Client) -> None:
    response = await gateway.get("/readyz")

    problem = assert_problem(response, 503)
    assert problem["checks"] == {
        "database": "ok",
        "redis": "ok",
        "events": "ok",
        "xp": "ok",
        "rewards": "unavailable",
        "benchmarks": "unavailable",
        "resources": "unavailable",
        "billing": "unavailable",
    }
    for name in ("rewards", "benchmarks", "resources", "billing"):
        assert name in problem["detail"]
    assert "xp" not in problem["detail"].split(": ", 1)[1].split(", ")


async def test_readyz_says_redis_is_down_while_healthz_stays_ok(xp_addr: str) -> None:
    settings = gateway_settings(
        xp_addr, redis_url=f"redis://127.0.0.1:{free_port()}/0", readiness_timeout_seconds=1
    )
    async with serve(settings) as client:
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")

    problem = assert_problem(ready, 503)
    assert problem["checks"]["redis"] == "unavailable"
    assert problem["checks"]["database"] == "ok"
    assert "redis" in problem["detail"]
    assert alive.status_code == 200  # liveness does not depend on Redis


async def test_readyz_names_the_failed_checks_only_to_internal_callers(xp_addr: str) -> None:
    token = "internal-" + "r" * 40
    settings = gateway_settings(xp_addr, internal_token=token)
    async with serve(settings, peer=("203.0.113.9", 40000)) as stranger:
        bare = await stranger.get("/readyz")
        wrong = await stranger.get("/readyz", headers={"x-wee5-internal-token": token + "x"})
        with_token = await stranger.get("/readyz", headers={"x-wee5-internal-token": token})

    for answer in (bare, wrong):
        problem = assert_problem(answer, 503)
        assert problem["detail"] == "not ready"
        assert "checks" not in problem
    detailed = assert_problem(with_token, 503)
    assert detailed["checks"]["rewards"] == "unavailable"
    assert detailed["checks"]["xp"] == "ok"


async def test_healthz_is_ok(gateway: Client) -> None:
    response = await gateway.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_request_id_is_echoed_or_made(gateway: Client) -> None:
    given = f"req-{uuid.uuid4().hex}"

    echoed = await gateway.get("/healthz", headers={"x-request-id": given})
    made = await gateway.get("/no-such-route")

    assert echoed.headers["x-request-id"] == given
    assert made.headers["x-request-id"]
    assert_problem(made, 404)


async def test_openapi_document_is_served(gateway: Client) -> None:
    response = await gateway.get("/schema/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert (document["info"]["title"], document["info"]["version"]) == ("WEE5 API", "v1")
    assert "/webhooks/whop" in document["paths"]
    assert "/api/v1/communities/{community_id}/leaderboard" in document["paths"]


async def membership_of(xp_addr: str, community_id: str, user_id: str) -> xp_pb2.Membership:
    async with channel(xp_addr) as xp:
        reply = await xp_pb2_grpc.XpServiceStub(xp).GetMembership(
            xp_pb2.GetMembershipRequest(community_id=community_id, user_id=user_id)
        )
    return reply.membership


async def test_membership_activated_links_the_member_in_communities_of_its_company(
    gateway: Client, xp_addr: str, community_id: str
) -> None:
    user, company = new_id("user"), new_id("biz")
    # The experience is learned with its company from a chat envelope.
    await deliver(gateway, chat_message_created(community_id, new_id("user"), company_id=company))

    response = await deliver(
        gateway, membership_event("membership.activated", user, company, membership_id="mem_42")
    )

    assert response.json() == {"status": "recorded"}
    membership = await membership_of(xp_addr, community_id, user)
    assert (membership.membership_id, membership.status, membership.active) == (
        "mem_42",
        "active",
        True,
    )


async def test_deactivation_wins_over_an_older_activation_delivered_late(
    gateway: Client, xp_addr: str, community_id: str
) -> None:
    user, company = new_id("user"), new_id("biz")
    await deliver(gateway, chat_message_created(community_id, user, company_id=company))
    now = datetime.now(UTC)
    activated = membership_event(
        "membership.activated", user, company, at=now - timedelta(minutes=2)
    )
    deactivated = membership_event(
        "membership.deactivated", user, company, status="canceled", at=now
    )

    assert (await deliver(gateway, deactivated)).json() == {"status": "recorded"}
    assert (await deliver(gateway, activated)).json() == {"status": "stale"}

    membership = await membership_of(xp_addr, community_id, user)
    assert (membership.status, membership.active) == ("canceled", False)


async def test_legacy_went_valid_links_the_member(
    gateway: Client, xp_addr: str, community_id: str
) -> None:
    user, company = new_id("user"), new_id("biz")
    await deliver(gateway, chat_message_created(community_id, user, company_id=company))
    envelope = {
        "action": "membership.went_valid",
        "data": {
            "id": "mem_legacy",
            "user": user,
            "company_id": company,
            "status": "completed",
            "valid": True,
            "created_at": int(time.time()),
        },
    }
    body = json.dumps(envelope).encode()

    response = await gateway.post("/webhooks/whop", content=body, headers=sign_legacy(SECRET, body))

    assert response.json() == {"status": "recorded"}
    membership = await membership_of(xp_addr, community_id, user)
    # went_valid grants access whatever the status is called (one-time purchases "complete").
    assert (membership.membership_id, membership.active) == ("mem_legacy", True)


async def test_membership_event_without_its_user_is_rejected(gateway: Client) -> None:
    envelope = membership_event("membership.activated", new_id("user"), new_id("biz"))
    del envelope["data"]["user"]

    assert "data.user.id" in assert_rejected(await deliver(gateway, envelope))


@pytest.mark.parametrize("experience_id", ["exp_a\x00b", "exp_" + "x" * 61, "exp:a.b"])
async def test_a_signed_message_from_an_impossible_experience_is_rejected_not_retried_forever(
    gateway: Client, experience_id: str
) -> None:
    # Whop redelivers anything but 2xx: an id Postgres cannot store is acknowledged, named.
    response = await deliver(gateway, chat_message_created(experience_id, new_id("user")))

    assert "community id" in assert_rejected(response)


async def test_a_webhook_makes_its_experience_known_as_a_community_of_its_company(
    gateway: Client, community_id: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    company_id = new_id("biz")
    for _ in range(2):
        envelope = chat_message_created(community_id, new_id("user"), company_id=company_id)
        assert (await deliver(gateway, envelope)).status_code == 200

    await flush_receipts(gateway)
    async with sessionmaker() as session:
        known = await session.get(WhopExperience, community_id)
    assert known is not None
    assert known.company_id == company_id


@pytest.mark.parametrize(
    ("experience_id", "user_id", "named"),
    [
        ("exp_with\x00nul", "user_ok", "experience_id"),
        ("exp_" + "x" * 70, "user_ok", "experience_id"),
        (None, "user_with\x00nul", "user.id"),
        (None, "user_" + "y" * 70, "user.id"),
    ],
)
async def test_a_signed_message_with_an_id_postgres_would_refuse_is_rejected_naming_it(
    gateway: Client, community_id: str, experience_id: str | None, user_id: str, named: str
) -> None:
    envelope = chat_message_created(experience_id or community_id, user_id)

    assert named in assert_rejected(await deliver(gateway, envelope))


@pytest.mark.parametrize("nested", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000])
async def test_a_signed_body_nested_too_deeply_is_rejected(gateway: Client, nested: bytes) -> None:
    # Any depth Python's parser would recurse through until it gives up (a RecursionError).
    with pytest.raises(InvalidPayload, match="nested too deeply"):
        parse_envelope(nested)
    response = await gateway.post(
        "/webhooks/whop", content=nested, headers=sign_standard(SECRET, nested)
    )

    assert "nested too deeply" in assert_rejected(response)


@pytest.mark.parametrize("webhook_id", ["msg_a\tb", "msg_" + "x" * 300])
async def test_a_delivery_id_no_store_can_hold_still_counts_once(
    gateway: Client, community_id: str, webhook_id: str
) -> None:
    user = new_id("user")
    envelope = chat_message_created(community_id, user)

    first = await deliver(gateway, envelope, webhook_id=webhook_id)
    again = await deliver(gateway, envelope, webhook_id=webhook_id)

    assert (first.json(), again.json()) == ({"status": "awarded"}, {"status": "duplicate"})
    assert (await member(gateway, community_id, user)).json()["xp"] == 20


async def test_a_member_id_with_nul_in_the_path_is_a_400(
    gateway: Client, community_id: str
) -> None:
    for path in ("members/a%00b", f"members/{'z' * 65}", "members/a%00b/history"):
        response = await gateway.get(f"/api/v1/communities/{community_id}/{path}")
        problem = assert_problem(response, 400)
        assert "member id" in problem["detail"]


@pytest.mark.parametrize("cursor", ["9" * 33, "-" + "9" * 33, "x" * 2000, "%00"])
async def test_a_history_cursor_no_page_could_have_is_a_400(
    gateway: Client, community_id: str, cursor: str
) -> None:
    user = new_id("user")
    assert (await deliver(gateway, chat_message_created(community_id, user))).status_code == 200

    response = await gateway.get(
        f"/api/v1/communities/{community_id}/members/{user}/history", params={"cursor": cursor}
    )

    assert_problem(response, 400)


async def test_each_delivery_writes_one_access_line_saying_what_became_of_it(
    gateway: Client, community_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests log warnings only; these loggers keep every line of the requests.
    capture = structlog.testing.LogCapture()
    for module in (runtime, webhook_controller):
        logger = structlog.wrap_logger(
            structlog.ReturnLogger(),
            processors=[capture],
            wrapper_class=structlog.make_filtering_bound_logger(0),
        )
        monkeypatch.setattr(module, "access_log" if module is runtime else "log", logger)
    envelope = chat_message_created(community_id, new_id("user"))

    assert (await deliver(gateway, envelope)).json()["status"] == "awarded"
    assert (await deliver(gateway, envelope)).json()["status"] == "duplicate"

    assert [
        (line["event"], line["path"], line["status"], line["outcome"], line["webhook_id"])
        for line in capture.entries
    ] == [
        ("request", "/webhooks/whop", 200, "awarded", envelope["id"]),
        ("request", "/webhooks/whop", 200, "duplicate", envelope["id"]),
    ]
    assert {(line["community_id"], line["event_type"]) for line in capture.entries} == {
        (community_id, "chat.message.created")
    }
