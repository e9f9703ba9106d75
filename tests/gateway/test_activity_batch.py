"""The batch activity intake (`POST …/activities/batch`) end to end in-process: the real
gateway app, Postgres, Redis and an xp gRPC server (no cooldown)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import msgspec

from tests.gateway import test_communities as communities
from tests.gateway.test_communities import activity, base, create_key
from tests.gateway.test_tiers import assert_problem
from tests.support.gateway import bearer, gateway_settings, serve
from wee5_gateway.api.xp.schemas import MAX_ACTIVITY_BATCH
from wee5_gateway.config import GatewaySettings

Client = httpx.AsyncClient
# The real xp server and the gateway on it, as the API-key tests run them.
settings, client, owner = communities.settings, communities.client, communities.owner


def batch_path(community_id: str) -> str:
    return f"{base(community_id)}/activities/batch"


async def key_headers(
    client: Client, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> dict[str, str]:
    created = await create_key(client, settings, owner, community_id, ["activities:write"])
    return {"X-API-Key": str(created["key"])}


async def card(
    client: Client, settings: GatewaySettings, owner: uuid.UUID, community_id: str, user: str
) -> dict[str, Any]:
    reply = await client.get(
        f"{base(community_id)}/members/{user}", headers=bearer(settings, owner)
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def test_a_batch_records_each_activity_once_and_answers_in_order(
    client: Client, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    headers = await key_headers(client, settings, owner, community_id)
    items = [
        activity("user_a", "m-1"),
        {"kind": "reaction", "user_id": "user_b", "idempotency_key": "r-1"},
        {**activity("user_a", "m-2"), "author_is_bot": True},
        activity("user_a", "m-1"),  # the same key again inside the batch
        activity("user_a", "m-3"),
    ]

    reply = await client.post(batch_path(community_id), json={"activities": items}, headers=headers)

    assert reply.status_code == 200, reply.text
    results = reply.json()["results"]
    assert [(r["status"], r["skip_reason"], r["xp_awarded"]) for r in results] == [
        ("awarded", None, 20),
        ("awarded", None, 5),
        ("skipped", "bot_author", 0),
        ("duplicate", None, 0),
        ("awarded", None, 20),
    ]
    # What earned nothing reports the member's standing once the batch is recorded.
    assert [r["total_xp"] for r in results] == [20, 5, 40, 40, 40]
    a = await card(client, settings, owner, community_id, "user_a")
    assert (a["xp"], a["totals"]["messages"]) == (40, 2)


async def test_sending_the_same_batch_again_changes_nothing(
    client: Client, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    headers = await key_headers(client, settings, owner, community_id)
    body = {"activities": [activity(f"user_{n % 3}", f"again-{n}") for n in range(30)]}

    first = await client.post(batch_path(community_id), json=body, headers=headers)
    again = await client.post(batch_path(community_id), json=body, headers=headers)

    assert first.status_code == again.status_code == 200, again.text
    assert {r["status"] for r in first.json()["results"]} == {"awarded"}
    assert {r["status"] for r in again.json()["results"]} == {"duplicate"}
    assert [r["total_xp"] for r in again.json()["results"][-3:]] == [200, 200, 200]
    assert (await card(client, settings, owner, community_id, "user_0"))["xp"] == 200


async def test_an_empty_batch_or_one_over_the_limit_is_a_400_naming_the_limit(
    client: Client, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    headers = await key_headers(client, settings, owner, community_id)
    too_many = [activity(key=f"k{n}") for n in range(MAX_ACTIVITY_BATCH + 1)]

    over = await client.post(
        batch_path(community_id), json={"activities": too_many}, headers=headers
    )
    empty = await client.post(batch_path(community_id), json={"activities": []}, headers=headers)

    assert "1000" in assert_problem(over, 400)["detail"]
    assert "activities" in assert_problem(empty, 400)["detail"]
    nobody = await client.get(
        f"{base(community_id)}/members/user_1", headers=bearer(settings, owner)
    )
    assert nobody.status_code == 404


async def test_an_invalid_item_is_a_400_naming_its_index_and_nothing_is_recorded(
    client: Client, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    headers = await key_headers(client, settings, owner, community_id)
    items = [activity("user_a"), activity("user_a"), {**activity("user_a"), "user_id": ""}]
    unknown_kind = [
        activity("user_a"),
        {"kind": "custom", "custom_kind": "intro", "user_id": "user_a", "idempotency_key": "c"},
    ]

    invalid = await client.post(
        batch_path(community_id), json={"activities": items}, headers=headers
    )
    undefined = await client.post(
        batch_path(community_id), json={"activities": unknown_kind}, headers=headers
    )

    assert "activities[2].user_id" in assert_problem(invalid, 400)["detail"]
    # Only xp knows the community's custom kinds; it refuses the batch before recording any.
    assert "activities[1].custom_kind" in assert_problem(undefined, 400)["detail"]
    nobody = await client.get(
        f"{base(community_id)}/members/user_a", headers=bearer(settings, owner)
    )
    assert nobody.status_code == 404


async def test_a_key_without_the_scope_is_403_and_no_credentials_401_before_the_body(
    client: Client, settings: GatewaySettings, owner: uuid.UUID, community_id: str
) -> None:
    reader = await create_key(client, settings, owner, community_id, ["xp:read"])
    body = {"activities": [activity()]}

    refused = await client.post(
        batch_path(community_id), json=body, headers={"X-API-Key": str(reader["key"])}
    )
    anonymous = await client.post(batch_path(community_id), content=b"not even json")

    assert "activities:write" in assert_problem(refused, 403)["detail"]
    assert_problem(anonymous, 401)


async def test_each_activity_of_a_batch_spends_the_keys_activity_budget(
    settings: GatewaySettings, owner: uuid.UUID, community_id: str, test_env: dict[str, str]
) -> None:
    limited = gateway_settings(
        settings.xp_addr,
        redis_prefix=f"{test_env['WEE5_REDIS_PREFIX']}:{uuid.uuid4().hex[:8]}",
        rate_limit_activities="6/minute",
    )

    def batch(size: int, tag: str) -> dict[str, Any]:
        return {"activities": [activity(key=f"{tag}{n}") for n in range(size)]}

    async with serve(limited) as gateway:
        headers = await key_headers(gateway, limited, owner, community_id)
        path = batch_path(community_id)
        three = await gateway.post(path, json=batch(3, "a"), headers=headers)
        four = await gateway.post(path, json=batch(4, "b"), headers=headers)
        single = await gateway.post(
            f"{base(community_id)}/activities", json=activity(), headers=headers
        )
        seven = await gateway.post(path, json=batch(7, "c"), headers=headers)
        recorded = await gateway.get(
            f"{base(community_id)}/members/user_1", headers=bearer(limited, owner)
        )

    assert three.status_code == 200, three.text
    assert three.headers["ratelimit-remaining"] == "3"
    # 4 need more than the 3 left: refused whole, spending only the one its arrival counted.
    assert "activities" in assert_problem(four, 429)["detail"]
    assert int(four.headers["retry-after"]) >= 1
    assert (single.status_code, single.headers["ratelimit-remaining"]) == (200, "1")
    assert "more than this budget allows" in assert_problem(seven, 429)["detail"]
    assert recorded.json()["totals"]["messages"] == 4


def test_a_thousand_of_the_largest_items_fit_the_body_limit() -> None:
    largest = {
        "kind": "custom",
        "user_id": "u" * 64,
        "idempotency_key": "k" * 200,
        "custom_kind": "c" * 64,
        "channel_id": "h" * 64,
        "content_length": 1_000_000,
        "author_is_bot": False,
        "occurred_at": "2026-01-01T00:00:00.000000+00:00",
    }
    body = msgspec.json.encode({"activities": [largest] * MAX_ACTIVITY_BATCH})

    assert len(body) < GatewaySettings().max_body_bytes
