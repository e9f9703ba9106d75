"""Validation errors that teach, through the real gateway: an invalid enum value lists the
values allowed there (body, nested body and query), an unknown field names the closest known
one."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateway import test_partial_updates as stack
from tests.gateway.test_tiers import admin_headers, assert_problem
from tests.gateway.test_xp_routes import RULES, base
from wee5_gateway.config import GatewaySettings

Client = httpx.AsyncClient
xp_addr, billing_addr, rewards_addr, benchmarks_addr, settings, gateway = (
    stack.xp_addr,
    stack.billing_addr,
    stack.rewards_addr,
    stack.benchmarks_addr,
    stack.settings,
    stack.gateway,
)


async def test_an_unknown_field_suggests_the_closest_known_one(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)

    response = await gateway.put(
        f"{base(community_id)}/reward-settings",
        json={"level_up_message": "{member} is level {level}"},
        headers=headers,
    )

    problem = assert_problem(response, 400)
    assert problem["detail"] == (
        "data: Object contains unknown field `level_up_message`; did you mean `level_up_template`?"
    )
    assert problem["errors"][0]["allowed"] == [
        "level_up_template",
        "discord_guild_id",
        "discord_intro_channel_id",
        "discord_welcome_channel_id",
        "discord_welcome_template",
        "discord_welcome_dm_template",
        "discord_subscription_role_id",
    ]


async def test_an_unknown_field_with_nothing_close_lists_the_known_fields(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)

    response = await gateway.put(
        f"{base(community_id)}/xp-config",
        json={**RULES, "curve": {"preset": "mee6", "zzz": 1}},
        headers=headers,
    )

    problem = assert_problem(response, 400)
    assert problem["errors"][0]["key"] == "curve"
    assert "known fields: `preset`, `shape`, `coefficients`, `first_level`" in problem["detail"]


async def test_an_invalid_enum_value_lists_the_allowed_values(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)

    nested = await gateway.put(
        f"{base(community_id)}/xp-config",
        json={**RULES, "curve": {"preset": "steep"}},
        headers=headers,
    )
    query = await gateway.get(
        f"{base(community_id)}/leaderboard", params={"period": "year"}, headers=headers
    )

    problem = assert_problem(nested, 400)
    assert problem["detail"] == (
        "curve.preset: Invalid enum value 'steep'; "
        "allowed: 'cubic', 'custom', 'default', 'linear', 'mee6'"
    )
    problem = assert_problem(query, 400)
    assert problem["errors"][0]["key"] == "period"
    assert problem["errors"][0]["allowed"] == ["all", "day", "month", "week"]


async def test_a_body_nested_too_deeply_is_a_400_on_typed_and_patched_routes(
    gateway: Client, settings: GatewaySettings, sessionmaker: Any, community_id: str
) -> None:
    headers = await admin_headers(settings, sessionmaker, community_id)
    deep_array = b"[" * 100_000 + b"]" * 100_000
    deep_object = b'{"a":' * 100_000 + b"1" + b"}" * 100_000

    typed = await gateway.put(
        f"{base(community_id)}/xp-config",
        content=deep_array,
        headers={**headers, "content-type": "application/json"},
    )
    patched = await gateway.patch(
        f"{base(community_id)}/xp-config",
        content=deep_object,
        headers={**headers, "content-type": "application/merge-patch+json"},
    )

    for response in (typed, patched):
        assert assert_problem(response, 400)["detail"] == (
            "the request body is nested too deeply to read"
        )
