"""XP rules, adjustments, history, past boards and the richer rank card through the gateway,
against real xp and billing gRPC servers, Postgres and NATS."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.gateway import test_tiers as tiers
from tests.gateway.test_tiers import admin_headers, assert_problem, plan_path
from tests.support.gateway import bearer
from wee5.xp.v1 import xp_pb2
from wee5_gateway.config import GatewaySettings
from wee5_gateway.db.models import AuditEntry

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

Sessions = async_sessionmaker[AsyncSession]
Client = httpx.AsyncClient
# The real xp and billing servers and the gateway, as the tiers tests run them.
xp_addr, billing_addr, settings, gateway, xp = (
    tiers.xp_addr,
    tiers.billing_addr,
    tiers.settings,
    tiers.gateway,
    tiers.xp,
)

RULES = {
    "message": {"min": 30, "max": 30},
    "post": {"min": 10, "max": 40},
    "reaction": {"min": 2, "max": 2},
    "custom_kinds": {"intro": {"min": 25, "max": 25}},
    "cooldown_seconds": 0,
    "min_message_length": 3,
    "no_xp_channel_ids": ["chan_spam"],
    "channel_multipliers": {"chan_help": 2.0},
    "boosts": [
        {
            "starts_at": "2026-12-24T00:00:00Z",
            "ends_at": "2026-12-27T00:00:00Z",
            "multiplier": 2.0,
            "name": "holidays",
        }
    ],
    "curve": {"preset": "mee6", "shape": None, "coefficients": [], "first_level": 0},
    "max_level": 500,
    "timezone": "Europe/Berlin",
}


def base(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}"


async def audit_entries(sessions: Sessions, community_id: str, action: str) -> list[AuditEntry]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.community_id == community_id, AuditEntry.action == action)
                .order_by(AuditEntry.id)
            )
        )


async def go_premium(gateway: Client, settings: GatewaySettings, community_id: str) -> None:
    changed = await gateway.put(
        plan_path(community_id),
        json={"plan": "premium", "reason": "xp rules"},
        headers=bearer(settings, platform_admin=True),
    )
    assert changed.status_code == 200, changed.text


async def message(xp: XpServiceAsyncStub, community_id: str, user_id: str, **kw: Any) -> None:
    await xp.RecordActivity(
        xp_pb2.RecordActivityRequest(
            activity=xp_pb2.Activity(
                community_id=community_id,
                user_id=user_id,
                kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                source=xp_pb2.SOURCE_API,
                idempotency_key=uuid.uuid4().hex,
                **kw,
            )
        )
    )


async def test_admins_read_the_default_rules(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)

    response = await gateway.get(f"{base(community_id)}/xp-config", headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == {"min": 20, "max": 20}
    assert body["post"] == {"min": 15, "max": 25}
    assert body["curve"] == {
        "preset": "default",
        "shape": None,
        "coefficients": [],
        "first_level": 1,
    }
    assert (body["max_level"], body["timezone"], body["community_id"]) == (
        1000,
        "UTC",
        community_id,
    )


async def test_changing_the_rules_on_the_free_plan_is_402_and_changes_nothing(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)

    response = await gateway.put(f"{base(community_id)}/xp-config", json=RULES, headers=headers)

    problem = assert_problem(response, 402)
    assert "premium" in problem["detail"]
    current = (await gateway.get(f"{base(community_id)}/xp-config", headers=headers)).json()
    assert current["message"] == {"min": 20, "max": 20}
    assert await audit_entries(sessionmaker, community_id, "xp_config.changed") == []


async def test_premium_admins_replace_the_rules_and_the_audit_log_keeps_before_and_after(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    await go_premium(gateway, settings, community_id)

    response = await gateway.put(f"{base(community_id)}/xp-config", json=RULES, headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in RULES} == RULES
    assert body["levels_changed"] == 0
    read = (await gateway.get(f"{base(community_id)}/xp-config", headers=headers)).json()
    assert {k: read[k] for k in RULES} == RULES
    [entry] = await audit_entries(sessionmaker, community_id, "xp_config.changed")
    assert entry.before is not None
    assert entry.after is not None
    assert entry.before["message"] == {"min": 20, "max": 20}
    assert entry.after["message"] == {"min": 30, "max": 30}
    assert entry.after["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"post": {"min": 40, "max": 10}}, "post"),
        ({"message": {"min": 0, "max": 1001}}, "message"),
        ({"timezone": "Nowhere/Land"}, "timezone"),
        ({"curve": {"preset": "custom", "shape": "cubic", "coefficients": [1, 2]}}, "coefficients"),
        ({"boosts": [{"starts_at": "2026-12-27T00:00:00Z", "ends_at": "2026-12-24T00:00:00Z", "multiplier": 2}]}, "ends_at"),
        ({"surprise": 1}, "surprise"),
    ],
)  # fmt: skip
async def test_invalid_rules_are_400_naming_the_field(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    community_id: str,
    change: dict[str, Any],
    named: str,
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    await go_premium(gateway, settings, community_id)

    response = await gateway.put(
        f"{base(community_id)}/xp-config", json={**RULES, **change}, headers=headers
    )

    problem = assert_problem(response, 400)
    assert named in response.text, problem
    assert await audit_entries(sessionmaker, community_id, "xp_config.changed") == []


async def test_a_new_curve_recomputes_levels(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    xp: XpServiceAsyncStub,
    community_id: str,
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    await go_premium(gateway, settings, community_id)
    for _ in range(6):  # 120 XP: level 2 on the default curve, 1 on mee6's
        await message(xp, community_id, "user_a")

    response = await gateway.put(
        f"{base(community_id)}/xp-config",
        json={**RULES, "message": {"min": 20, "max": 20}, "min_message_length": 0},
        headers=headers,
    )
    card = (await gateway.get(f"{base(community_id)}/members/user_a", headers=headers)).json()

    assert response.json()["levels_changed"] == 1
    assert (card["xp"], card["level"]) == (120, 1)


async def test_admin_adjustments_are_audited_idempotent_and_shown_in_history(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    path = f"{base(community_id)}/members/user_a/xp-adjustments"
    add = {"delta": 300, "reason": "won the contest", "idempotency_key": "contest-1"}

    first = await gateway.post(path, json=add, headers=headers)
    again = await gateway.post(path, json=add, headers=headers)
    taken = await gateway.post(
        path, json={"delta": -250, "reason": "spam", "idempotency_key": "spam-1"}, headers=headers
    )
    too_much = await gateway.post(
        path, json={"delta": -51, "reason": "oops", "idempotency_key": "spam-2"}, headers=headers
    )
    history = await gateway.get(
        f"{base(community_id)}/members/user_a/history", params={"limit": 1}, headers=headers
    )
    older = await gateway.get(
        f"{base(community_id)}/members/user_a/history",
        params={"limit": 1, "cursor": history.json()["next_cursor"]},
        headers=headers,
    )

    assert first.status_code == 200, first.text
    assert {k: first.json()[k] for k in ("xp", "level", "previous_level", "duplicate")} == {
        "xp": 300,
        "level": 3,
        "previous_level": 1,
        "duplicate": False,
    }
    assert (again.json()["xp"], again.json()["duplicate"]) == (300, True)
    assert (taken.json()["xp"], taken.json()["level"]) == (50, 1)  # the level went down
    assert "below 0" in assert_problem(too_much, 409)["detail"]
    audited = await audit_entries(sessionmaker, community_id, "xp.adjusted")
    assert [(e.before, e.after) for e in audited] == [
        (
            {"xp": 0, "level": 1},
            {
                "xp": 300,
                "level": 3,
                "delta": 300,
                "reason": "won the contest",
                "idempotency_key": "contest-1",
            },
        ),
        (
            {"xp": 300, "level": 3},
            {"xp": 50, "level": 1, "delta": -250, "reason": "spam", "idempotency_key": "spam-1"},
        ),
    ]
    [newest] = history.json()["entries"]
    [oldest] = older.json()["entries"]
    assert (newest["delta"], newest["reason"], newest["source"]) == (
        -250,
        "adjustment:spam",
        "admin",
    )
    assert (oldest["delta"], oldest["balance_after"]) == (300, 300)
    assert older.json()["next_cursor"] is None


async def test_history_of_someone_without_xp_is_404(
    gateway: Client, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    member = await admin_headers(settings, sessionmaker, community_id)
    response = await gateway.get(f"{base(community_id)}/members/nobody/history", headers=member)
    assert_problem(response, 404)


async def test_last_weeks_board_and_the_cards_period_ranks(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    xp: XpServiceAsyncStub,
    community_id: str,
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    await message(xp, community_id, "user_a")
    await message(xp, community_id, "user_b")
    await message(xp, community_id, "user_b")
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday())

    week = await gateway.get(
        f"{base(community_id)}/leaderboard", params={"period": "week"}, headers=headers
    )
    last_week = await gateway.get(
        f"{base(community_id)}/leaderboard",
        params={"period": "week", "at": (monday - timedelta(days=1)).isoformat()},
        headers=headers,
    )
    card = (await gateway.get(f"{base(community_id)}/members/user_a", headers=headers)).json()

    assert week.json()["period_start"] == monday.isoformat()
    assert [(e["user_id"], e["xp"]) for e in week.json()["entries"]] == [
        ("user_b", 40),
        ("user_a", 20),
    ]
    assert last_week.json()["period_start"] == (monday - timedelta(days=7)).isoformat()
    assert last_week.json()["entries"] == []
    assert card["periods"]["week"] == {"period_start": monday.isoformat(), "rank": 2, "xp": 20}
    assert card["periods"]["day"]["rank"] == 2
    assert (card["streak_days"], card["longest_streak_days"]) == (1, 1)
    assert card["last_activity_at"] is not None
    bad = await gateway.get(
        f"{base(community_id)}/leaderboard", params={"at": "last tuesday"}, headers=headers
    )
    assert_problem(bad, 400)


async def test_a_past_board_outside_the_communitys_history_is_a_400(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    xp: XpServiceAsyncStub,
    community_id: str,
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    await message(xp, community_id, "user_a")
    today = datetime.now(UTC).date()
    board = await gateway.get(
        f"{base(community_id)}/leaderboard", params={"period": "day"}, headers=headers
    )
    assert board.json()["earliest_day"] == (today - timedelta(days=1)).isoformat()
    for at in ("0001-01-01", (today - timedelta(days=2)).isoformat(), "9999-12-31"):
        answer = await gateway.get(
            f"{base(community_id)}/leaderboard",
            params={"period": "day", "at": at},
            headers=headers,
        )
        assert_problem(answer, 400)
        assert "at must not be" in answer.json()["detail"], at
