"""Benchmarks through the gateway: real HTTP in front of the real benchmarks gRPC server,
Postgres and NATS. Field errors as 422 problems, the owner's switch, a member's own
submissions, the floor, the admins' review (audited), and nobody reading anyone else's answers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.benchmarks.conftest import Benchmarks
from tests.conftest import free_port
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from wee5_gateway.config import GatewaySettings
from wee5_gateway.db.models import AuditEntry

Sessions = async_sessionmaker[AsyncSession]
PROBLEM = "application/problem+json"
# A salary nobody else gives, to look for in every answer another member receives.
SECRET_SALARY = 987_654


@dataclass
class Community:
    id: str
    owner: dict[str, str]
    admin: dict[str, str]
    members: list[dict[str, str]]

    @property
    def base(self) -> str:
        return f"/api/v1/communities/{self.id}/benchmarks"


@pytest.fixture
async def gateway(
    benchmarks_server: Benchmarks,
) -> AsyncIterator[tuple[httpx.AsyncClient, GatewaySettings]]:
    settings = gateway_settings(f"127.0.0.1:{free_port()}", benchmarks_addr=benchmarks_server.addr)
    async with serve(settings) as client:
        yield client, settings


@pytest.fixture
def client(gateway: tuple[httpx.AsyncClient, GatewaySettings]) -> httpx.AsyncClient:
    return gateway[0]


@pytest.fixture
async def community(
    gateway: tuple[httpx.AsyncClient, GatewaySettings], sessionmaker: Sessions, community_id: str
) -> Community:
    """A community with an owner, an admin and twelve members (benchmarks still off)."""
    _, settings = gateway
    owner = await new_account(sessionmaker, community_id, "owner")
    admin = await new_account(sessionmaker, community_id, "admin")
    members = [
        await new_account(sessionmaker, community_id, "member", member_user_id=f"user_{n}")
        for n in range(12)
    ]
    return Community(
        community_id,
        bearer(settings, owner),
        bearer(settings, admin),
        [bearer(settings, member) for member in members],
    )


async def turn_on(client: httpx.AsyncClient, community: Community) -> None:
    response = await client.put(
        f"{community.base}/settings", json={"enabled": True}, headers=community.owner
    )
    assert response.status_code == 200, response.text


def pay(salary: float, role: str = "sdr", region: str = "europe") -> dict[str, Any]:
    return {"answers": {"role": role, "region": region, "base_salary": salary}}


async def put_answers(
    client: httpx.AsyncClient, community: Community, who: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    return await client.put(f"{community.base}/compensation/submission", json=body, headers=who)


async def test_categories_are_public(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/benchmarks/categories")
    assert response.status_code == 200
    categories = {c["category"]: c for c in response.json()["categories"]}
    assert set(categories) == {"compensation", "infrastructure", "business", "operational"}
    fields = {f["name"]: f for f in categories["infrastructure"]["fields"]}
    assert fields["monthly_tool_spend"]["unit"] == "USD/month"
    assert fields["inboxes"]["integer"] is True
    assert "smartlead" in [o["value"] for o in fields["tools"]["options"]]


async def test_invalid_answers_are_a_422_listing_each_field(
    client: httpx.AsyncClient, community: Community
) -> None:
    await turn_on(client, community)
    body = {"answers": {"role": "astronaut", "base_salary": 5_000_000, "inboxes": 3}}
    response = await put_answers(client, community, community.members[0], body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    errors = {e["key"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"role", "region", "base_salary", "inboxes"}
    assert errors["base_salary"] == "must be at most 1e+06 USD/year"


async def test_a_number_beyond_any_float_is_a_clear_400(
    client: httpx.AsyncClient, community: Community
) -> None:
    await turn_on(client, community)
    body = '{"answers": {"role": "sdr", "region": "europe", "base_salary": 1%s}}' % ("0" * 400)
    response = await client.put(
        f"{community.base}/compensation/submission",
        content=body,
        headers={**community.members[0], "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_only_owners_switch_benchmarks_and_the_switch_is_audited(
    client: httpx.AsyncClient, community: Community, sessionmaker: Sessions
) -> None:
    refused = await put_answers(client, community, community.members[0], pay(50_000))
    assert refused.status_code == 409
    assert "turned off" in refused.json()["detail"]
    by_admin = await client.put(
        f"{community.base}/settings", json={"enabled": True}, headers=community.admin
    )
    assert by_admin.status_code == 403
    await turn_on(client, community)
    seen = await client.get(f"{community.base}/settings", headers=community.members[0])
    assert seen.json()["enabled"] is True
    assert (
        await put_answers(client, community, community.members[0], pay(50_000))
    ).status_code == 200
    async with sessionmaker() as session:
        entry = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.community_id == community.id,
                AuditEntry.action == "benchmarks.settings_changed",
            )
        )
    assert entry is not None
    assert (entry.before, entry.after) == ({"enabled": False}, {"enabled": True})


async def test_resubmitting_replaces_the_answers_and_keeps_history(
    client: httpx.AsyncClient, community: Community
) -> None:
    await turn_on(client, community)
    member = community.members[0]
    first = (await put_answers(client, community, member, pay(50_000))).json()
    second = (await put_answers(client, community, member, pay(52_000))).json()
    assert first["first_submission"] is True
    assert second["first_submission"] is False
    assert (second["id"], second["version"]) == (first["id"], 2)
    mine = await client.get(f"{community.base}/submissions/mine?history=true", headers=member)
    [submission] = mine.json()["submissions"]
    assert submission["answers"]["base_salary"] == 52_000
    assert [(h["version"], h["answers"]["base_salary"]) for h in submission["history"]] == [
        (1, 50_000)
    ]
    deleted = await client.delete(f"{community.base}/submissions/{first['id']}", headers=member)
    assert deleted.status_code == 204
    mine = await client.get(f"{community.base}/submissions/mine", headers=member)
    assert mine.json()["submissions"] == []


async def test_floor_through_the_gateway_and_stacked_filters(
    client: httpx.AsyncClient, community: Community
) -> None:
    await turn_on(client, community)
    results = f"{community.base}/compensation/results?field=base_salary"
    for n, member in enumerate(community.members[:4]):
        await put_answers(client, community, member, pay(50_000 + 1000 * n))
    four = (await client.get(results, headers=community.members[0])).json()
    assert four["below_floor"] is True
    assert four["total_count"] is None
    assert four["cells"] == [
        {"field": "base_salary", "group": None, "below_floor": True, "unit": "USD/year"}
    ]
    await put_answers(client, community, community.members[4], pay(70_000, region="oceania"))
    five = (await client.get(results, headers=community.admin)).json()
    [cell] = five["cells"]
    assert (five["below_floor"], five["total_count"], cell["count"]) == (False, 5, 5)
    assert cell["median"] == 52_000
    assert cell["confidence"] == "low"
    assert "caller_percentile" not in cell
    # A member who answered faces only four others: nothing yet.
    assert (await client.get(results, headers=community.members[0])).json()["below_floor"]
    await put_answers(client, community, community.members[5], pay(60_000))
    six = (await client.get(results, headers=community.members[0])).json()
    assert six["cells"][0]["caller_percentile"] == 8
    # An enum field counts options, and only those chosen at least 5 times (5 + 1 here).
    regions = await client.get(
        f"{community.base}/compensation/results?field=region", headers=community.admin
    )
    assert regions.json()["cells"] == [
        {
            "field": "region",
            "group": None,
            "below_floor": False,
            "count": 6,
            "confidence": "low",
            "option_counts": {"europe": 5},
        }
    ]
    # The Oceania member alone: asked directly, or as everyone but Europe.
    alone = await client.get(f"{results}&filter=region:oceania", headers=community.members[0])
    europe = await client.get(
        f"{results}&filter=region:europe&filter=role:sdr", headers=community.members[0]
    )
    assert alone.json()["below_floor"] is True
    assert europe.json()["below_floor"] is True
    bad = await client.get(f"{results}&filter=region", headers=community.members[0])
    assert bad.status_code == 400


async def test_review_changes_results_and_is_audited(
    client: httpx.AsyncClient, community: Community, sessionmaker: Sessions
) -> None:
    await turn_on(client, community)
    for n, member in enumerate(community.members[:11]):
        await put_answers(client, community, member, pay(50_000 + 300 * n))
    flagged = (
        await put_answers(client, community, community.members[11], pay(SECRET_SALARY))
    ).json()
    assert flagged["status"] == "pending_review"
    results = f"{community.base}/compensation/results"
    assert (await client.get(results, headers=community.admin)).json()["total_count"] == 11

    as_member = await client.get(f"{community.base}/review", headers=community.members[0])
    assert as_member.status_code == 403
    queue = (await client.get(f"{community.base}/review", headers=community.admin)).json()
    [item] = queue["items"]
    assert item["id"] == flagged["id"]
    assert item["outliers"][0]["field"] == "base_salary"
    assert "user_id" not in json.dumps(item)
    decided = await client.post(
        f"{community.base}/review/{item['id']}",
        json={"decision": "approve", "reason": "confirmed with the member"},
        headers=community.admin,
    )
    assert decided.status_code == 200
    assert decided.json()["status"] == "accepted"
    assert (await client.get(results, headers=community.admin)).json()["total_count"] == 12
    again = await client.post(
        f"{community.base}/review/{item['id']}",
        json={"decision": "reject", "reason": "changed my mind"},
        headers=community.admin,
    )
    assert again.status_code == 409
    async with sessionmaker() as session:
        entry = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.community_id == community.id,
                AuditEntry.action == "benchmarks.submission_reviewed",
            )
        )
    assert entry is not None
    assert entry.target == f"benchmark_submission:{item['id']}"
    assert entry.after == {
        "status": "accepted",
        "decision": "approve",
        "reason": "confirmed with the member",
    }


async def test_no_route_lets_a_member_read_another_members_answers(
    client: httpx.AsyncClient, community: Community
) -> None:
    await turn_on(client, community)
    owner_of_secret, reader = community.members[0], community.members[1]
    secret = (
        await put_answers(
            client, community, owner_of_secret, pay(SECRET_SALARY, "founder", "oceania")
        )
    ).json()
    for n, member in enumerate(community.members[1:6]):
        await put_answers(client, community, member, pay(50_000 + 100 * n))
    base = community.base
    responses = [
        await client.get(f"{base}/submissions/mine?history=true", headers=reader),
        await client.get(f"{base}/compensation/results", headers=reader),
        await client.get(f"{base}/compensation/results?group_by=role", headers=reader),
        await client.get(f"{base}/compensation/results?group_by=region", headers=reader),
        await client.get(f"{base}/compensation/results?field=role", headers=reader),
        await client.get(f"{base}/compensation/results?filter=role:founder", headers=reader),
        await client.get(f"{base}/compensation/results?filter=region:oceania", headers=reader),
        await client.get(f"{base}/review", headers=reader),
        await client.delete(f"{base}/submissions/{secret['id']}", headers=reader),
        await client.post(
            f"{base}/review/{secret['id']}",
            json={"decision": "reject", "reason": "curious"},
            headers=reader,
        ),
    ]
    statuses = [response.status_code for response in responses]
    assert statuses == [200, 200, 200, 200, 200, 200, 200, 403, 404, 403]
    for response in responses:
        assert str(SECRET_SALARY) not in response.text
    mine = responses[0].json()["submissions"]
    assert [s["answers"]["base_salary"] for s in mine] == [50_000]
    # The secret's owner still has it: the delete above removed nothing.
    kept = await client.get(f"{base}/submissions/mine", headers=owner_of_secret)
    assert kept.json()["submissions"][0]["answers"]["base_salary"] == SECRET_SALARY
    # Results never carry who answered.
    for response in responses[1:7]:
        assert "user_" not in response.text


async def test_other_communities_never_see_this_ones_submissions(
    gateway: tuple[httpx.AsyncClient, GatewaySettings], community: Community, sessionmaker: Sessions
) -> None:
    client, settings = gateway
    await turn_on(client, community)
    await put_answers(client, community, community.members[0], pay(SECRET_SALARY))
    stranger = bearer(
        settings, await new_account(sessionmaker, f"exp_{uuid.uuid4().hex[:12]}", "owner")
    )
    for path in ("compensation/results", "submissions/mine", "review", "settings"):
        response = await client.get(f"{community.base}/{path}", headers=stranger)
        assert response.status_code == 403


async def test_a_puppet_cannot_be_linked_to_another_accounts_own_id(
    gateway: tuple[httpx.AsyncClient, GatewaySettings], sessionmaker: Sessions, community: Community
) -> None:
    client, settings = gateway
    await turn_on(client, community)
    victim = await new_account(sessionmaker, community.id, "member")  # unlinked: keyed by its id
    await put_answers(client, community, bearer(settings, victim), pay(SECRET_SALARY))
    puppet = await new_account(sessionmaker)

    linked = await client.put(
        f"/api/v1/communities/{community.id}/roles/{puppet}",
        json={"role": "member", "member_user_id": str(victim)},
        headers=community.admin,
    )

    assert linked.status_code == 409, linked.text
    assert linked.headers["content-type"] == PROBLEM
    mine = await client.get(f"{community.base}/submissions/mine", headers=bearer(settings, puppet))
    assert str(SECRET_SALARY) not in mine.text


async def test_relinking_a_members_id_to_a_puppet_reveals_none_of_their_answers(
    gateway: tuple[httpx.AsyncClient, GatewaySettings], sessionmaker: Sessions, community: Community
) -> None:
    client, settings = gateway
    await turn_on(client, community)
    victim = await new_account(sessionmaker, community.id, "member", member_user_id="user_victim")
    victim_headers = bearer(settings, victim)
    body = pay(SECRET_SALARY, "founder", "oceania")
    assert (await put_answers(client, community, victim_headers, body)).status_code in (200, 201)
    assert (await put_answers(client, community, victim_headers, pay(SECRET_SALARY + 1))).is_success
    for n, member in enumerate(community.members[:6]):
        await put_answers(client, community, member, pay(50_000 + 100 * n))
    roles = f"/api/v1/communities/{community.id}/roles"
    puppet = await new_account(sessionmaker)
    puppet_headers = bearer(settings, puppet)

    # The admin moves the victim to another member id and links a puppet to the old one.
    moved = await client.put(
        f"{roles}/{victim}",
        json={"role": "member", "member_user_id": "user_moved"},
        headers=community.admin,
    )
    linked = await client.put(
        f"{roles}/{puppet}",
        json={"role": "member", "member_user_id": "user_victim"},
        headers=community.admin,
    )
    assert (moved.status_code, linked.status_code) == (200, 200), (moved.text, linked.text)

    base = community.base
    reads = [
        await client.get(f"{base}/submissions/mine?history=true", headers=puppet_headers),
        await client.get(f"{base}/compensation/results", headers=puppet_headers),
    ]
    overwrite = await put_answers(client, community, puppet_headers, pay(1))
    for response in reads:
        assert response.status_code == 200, response.text
        assert str(SECRET_SALARY) not in response.text
    assert reads[0].json()["submissions"] == []
    assert all(cell.get("caller_percentile") is None for cell in reads[1].json()["cells"])
    assert overwrite.status_code == 403, overwrite.text
    assert "another account" in overwrite.json()["detail"]
    # The victim keeps their answers, whatever id they are linked to now.
    kept = await client.get(f"{base}/submissions/mine", headers=victim_headers)
    assert [s["answers"]["base_salary"] for s in kept.json()["submissions"]] == [SECRET_SALARY + 1]
    own = await client.get(f"{base}/compensation/results", headers=victim_headers)
    assert any(cell.get("caller_percentile") is not None for cell in own.json()["cells"])
    # Both link changes are in the audit log, with the member id before and after.
    async with sessionmaker() as session:
        changes = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.community_id == community.id, AuditEntry.action == "role.changed")
                .order_by(AuditEntry.id)
            )
        )
    links = [
        (
            entry.target,
            (entry.before or {}).get("member_user_id"),
            (entry.after or {}).get("member_user_id"),
        )
        for entry in changes
    ]
    assert links == [
        (f"account:{victim}", "user_victim", "user_moved"),
        (f"account:{puppet}", None, "user_victim"),
    ]
