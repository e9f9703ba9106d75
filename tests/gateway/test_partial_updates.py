"""PATCH of the XP rules, reward settings, library settings and benchmark settings: a JSON
merge patch (RFC 7396) applied to what is stored, checked and written as the PUT body would be
and audited the same way, against the real xp, billing, rewards and benchmarks servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.gateway import test_tiers as tiers
from tests.gateway.test_tiers import admin_headers, assert_problem
from tests.gateway.test_xp_routes import RULES, audit_entries, base, go_premium
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from wee5_benchmarks.config import BenchmarksSettings
from wee5_benchmarks.server import build as build_benchmarks
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.merge_patch import merge_patch
from wee5_kit.events import EventBus
from wee5_rewards.config import RewardsSettings
from wee5_rewards.server import build as build_rewards

Client = httpx.AsyncClient
xp_addr, billing_addr = tiers.xp_addr, tiers.billing_addr
MERGE_PATCH = {"content-type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
async def rewards_addr(
    database_url: str, redis: Redis, bus: EventBus, xp_addr: str
) -> AsyncIterator[str]:
    addr = f"127.0.0.1:{free_port()}"
    server = await build_rewards(
        RewardsSettings(rewards_addr=addr, xp_addr=xp_addr, rewards_workers=False)
    )
    await server.start()
    yield addr
    await server.stop()


@pytest.fixture(scope="module")
async def benchmarks_addr(database_url: str, bus: EventBus) -> AsyncIterator[str]:
    addr = f"127.0.0.1:{free_port()}"
    server = await build_benchmarks(BenchmarksSettings(benchmarks_addr=addr))
    await server.start()
    yield addr
    await server.stop()


@pytest.fixture
def settings(
    xp_addr: str, billing_addr: str, rewards_addr: str, benchmarks_addr: str
) -> GatewaySettings:
    return gateway_settings(
        xp_addr,
        billing_addr=billing_addr,
        rewards_addr=rewards_addr,
        benchmarks_addr=benchmarks_addr,
    )


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[Client]:
    async with serve(settings) as client:
        yield client


def test_merge_patch_follows_rfc_7396() -> None:
    # RFC 7396 appendix A, a few of its examples.
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}


async def test_patching_the_cooldown_keeps_every_other_rule_and_is_audited(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    await go_premium(gateway, settings, community_id)
    path = f"{base(community_id)}/xp-config"
    assert (await gateway.put(path, json=RULES, headers=headers)).status_code == 200

    response = await gateway.patch(
        path,
        json={"cooldown_seconds": 5, "post": {"max": 50}},
        headers={**headers, **MERGE_PATCH},
    )

    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["cooldown_seconds"] == 5
    assert changed["post"] == {"min": 10, "max": 50}  # merged, min kept
    for kept in ("message", "reaction", "custom_kinds", "boosts", "timezone", "max_level"):
        assert changed[kept] == RULES[kept], kept
    read = (await gateway.get(path, headers=headers)).json()
    assert read["cooldown_seconds"] == 5
    assert read["curve"] == RULES["curve"]
    [_, patched] = await audit_entries(sessionmaker, community_id, "xp_config.changed")
    assert patched.before is not None
    assert patched.after is not None
    assert (patched.before["cooldown_seconds"], patched.after["cooldown_seconds"]) == (0, 5)


async def test_null_resets_a_rule_to_its_default(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    await go_premium(gateway, settings, community_id)
    path = f"{base(community_id)}/xp-config"
    assert (await gateway.put(path, json=RULES, headers=headers)).status_code == 200

    response = await gateway.patch(
        path, json={"curve": None, "timezone": None, "boosts": None}, headers=headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["curve"]["preset"] == "default"
    assert (body["timezone"], body["boosts"]) == ("UTC", [])
    assert body["cooldown_seconds"] == RULES["cooldown_seconds"]


async def test_an_invalid_patch_is_the_put_bodys_400_and_changes_nothing(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    await go_premium(gateway, settings, community_id)
    path = f"{base(community_id)}/xp-config"
    before = (await gateway.get(path, headers=headers)).json()

    cases = {
        "cooldown_seconds": {"cooldown_seconds": -1},
        "data": {"post": None},  # required: null cannot remove it
        "curve.preset": {"curve": {"preset": "steep"}},
    }
    for key, patch in [*cases.items(), ("data", {"cooldown": 5})]:
        problem = assert_problem(await gateway.patch(path, json=patch, headers=headers), 400)
        assert problem["type"] == "https://wee5.dev/problems/invalid-request"
        assert [error["key"] for error in problem["errors"]] == [key], problem
    assert (await gateway.get(path, headers=headers)).json() == before
    assert await audit_entries(sessionmaker, community_id, "xp_config.changed") == []
    taught = await gateway.patch(path, json={"curve": {"preset": "steep"}}, headers=headers)
    assert "'mee6'" in taught.json()["detail"]
    suggested = await gateway.patch(path, json={"cooldown": 5}, headers=headers)
    assert "did you mean `cooldown_seconds`?" in suggested.json()["detail"]


async def test_patching_the_rules_on_the_free_plan_is_402(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)

    response = await gateway.patch(
        f"{base(community_id)}/xp-config", json={"cooldown_seconds": 5}, headers=headers
    )

    problem = assert_problem(response, 402)
    assert problem["required_plan"] == "premium"


async def test_members_may_not_patch_the_rules(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    member = bearer(settings, await new_account(sessionmaker, community_id, "member"))

    response = await gateway.patch(
        f"{base(community_id)}/xp-config", json={"cooldown_seconds": 5}, headers=member
    )

    assert_problem(response, 403)


async def test_patching_the_level_up_message_keeps_the_guild_and_null_resets_it(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    path = f"{base(community_id)}/reward-settings"
    guild = str(10**18 + uuid.uuid4().int % 10**17)
    operator = bearer(settings, platform_admin=True)
    bound = await gateway.put(
        f"{base(community_id)}/discord-guild", json={"guild_id": guild}, headers=operator
    )
    assert bound.status_code == 200, bound.text
    intros = "123456789012345678"
    body = {
        "level_up_template": "{member} hit {level}",
        "discord_guild_id": guild,
        "discord_intro_channel_id": intros,
        "discord_welcome_channel_id": intros,
        "discord_welcome_dm_template": "Hi {member}",
    }
    assert (await gateway.put(path, json=body, headers=headers)).status_code == 200
    unknown = await gateway.patch(
        path, json={"discord_welcome_template": "Hi {password}"}, headers=headers
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"][0]["key"] == "discord_welcome_template"

    patched = await gateway.patch(path, json={"level_up_template": "gg {member}"}, headers=headers)

    assert patched.status_code == 200, patched.text
    assert patched.json()["level_up_template"] == "gg {member}"
    assert patched.json()["discord_guild_id"] == guild
    assert patched.json()["discord_intro_channel_id"] == intros
    assert patched.json()["discord_welcome_dm_template"] == "Hi {member}"
    assert patched.json()["welcome_variables"] == ["member", "mention"]
    reset = await gateway.patch(path, json={"level_up_template": None}, headers=headers)
    assert "{member} reached level {level}" in reset.json()["level_up_template"]  # the default
    assert reset.json()["discord_guild_id"] == guild
    entries = await audit_entries(sessionmaker, community_id, "reward_settings.changed")
    assert len(entries) == 3
    wrong = await gateway.patch(path, json={"level_up_message": "x"}, headers=headers)
    problem = assert_problem(wrong, 400)
    assert "did you mean `level_up_template`?" in problem["detail"]


async def test_admins_set_the_subscription_role_audited_and_not_the_servers_everyone_role(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    path = f"{base(community_id)}/reward-settings"
    guild = str(10**18 + uuid.uuid4().int % 10**17)
    operator = bearer(settings, platform_admin=True)
    bound = await gateway.put(
        f"{base(community_id)}/discord-guild", json={"guild_id": guild}, headers=operator
    )
    assert bound.status_code == 200, bound.text
    role = "223456789012345678"

    set_role = await gateway.patch(
        path, json={"discord_subscription_role_id": role}, headers=headers
    )
    not_an_id = await gateway.patch(
        path, json={"discord_subscription_role_id": "subscribers"}, headers=headers
    )
    everyone = await gateway.patch(
        path, json={"discord_subscription_role_id": guild}, headers=headers
    )
    member = bearer(settings, await new_account(sessionmaker, community_id, "member"))
    by_member = await gateway.patch(
        path, json={"discord_subscription_role_id": role}, headers=member
    )

    assert set_role.status_code == 200, set_role.text
    assert set_role.json()["discord_subscription_role_id"] == role
    assert set_role.json()["discord_guild_id"] == guild
    assert_problem(not_an_id, 400)
    refused = assert_problem(everyone, 400)
    assert "@everyone" in refused["detail"]
    assert_problem(by_member, 403)
    read = await gateway.get(path, headers=headers)
    assert read.json()["discord_subscription_role_id"] == role
    entries = await audit_entries(sessionmaker, community_id, "reward_settings.changed")
    assert [(entry.after or {}).get("subscription_role") for entry in entries] == [role]
    cleared = await gateway.patch(
        path, json={"discord_subscription_role_id": None}, headers=headers
    )
    assert cleared.json()["discord_subscription_role_id"] is None


async def test_owners_patch_benchmarks_on_and_admins_may_not(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    admin = await admin_headers(settings, sessionmaker, community_id)
    path = f"{base(community_id)}/benchmarks/settings"

    assert_problem(await gateway.patch(path, json={"enabled": True}, headers=admin), 403)
    on = await gateway.patch(path, json={"enabled": True}, headers=owner)
    assert on.status_code == 200, on.text
    assert on.json()["enabled"] is True
    unchanged = await gateway.patch(path, json={}, headers=owner)
    assert unchanged.json()["enabled"] is True
    [_, entry] = await audit_entries(sessionmaker, community_id, "benchmarks.settings_changed")
    assert entry.after == {"enabled": True}
    problem = assert_problem(await gateway.patch(path, json={"enabled": "yes"}, headers=owner), 400)
    assert problem["errors"][0]["key"] == "enabled"


async def test_benchmarks_turned_off_answer_409_benchmarks_disabled(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    owner = bearer(settings, await new_account(sessionmaker, community_id, "owner"))
    path = f"{base(community_id)}/benchmarks"
    off = await gateway.patch(f"{path}/settings", json={"enabled": False}, headers=owner)
    assert off.status_code == 200, off.text

    response = await gateway.get(f"{path}/compensation/results", headers=owner)

    problem = assert_problem(response, 409)
    assert problem["type"] == "https://wee5.dev/problems/benchmarks-disabled"
    assert problem["title"] == "Benchmarks are turned off in this community"
    assert "turned off" in problem["detail"]
