"""A member's XP history is read by that member and the community's admins; other members get
403 unless the community shows histories to members (against real xp, Postgres and NATS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from tests.gateway import test_tiers as tiers
from tests.gateway.test_tiers import admin_headers, assert_problem
from tests.gateway.test_xp_routes import audit_entries, base, message
from tests.support.gateway import bearer, new_account
from wee5_gateway.config import GatewaySettings

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

Client = httpx.AsyncClient
xp_addr, billing_addr, settings, gateway, xp = (
    tiers.xp_addr,
    tiers.billing_addr,
    tiers.settings,
    tiers.gateway,
    tiers.xp,
)


async def _member(
    settings: GatewaySettings, sessionmaker: Any, community_id: str, user: str
) -> Any:
    return bearer(
        settings, await new_account(sessionmaker, community_id, "member", member_user_id=user)
    )


async def test_only_the_member_and_admins_read_a_history_by_default(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Any,
    community_id: str,
    xp: XpServiceAsyncStub,
) -> None:
    await message(xp, community_id, "user_ann")
    ann = await _member(settings, sessionmaker, community_id, "user_ann")
    bob = await _member(settings, sessionmaker, community_id, "user_bob")
    admin = await admin_headers(settings, sessionmaker, community_id)
    history = f"{base(community_id)}/members/user_ann/history"

    own = await gateway.get(history, headers=ann)
    by_admin = await gateway.get(history, headers=admin)
    by_bob = await gateway.get(history, headers=bob)
    card = await gateway.get(f"{base(community_id)}/members/user_ann", headers=bob)

    assert own.status_code == 200, own.text
    assert [entry["delta"] for entry in own.json()["entries"]] == [20]
    assert by_admin.json() == own.json()
    problem = assert_problem(by_bob, 403)
    assert problem["type"] == "https://wee5.dev/problems/history-private"
    assert "history_visibility" in problem["detail"]
    assert card.status_code == 200  # the totals stay visible
    assert card.json()["xp"] == 20


async def test_owners_may_show_histories_to_every_member(
    gateway: Client,
    settings: GatewaySettings,
    sessionmaker: Any,
    community_id: str,
    xp: XpServiceAsyncStub,
) -> None:
    await message(xp, community_id, "user_ann")
    bob = await _member(settings, sessionmaker, community_id, "user_bob")
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    history = f"{base(community_id)}/members/user_ann/history"
    path = f"{base(community_id)}/leaderboard-settings"
    assert (await gateway.get(path, headers=bob)).json()["history_visibility"] == "self_and_admins"

    shown = await gateway.patch(path, json={"history_visibility": "members"}, headers=owner)

    assert shown.status_code == 200, shown.text
    assert shown.json() == {
        "community_id": community_id,
        "visibility": "members",
        "history_visibility": "members",
    }
    assert (await gateway.get(history, headers=bob)).status_code == 200
    assert_problem(
        await gateway.patch(path, json={"history_visibility": "all"}, headers=owner), 400
    )
    # PUT replaces both: left out, histories are private again.
    replaced = await gateway.put(path, json={"visibility": "members"}, headers=owner)
    assert replaced.json()["history_visibility"] == "self_and_admins"
    assert_problem(await gateway.get(history, headers=bob), 403)
    [first, second] = await audit_entries(
        sessionmaker, community_id, "leaderboard_settings.changed"
    )
    assert first.before == {"visibility": "members", "history_visibility": "self_and_admins"}
    assert first.after == {"visibility": "members", "history_visibility": "members"}
    assert second.after == {"visibility": "members", "history_visibility": "self_and_admins"}
