"""A company's analytics across its communities (issue 20): the processes `make up` starts,
activity through signed Whop webhooks (xp learns each community's company from them), and
what the other services count — rewards granted, benchmarks submitted, downloads — written
as they store it; read through `/api/v1/companies/{company_id}/analytics` and its CSV."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.gateway import bearer, new_account
from tests.support.stack import SECRET, Stack, start_stack, stop_stack
from tests.support.whop import chat_message_created, sign_standard
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_benchmarks.models import Submission
from wee5_gateway.config import GatewaySettings
from wee5_gateway.db.models import CommunityRole
from wee5_kit.grpc import channel
from wee5_resources.models import Download, LibrarySettings, Resource
from wee5_rewards.models import Reward
from wee5_xp.models import LedgerEntry

pytestmark = pytest.mark.e2e

Sessions = async_sessionmaker[AsyncSession]
TAG = uuid.uuid4().hex[:8]
COMPANY = f"biz_{TAG}"
MAIN, VIP = f"exp_{TAG}_main", f"exp_{TAG}_vip"
ELSEWHERE, OTHER_COMPANY = f"exp_{TAG}_else", f"biz_{TAG}_other"


@pytest.fixture(scope="module")
def stack(
    database_url: str, test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = start_stack(
        test_env,
        tmp_path_factory.mktemp("company-analytics"),
        WEE5_XP_COOLDOWN_SECONDS="0",
        WEE5_ENTITLEMENTS_CACHE_SECONDS="0",
    )
    yield stack
    stop_stack(stack)


@pytest.fixture(scope="module")
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=20) as client:
        yield client


async def chat(http: httpx.AsyncClient, community_id: str, company_id: str, user_id: str) -> None:
    """One chat message (20 XP), signed as Whop signs it."""
    payload = chat_message_created(community_id, user_id, company_id=company_id)
    body = json.dumps(payload).encode()
    headers = sign_standard(SECRET, body, f"msg_{uuid.uuid4().hex}", int(time.time()))
    reply = await http.post(
        "/webhooks/whop", content=body, headers={**headers, "content-type": "application/json"}
    )
    assert reply.status_code == 200, reply.text


async def company_plan(stack: Stack, company_id: str, plan: billing_pb2.Plan.ValueType) -> None:
    async with channel(stack.env["WEE5_BILLING_ADDR"]) as chan:
        await billing_pb2_grpc.BillingServiceStub(chan).SetCommunityPlan(
            billing_pb2.SetCommunityPlanRequest(
                community_id=company_id, plan=plan, admin_user_id="ops", reason="the test"
            )
        )


async def stored_elsewhere(sessionmaker: Sessions, now: datetime) -> None:
    """What rewards, benchmarks and resources store when they grant, take a submission and
    count a download: 3 free days and a $5 code in main, one benchmark in vip, two downloads
    in vip."""
    resource_id = uuid.uuid4()
    async with sessionmaker.begin() as session:
        for kind, extra in (
            ("free_days", {"free_days": 3}),
            (
                "discount_code",
                {"discount_type": "amount", "amount_off_minor": 500, "currency": "USD"},
            ),
        ):
            session.add(
                Reward(
                    community_id=MAIN,
                    user_id="user_ada",
                    level=5 if kind == "free_days" else 10,
                    kind=kind,
                    status="granted",
                    granted_at=now,
                    **extra,
                )
            )
        session.add(
            Submission(
                community_id=VIP,
                user_id="user_ada",
                category="revenue",
                schema_version=1,
                version=1,
                answers={},
                status="accepted",
                revision=1,
            )
        )
        session.add(LibrarySettings(community_id=VIP, enabled=True, categories=["guides"]))
        session.add(
            Resource(
                id=resource_id,
                community_id=VIP,
                title="Playbook",
                description="",
                category="guides",
                type="playbook",
                tags=[],
                file_name="playbook.pdf",
                size_bytes=10,
                content_type="application/pdf",
                checksum_sha256="0" * 64,
                storage_key=f"{VIP}/{resource_id}",
                created_by="account:test",
            )
        )
        await session.flush()
        for user_id in ("user_ada", "user_bob"):
            session.add(
                Download(
                    community_id=VIP,
                    resource_id=resource_id,
                    user_id=user_id,
                    first_by_member=True,
                    downloaded_at=now,
                )
            )


@pytest.fixture(scope="module")
async def played(stack: Stack, http: httpx.AsyncClient, sessionmaker: Sessions) -> Stack:
    """ada chats in main (2) and vip (3), bob in main (1), cy only in the other company's
    community (9); the company is on enterprise, the other one on free."""
    for community_id, company_id, user_id, times in (
        (MAIN, COMPANY, "user_ada", 2),
        (VIP, COMPANY, "user_ada", 3),
        (MAIN, COMPANY, "user_bob", 1),
        (ELSEWHERE, OTHER_COMPANY, "user_cy", 9),
    ):
        for _ in range(times):
            await chat(http, community_id, company_id, user_id)
    await stored_elsewhere(sessionmaker, datetime.now(UTC))
    await company_plan(stack, COMPANY, billing_pb2.PLAN_ENTERPRISE)
    return stack


async def owner_of(sessionmaker: Sessions, *community_ids: str) -> dict[str, str]:
    account = await new_account(sessionmaker, community_ids[0], "owner")
    async with sessionmaker.begin() as session:
        for community_id in community_ids[1:]:
            session.add(CommunityRole(account_id=account, community_id=community_id, role="owner"))
    return bearer(GatewaySettings(), account)


async def test_a_companys_analytics_show_each_community_beside_the_others(
    played: Stack, http: httpx.AsyncClient, sessionmaker: Sessions
) -> None:
    owner = await owner_of(sessionmaker, MAIN, VIP)

    reply = await http.get(f"/api/v1/companies/{COMPANY}/analytics", headers=owner)

    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    today = datetime.now(UTC).date().isoformat()
    # The top communities first (vip 60 XP, main 60: ties by id); the other company's is not
    # there.
    assert [(c["community_id"], c["xp"], c["active_members"]) for c in body["communities"]] == [
        (MAIN, 60, 2),
        (VIP, 60, 1),
    ]
    days = {c["community_id"]: c["days"][-1] for c in body["communities"]}
    assert len(body["communities"][0]["days"]) == 30
    assert days[MAIN] | {"activities_by_kind": None} == {
        "day": today,
        "active_members": 2,
        "xp": 60,
        "activities": 3,
        "activities_by_kind": None,
        "new_members": 2,
        "level_ups": 0,
        "rewards_granted": 2,
        "free_days": 3,
        "discount_codes": 1,
        "amount_off_minor": {"USD": 500},
        "benchmark_submissions": 0,
        "benchmark_members": 0,
        "downloads": 0,
    }
    assert days[MAIN]["activities_by_kind"] == {"message": 3}
    assert (days[VIP]["benchmark_submissions"], days[VIP]["downloads"]) == (1, 2)
    assert (body["active_members"], body["members_in_several"]) == (2, 1)
    # The communities' days add up to what the ledger holds for the company in the window.
    async with sessionmaker() as session:
        ledger = await session.scalar(
            select(func.sum(LedgerEntry.delta)).where(
                LedgerEntry.community_id.in_([MAIN, VIP]),
                LedgerEntry.created_at >= datetime.fromisoformat(body["since"]),
                LedgerEntry.created_at < datetime.fromisoformat(body["until"]),
            )
        )
    per_day = sum(day["xp"] for c in body["communities"] for day in c["days"])
    assert per_day == sum(c["xp"] for c in body["communities"]) == ledger == 120
    assert sum(m["xp"] for m in body["top_movers"]) == ledger
    assert body["top_movers"] == [
        {"user_id": "user_ada", "xp": 100, "communities": 2},
        {"user_id": "user_bob", "xp": 20, "communities": 1},
    ]


async def test_the_csv_has_a_row_per_day_and_community(
    played: Stack, http: httpx.AsyncClient, sessionmaker: Sessions
) -> None:
    owner = await owner_of(sessionmaker, MAIN, VIP)

    reply = await http.get(f"/api/v1/companies/{COMPANY}/analytics/csv", headers=owner)

    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    assert f'filename="{COMPANY}-analytics.csv"' in reply.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert len(rows) == 60  # 30 days x 2 communities
    today = datetime.now(UTC).date().isoformat()
    main_today = next(r for r in rows if r["day"] == today and r["community_id"] == MAIN)
    assert (main_today["xp"], main_today["activities_by_kind"], main_today["free_days"]) == (
        "60",
        "message=3",
        "3",
    )
    assert main_today["amount_off_minor"] == "USD=500"


async def test_only_the_companys_admins_on_enterprise_read_it(
    played: Stack, http: httpx.AsyncClient, sessionmaker: Sessions
) -> None:
    route = f"/api/v1/companies/{COMPANY}/analytics"
    assert (await http.get(route)).status_code == 401
    admin_of_main_only = await owner_of(sessionmaker, MAIN)
    assert (await http.get(route, headers=admin_of_main_only)).status_code == 403
    # Enterprise on the company is what opens it: the other company is on free.
    owner_elsewhere = await owner_of(sessionmaker, ELSEWHERE)
    refused = await http.get(
        f"/api/v1/companies/{OTHER_COMPANY}/analytics", headers=owner_elsewhere
    )
    assert refused.status_code == 402, refused.text
    assert refused.json()["required_plan"] == "enterprise"


async def test_a_window_longer_than_a_year_is_a_400(
    played: Stack, http: httpx.AsyncClient, sessionmaker: Sessions
) -> None:
    owner = await owner_of(sessionmaker, MAIN, VIP)

    reply = await http.get(
        f"/api/v1/companies/{COMPANY}/analytics",
        params={"since": "2024-01-01T00:00:00Z", "until": "2025-06-01T00:00:00Z"},
        headers=owner,
    )

    assert reply.status_code == 400, reply.text
    assert "366 days" in reply.json()["detail"]
