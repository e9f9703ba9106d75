"""Roles, API keys, the audit log and the API-key activity intake, end to end in-process:
the real gateway app, Postgres and an xp gRPC server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.support.gateway import (
    bearer,
    gateway_settings,
    late_access_announcements,
    new_account,
    serve,
)
from wee5_gateway.config import GatewaySettings
from wee5_gateway.db.models import ApiKey, CommunityRole
from wee5_kit.communities import COMMUNITY_ID_RULE
from wee5_kit.events import EventBus
from wee5_xp.config import XpSettings
from wee5_xp.server import build

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
async def settings(
    database_url: str, redis: Redis, bus: EventBus
) -> AsyncIterator[GatewaySettings]:
    addr = f"127.0.0.1:{free_port()}"
    xp = await build(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    await xp.start()
    yield gateway_settings(addr)
    await xp.stop()


@pytest.fixture
async def client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client


@pytest.fixture
async def owner(sessionmaker: Sessions, community_id: str) -> uuid.UUID:
    return await new_account(sessionmaker, community_id, "owner")


def base(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}"


async def create_key(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    community_id: str,
    scopes: list[str],
) -> dict[str, object]:
    reply = await client.post(
        f"{base(community_id)}/api-keys",
        json={"name": "discord bot", "scopes": scopes},
        headers=bearer(settings, owner),
    )
    assert reply.status_code == 201, reply.text
    created: dict[str, object] = reply.json()
    return created


def activity(user_id: str = "user_1", key: str | None = None) -> dict[str, object]:
    return {"kind": "message", "user_id": user_id, "idempotency_key": key or uuid.uuid4().hex}


async def test_api_key_is_shown_once_and_records_activities_idempotently(
    client: httpx.AsyncClient, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    created = await create_key(client, settings, owner, community_id, ["activities:write"])
    key = str(created["key"])
    assert key.startswith("wee5_sk_")
    assert key.startswith(str(created["prefix"]))

    listed = (
        await client.get(f"{base(community_id)}/api-keys", headers=bearer(settings, owner))
    ).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]

    body = activity(key="discord-msg-1")
    first = await client.post(
        f"{base(community_id)}/activities", json=body, headers={"X-API-Key": key}
    )
    again = await client.post(
        f"{base(community_id)}/activities", json=body, headers={"X-API-Key": key}
    )
    assert (first.status_code, first.json()["status"], first.json()["xp_awarded"]) == (
        200,
        "awarded",
        20,
    )
    assert (again.status_code, again.json()["status"], again.json()["total_xp"]) == (
        200,
        "duplicate",
        20,
    )


async def test_revoked_api_key_stops_working_at_once(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    community_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    late_access_announcements(monkeypatch)
    created = await create_key(client, settings, owner, community_id, ["activities:write"])
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert (
        await client.post(f"{base(community_id)}/activities", json=activity(), headers=headers)
    ).status_code == 200

    revoked = await client.delete(
        f"{base(community_id)}/api-keys/{created['id']}", headers=bearer(settings, owner)
    )
    assert revoked.status_code == 204
    refused = await client.post(
        f"{base(community_id)}/activities", json=activity(), headers=headers
    )
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_an_api_key_with_an_expiry_stops_working_when_it_expires(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    community_id: str,
    sessionmaker: Sessions,
) -> None:
    reply = await client.post(
        f"{base(community_id)}/api-keys",
        json={"name": "ci", "scopes": ["activities:write"], "expires_in_days": 1},
        headers=bearer(settings, owner),
    )
    assert reply.status_code == 201, reply.text
    created = reply.json()
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert timedelta(hours=23) < expires_at - datetime.now(UTC) <= timedelta(days=1)
    headers = {"X-API-Key": created["key"]}
    used = await client.post(f"{base(community_id)}/activities", json=activity(), headers=headers)
    assert used.status_code == 200, used.text
    listed = (
        await client.get(f"{base(community_id)}/api-keys", headers=bearer(settings, owner))
    ).json()
    assert listed[0]["last_used_at"] is not None
    assert listed[0]["expires_at"] == created["expires_at"]

    async with sessionmaker.begin() as session:  # a day later
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(created["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    def record() -> Awaitable[httpx.Response]:
        return client.post(f"{base(community_id)}/activities", json=activity(), headers=headers)

    refused = await eventually_status(record, 401)  # the cached key hears of it

    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_api_key_scopes_are_enforced(
    client: httpx.AsyncClient, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    created = await create_key(client, settings, owner, community_id, ["xp:read"])
    headers = {"X-API-Key": str(created["key"])}
    write = await client.post(f"{base(community_id)}/activities", json=activity(), headers=headers)
    read = await client.get(f"{base(community_id)}/leaderboard", headers=headers)
    assert write.status_code == 403
    assert "activities:write" in write.json()["detail"]
    assert read.status_code == 200


async def test_unknown_scope_and_bad_activity_bodies_are_400_with_field_errors(
    client: httpx.AsyncClient, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    bad_scope = await client.post(
        f"{base(community_id)}/api-keys",
        json={"name": "x", "scopes": ["everything"]},
        headers=bearer(settings, owner),
    )
    assert bad_scope.status_code == 400
    created = await create_key(client, settings, owner, community_id, ["activities:write"])
    headers = {"X-API-Key": str(created["key"])}
    for body in (
        {"kind": "shout", "user_id": "u", "idempotency_key": "k"},
        {"kind": "message", "user_id": "", "idempotency_key": "k"},
        {"kind": "message", "user_id": "u"},
        {**activity(), "surprise": True},
    ):
        reply = await client.post(f"{base(community_id)}/activities", json=body, headers=headers)
        assert reply.status_code == 400, body
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert reply.json()["errors"] or reply.json()["detail"]


async def test_the_last_owner_cannot_leave_or_be_demoted(
    client: httpx.AsyncClient, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    me = bearer(settings, owner)
    demote = await client.put(
        f"{base(community_id)}/roles/{owner}", json={"role": "admin"}, headers=me
    )
    leave = await client.delete(f"{base(community_id)}/roles/{owner}", headers=me)
    assert (demote.status_code, leave.status_code) == (409, 409)


async def test_a_second_owner_lets_the_first_step_down(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    community_id: str,
    sessionmaker: Sessions,
) -> None:
    other = await new_account(sessionmaker)
    me = bearer(settings, owner)
    promoted = await client.put(
        f"{base(community_id)}/roles/{other}", json={"role": "owner"}, headers=me
    )
    stepped_down = await client.put(
        f"{base(community_id)}/roles/{owner}", json={"role": "admin"}, headers=me
    )
    assert (promoted.status_code, stepped_down.status_code) == (200, 200)
    assert stepped_down.json()["role"] == "admin"


async def test_role_changes_are_audited_with_before_and_after_and_paginated(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    community_id: str,
    sessionmaker: Sessions,
) -> None:
    me = bearer(settings, owner)
    target = await new_account(sessionmaker)
    await client.put(
        f"{base(community_id)}/roles/{target}",
        json={"role": "member", "member_user_id": "user_t"},
        headers=me,
    )
    await client.put(f"{base(community_id)}/roles/{target}", json={"role": "admin"}, headers=me)
    await client.delete(f"{base(community_id)}/roles/{target}", headers=me)
    # Another community's entries never show up here.
    elsewhere = f"exp_{uuid.uuid4().hex[:12]}"
    other_owner = await new_account(sessionmaker, elsewhere, "owner")
    await client.put(
        f"{base(elsewhere)}/roles/{target}",
        json={"role": "member"},
        headers=bearer(settings, other_owner),
    )

    first = (
        await client.get(f"{base(community_id)}/audit-log", params={"limit": 2}, headers=me)
    ).json()
    rest = (
        await client.get(
            f"{base(community_id)}/audit-log",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=me,
        )
    ).json()

    entries = first["entries"] + rest["entries"]
    assert [e["action"] for e in entries] == ["role.revoked", "role.changed", "role.changed"]
    assert rest["next_cursor"] is None
    assert entries[1]["before"] == {"role": "member", "member_user_id": "user_t"}
    assert entries[1]["after"] == {"role": "admin", "member_user_id": "user_t"}
    assert entries[2]["before"] is None
    assert all(e["actor_account_id"] == str(owner) for e in entries)
    assert all(e["target"] == f"account:{target}" for e in entries)


async def test_granting_a_role_to_an_unknown_account_is_404_and_a_taken_member_id_409(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    community_id: str,
    sessionmaker: Sessions,
) -> None:
    me = bearer(settings, owner)
    unknown = await client.put(
        f"{base(community_id)}/roles/{uuid.uuid4()}", json={"role": "member"}, headers=me
    )
    a, b = await new_account(sessionmaker), await new_account(sessionmaker)
    await client.put(
        f"{base(community_id)}/roles/{a}",
        json={"role": "member", "member_user_id": "user_x"},
        headers=me,
    )
    taken = await client.put(
        f"{base(community_id)}/roles/{b}",
        json={"role": "member", "member_user_id": "user_x"},
        headers=me,
    )
    assert (unknown.status_code, taken.status_code) == (404, 409)


async def test_leaderboard_shows_the_callers_own_entry_when_linked(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    community_id: str,
    sessionmaker: Sessions,
) -> None:
    created = await create_key(client, settings, owner, community_id, ["activities:write"])
    key = {"X-API-Key": str(created["key"])}
    for user, count in (("user_top", 3), ("user_me", 1)):
        for _ in range(count):
            await client.post(f"{base(community_id)}/activities", json=activity(user), headers=key)
    me = await new_account(sessionmaker, community_id, "member", member_user_id="user_me")

    board = (
        await client.get(
            f"{base(community_id)}/leaderboard", params={"limit": 1}, headers=bearer(settings, me)
        )
    ).json()
    assert [e["user_id"] for e in board["entries"]] == ["user_top"]
    # The activity intake carries no names, so the entry has none.
    assert board["me"] == {
        "rank": 2,
        "user_id": "user_me",
        "xp": 20,
        "level": 1,
        "display_name": None,
        "username": None,
        "avatar_url": None,
        "progress": pytest.approx(0.2),
        "rank_approximate": False,
    }


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        "WzEsMl0",  # [1,2]: two parts where the audit log issues one
        "WyJ4Il0",  # ["x"]: a string where the audit log issues an entry id
        "Wzk5OTk5OTk5OTk5OTk5OTk5OTk5XQ",  # an entry id beyond BIGINT
        "YTE",  # the cursor format before `wee5_kit.pagination` ("a1")
    ],
)
async def test_a_forged_audit_log_cursor_is_400_naming_the_cursor(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    community_id: str,
    cursor: str,
) -> None:
    reply = await client.get(
        f"{base(community_id)}/audit-log",
        params={"cursor": cursor},
        headers=bearer(settings, owner),
    )
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["detail"] == "the cursor is not one this API issued; start again without it"


@pytest.mark.parametrize(
    "path", ["a%00b/leaderboard", "a.b/roles", "a:b/audit-log", "x" * 65 + "/leaderboard"]
)
async def test_an_invalid_community_id_in_the_path_is_400_with_kits_rule(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    path: str,
) -> None:
    reply = await client.get(f"/api/v1/communities/{path}", headers=bearer(settings, owner))
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["detail"] == COMMUNITY_ID_RULE


async def test_an_invalid_community_id_without_credentials_is_still_401(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.get("/api/v1/communities/a%00b/leaderboard")
    assert reply.status_code == 401


async def eventually_status(
    call: Callable[[], Awaitable[httpx.Response]], status: int, within: float = 5.0
) -> httpx.Response:
    """The first answer with `status`, asking again until `within` seconds have passed: what
    another replica learns through Postgres's announcement arrives a moment after the commit."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        answer = await call()
        if answer.status_code == status or asyncio.get_running_loop().time() > deadline:
            return answer
        await asyncio.sleep(0.02)


async def test_a_key_revoked_through_one_replica_stops_working_on_another(
    client: httpx.AsyncClient, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    created = await create_key(client, settings, owner, community_id, ["activities:write"])
    headers = {"Authorization": f"Bearer {created['key']}"}
    async with serve(settings) as other:

        def record() -> Awaitable[httpx.Response]:
            return other.post(f"{base(community_id)}/activities", json=activity(), headers=headers)

        # Known to the other replica (and kept there) before the revocation.
        assert (await eventually_status(record, 200)).status_code == 200
        assert (await record()).status_code == 200

        revoked = await client.delete(
            f"{base(community_id)}/api-keys/{created['id']}", headers=bearer(settings, owner)
        )
        assert revoked.status_code == 204
        assert (await eventually_status(record, 401)).status_code == 401


async def test_a_role_removed_anywhere_is_dropped_by_every_replica(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    community_id: str,
    sessionmaker: Sessions,
) -> None:
    reader = await new_account(sessionmaker, community_id, "admin")
    async with serve(settings) as other:

        def read_roles() -> Awaitable[httpx.Response]:
            return other.get(f"{base(community_id)}/roles", headers=bearer(settings, reader))

        assert (await eventually_status(read_roles, 200)).status_code == 200
        assert (await read_roles()).status_code == 200  # the admin role is kept by `other`

        # Demoted by an operator's SQL: no gateway route ran, Postgres announces it.
        async with sessionmaker.begin() as session:
            await session.execute(
                update(CommunityRole)
                .where(CommunityRole.account_id == reader)
                .values(role="member")
            )
        assert (await eventually_status(read_roles, 403)).status_code == 403

        # Removed through the first replica's route.
        removed = await client.delete(
            f"{base(community_id)}/roles/{reader}", headers=bearer(settings, owner)
        )
        assert removed.status_code == 204
        board = await eventually_status(
            lambda: other.get(
                f"{base(community_id)}/leaderboard", headers=bearer(settings, reader)
            ),
            403,
        )
        assert board.status_code == 403


async def test_a_role_change_through_the_api_takes_effect_at_once(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    owner: uuid.UUID,
    community_id: str,
    sessionmaker: Sessions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    late_access_announcements(monkeypatch)
    reader = await new_account(sessionmaker, community_id, "admin")
    roles = f"{base(community_id)}/roles"
    assert (await client.get(roles, headers=bearer(settings, reader))).status_code == 200

    demoted = await client.put(
        f"{roles}/{reader}", json={"role": "member"}, headers=bearer(settings, owner)
    )

    assert demoted.status_code == 200, demoted.text
    # The same process answers next, without waiting for any announcement.
    assert (await client.get(roles, headers=bearer(settings, reader))).status_code == 403


def _calls_to_xp() -> float:
    """RPCs the in-process xp server answered that record activities, one or many."""
    return sum(
        REGISTRY.get_sample_value(
            "wee5_grpc_server_handled_total",
            {"grpc_service": "wee5.xp.v1.XpService", "grpc_method": method, "grpc_code": "OK"},
        )
        or 0.0
        for method in ("RecordActivity", "RecordActivities")
    )


async def test_single_activities_arriving_together_share_calls_to_xp_and_count_once(
    client: httpx.AsyncClient, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    created = await create_key(
        client, settings, owner, community_id, ["activities:write", "xp:read"]
    )
    headers = {"X-API-Key": str(created["key"])}
    bodies = [activity(f"user_{n % 4}") for n in range(24)]
    before = _calls_to_xp()

    # Each activity twice at once: one of the two is the duplicate, wherever it lands.
    replies = await asyncio.gather(
        *(
            client.post(f"{base(community_id)}/activities", json=body, headers=headers)
            for body in bodies + bodies
        )
    )

    calls = _calls_to_xp() - before
    assert sorted(r.json()["status"] for r in replies) == ["awarded"] * 24 + ["duplicate"] * 24
    assert calls < len(replies) / 4, f"{calls} calls to xp for {len(replies)} activities"
    board = await client.get(
        f"{base(community_id)}/members/user_0", headers={"X-API-Key": str(created["key"])}
    )
    assert board.json()["totals"]["messages"] == 6
