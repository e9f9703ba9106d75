"""An audited write survives the gateway dying between the downstream service's commit and the
completion of its audit entry: the entry recorded before the call is there, readable through
the audit log API, and a retry completes it instead of adding another."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.gateway import test_tiers as tiers
from tests.support.gateway import bearer, new_account
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core import audit

Sessions = async_sessionmaker[AsyncSession]

# The real xp and billing servers and the gateway, as the tiers tests run them.
xp_addr, billing_addr, settings, gateway, xp = (
    tiers.xp_addr,
    tiers.billing_addr,
    tiers.settings,
    tiers.gateway,
    tiers.xp,
)


class ProcessDied(Exception):
    """Stands for the gateway process ending right after the service answered."""


async def test_a_crash_after_xp_committed_leaves_a_pending_audit_entry_that_a_retry_completes(
    gateway: httpx.AsyncClient,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    community_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    members = f"/api/v1/communities/{community_id}/members/user_a"
    adjustment = {"delta": 300, "reason": "won the contest", "idempotency_key": "contest-1"}
    complete = audit.complete_audit_entry

    async def die(*args: Any, **kwargs: Any) -> None:
        raise ProcessDied

    monkeypatch.setattr(audit, "complete_audit_entry", die)
    crashed = await gateway.post(f"{members}/xp-adjustments", json=adjustment, headers=owner)
    card = await gateway.get(members, headers=owner)
    after_crash = (
        await gateway.get(f"/api/v1/communities/{community_id}/audit-log", headers=owner)
    ).json()["entries"]
    monkeypatch.setattr(audit, "complete_audit_entry", complete)
    retried = await gateway.post(f"{members}/xp-adjustments", json=adjustment, headers=owner)
    after_retry = (
        await gateway.get(f"/api/v1/communities/{community_id}/audit-log", headers=owner)
    ).json()["entries"]

    assert crashed.status_code == 500
    assert card.json()["xp"] == 300  # xp committed the adjustment before the "crash"
    [pending] = after_crash
    assert (pending["action"], pending["status"], pending["target"]) == (
        "xp.adjusted",
        "pending",
        "member:user_a",
    )
    assert pending["after"] == adjustment
    assert pending["request_id"]
    assert retried.json()["duplicate"] is True
    [done] = after_retry
    assert (done["id"], done["status"]) == (pending["id"], "done")
    # xp answers a repeated key with the member's current state: the retry knows the outcome,
    # and the state before is the one read before the first attempt's call, not the current.
    assert done["before"] == {"xp": 0, "level": 1}
    assert done["after"] == {"xp": 300, "level": 3, **adjustment}


async def test_a_retry_after_a_crash_records_the_xp_a_known_member_had_before_the_first_call(
    gateway: httpx.AsyncClient,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    community_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    adjustments = f"/api/v1/communities/{community_id}/members/user_b/xp-adjustments"
    first = {"delta": 100, "reason": "welcome", "idempotency_key": "welcome-1"}
    second = {"delta": 200, "reason": "won the contest", "idempotency_key": "contest-2"}
    complete = audit.complete_audit_entry

    async def die(*args: Any, **kwargs: Any) -> None:
        raise ProcessDied

    assert (await gateway.post(adjustments, json=first, headers=owner)).status_code == 200
    monkeypatch.setattr(audit, "complete_audit_entry", die)
    crashed = await gateway.post(adjustments, json=second, headers=owner)
    monkeypatch.setattr(audit, "complete_audit_entry", complete)
    retried = await gateway.post(adjustments, json=second, headers=owner)
    entries = (
        await gateway.get(f"/api/v1/communities/{community_id}/audit-log", headers=owner)
    ).json()["entries"]

    assert crashed.status_code == 500
    assert retried.json()["duplicate"] is True
    assert [(e["status"], e["before"], e["after"]) for e in entries] == [
        ("done", {"xp": 100, "level": 2}, {"xp": 300, "level": 3, **second}),
        ("done", {"xp": 0, "level": 1}, {"xp": 100, "level": 2, **first}),
    ]


async def test_a_change_the_service_refused_leaves_no_audit_entry(
    gateway: httpx.AsyncClient, settings: GatewaySettings, sessionmaker: Sessions, community_id: str
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    members = f"/api/v1/communities/{community_id}/members/user_a"

    refused = await gateway.post(
        f"{members}/xp-adjustments",
        json={"delta": -1, "reason": "below zero", "idempotency_key": "minus-1"},
        headers=owner,
    )
    entries = (
        await gateway.get(f"/api/v1/communities/{community_id}/audit-log", headers=owner)
    ).json()["entries"]

    assert refused.status_code == 409
    assert entries == []


@pytest.mark.parametrize("field", ["idempotency_key", "reason"])
async def test_a_control_character_in_an_adjustment_is_a_4xx_naming_it_and_records_nothing(
    gateway: httpx.AsyncClient,
    settings: GatewaySettings,
    sessionmaker: Sessions,
    community_id: str,
    field: str,
) -> None:
    """make fuzz found a NUL in the idempotency key answering 500 (Postgres refuses NUL in
    the audit log's text and JSON)."""
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    adjustment = {"delta": 10, "reason": "bonus", "idempotency_key": "bonus-1"}
    adjustment[field] = "a\x00b"

    refused = await gateway.post(
        f"/api/v1/communities/{community_id}/members/user_c/xp-adjustments",
        json=adjustment,
        headers=owner,
    )
    entries = (
        await gateway.get(f"/api/v1/communities/{community_id}/audit-log", headers=owner)
    ).json()["entries"]

    assert refused.status_code in (400, 422), refused.text
    assert field in refused.text
    assert entries == []
