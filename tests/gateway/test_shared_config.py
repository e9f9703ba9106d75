"""Shared configuration of a company (issue 20 item 4): a company admin copies one XP config,
one set of reward rules and one set of badges from a community of the company (or a template)
to several of its communities at once, through each community's own rules, audited. Against
real xp, rewards and billing gRPC servers, the gateway, Postgres, Redis and NATS; xp learns
the company from the activities' envelopes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.gateway.test_company_board import _grant, _message, _problem
from tests.support.faults import eventually
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5.xp.v1 import xp_pb2_grpc
from wee5_billing.config import BillingSettings
from wee5_billing.server import build as build_billing
from wee5_gateway.db.models import AuditEntry
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_rewards.config import RewardsSettings
from wee5_rewards.server import build as build_rewards
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

Sessions = async_sessionmaker[AsyncSession]
ALL_PARTS = ["xp_config", "reward_rules", "badges"]


@dataclass
class World:
    sessions: Sessions
    client: httpx.AsyncClient
    billing: BillingServiceAsyncStub
    xp: XpServiceAsyncStub
    company_id: str
    # communities[0] is the source; 1 and 2 get the copy; 3 stays as it was; 4-6 get a shared
    # reward rule their members earn; 7 and 8 follow the company's XP config, 9 and 10 its
    # badges and reward rules
    communities: list[str]
    other_community: str
    admin_of_all: dict[str, str]
    admin_of_first: dict[str, str]
    member_of_first: dict[str, str]


@pytest.fixture(scope="module")
async def world(
    database_url: str, redis: Redis, bus: EventBus, sessionmaker: Sessions
) -> AsyncIterator[World]:
    xp_addr, billing_addr, rewards_addr = (f"127.0.0.1:{free_port()}" for _ in range(3))
    xp_server = await build_xp(XpSettings(xp_addr=xp_addr, xp_cooldown_seconds=0))
    billing_server = await build_billing(BillingSettings(billing_addr=billing_addr))
    rewards_server = await build_rewards(
        RewardsSettings(rewards_addr=rewards_addr, xp_addr=xp_addr)
    )
    for server in (xp_server, billing_server, rewards_server):
        await server.start()
    settings = gateway_settings(
        xp_addr,
        billing_addr=billing_addr,
        rewards_addr=rewards_addr,
        shared_read_seconds=0,
        entitlements_cache_seconds=0,
    )
    tag = uuid.uuid4().hex[:8]
    company_id = f"biz_{tag}"
    communities = [f"exp_{tag}_{n}" for n in range(11)]
    other_company, other_community = f"biz_{tag}_other", f"exp_{tag}_other"
    admin_of_all = await new_account(sessionmaker, communities[0], "owner")
    for community_id in [*communities[1:], other_community]:
        await _grant(sessionmaker, admin_of_all, community_id, "admin")
    admin_of_first = await new_account(sessionmaker, communities[0], "admin")
    member_of_first = await new_account(
        sessionmaker, communities[0], "member", member_user_id="user_x"
    )
    async with channel(xp_addr) as xp_chan, channel(billing_addr) as billing_chan:
        xp: XpServiceAsyncStub = xp_pb2_grpc.XpServiceStub(xp_chan)
        billing: BillingServiceAsyncStub = billing_pb2_grpc.BillingServiceStub(billing_chan)
        for community_id in communities:
            await _message(xp, community_id, "user_seed", company_id)
        await _message(xp, other_community, "user_seed", other_company)
        async with serve(settings) as client:
            w = World(
                sessionmaker,
                client,
                billing,
                xp,
                company_id,
                communities,
                other_community,
                bearer(settings, admin_of_all),
                bearer(settings, admin_of_first),
                bearer(settings, member_of_first),
            )
            await _company_plan(w, billing_pb2.PLAN_ENTERPRISE)
            # Billing learns each community's company from xp's events, not at once: the
            # company's plan covers a community only from then on.
            for community_id in communities:
                await eventually(partial(_in_company, w, community_id), within=30)
            yield w
    for server in (rewards_server, billing_server, xp_server):
        await server.stop()


async def _company_plan(w: World, plan: billing_pb2.Plan.ValueType) -> None:
    """The company's own plan, as a platform admin assigns it (it covers every community)."""
    await w.billing.SetCommunityPlan(
        billing_pb2.SetCommunityPlanRequest(
            community_id=w.company_id, plan=plan, admin_user_id="ops", reason="set by the test"
        )
    )


async def _in_company(w: World, community_id: str) -> bool:
    reply = await w.billing.GetEntitlements(
        billing_pb2.GetEntitlementsRequest(community_id=community_id)
    )
    return reply.company_id == w.company_id


def _community(community_id: str) -> str:
    return f"/api/v1/communities/{community_id}"


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def _apply(w: World, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return await w.client.post(
        f"/api/v1/companies/{w.company_id}/shared-config/apply",
        json=body,
        headers=w.admin_of_all if headers is None else headers,
    )


async def _config(w: World, community_id: str) -> dict[str, Any]:
    config: dict[str, Any] = await _ok(
        await w.client.get(f"{_community(community_id)}/xp-config", headers=w.admin_of_all)
    )
    config.pop("community_id")
    return config


async def _rules(w: World, community_id: str) -> list[dict[str, Any]]:
    """The rules by level, a badge reward by its badge's name (ids differ per community)."""
    badges = {b["id"]: b["name"] for b in await _badges(w, community_id)}
    listed = await _ok(
        await w.client.get(f"{_community(community_id)}/reward-rules", headers=w.admin_of_all)
    )
    rules = []
    for rule in listed["rules"]:
        rule.pop("id")
        rule["badge_id"] = badges.get(rule["badge_id"]) if rule["badge_id"] else None
        rules.append(rule)
    return rules


async def _badges(w: World, community_id: str) -> list[dict[str, Any]]:
    page = await _ok(
        await w.client.get(f"{_community(community_id)}/badges", headers=w.admin_of_all)
    )
    badges: list[dict[str, Any]] = page["badges"]
    return badges


def _definitions(badges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("name", "description", "image_url", "criteria", "role_id")
    return sorted(({k: b[k] for k in keep} for b in badges), key=lambda b: b["name"])


async def _entries(w: World, community_id: str, action: str | None = None) -> int:
    query = select(func.count()).select_from(AuditEntry)
    query = query.where(AuditEntry.community_id == community_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    async with w.sessions() as session:
        return int(await session.scalar(query) or 0)


async def _configure_source(w: World) -> None:
    source = _community(w.communities[0])
    h = w.admin_of_all
    await _ok(
        await w.client.patch(
            f"{source}/xp-config",
            json={"cooldown_seconds": 17, "message": {"min": 11, "max": 13}},
            headers=h,
        )
    )
    badge = await _ok(
        await w.client.post(
            f"{source}/badges",
            json={"name": "Regular", "criteria": {"kind": "level", "threshold": 7}},
            headers=h,
        ),
        201,
    )
    await _ok(
        await w.client.put(
            f"{source}/reward-rules/3", json={"kind": "free_days", "free_days": 2}, headers=h
        )
    )
    await _ok(
        await w.client.put(
            f"{source}/reward-rules/7", json={"kind": "badge", "badge_id": badge["id"]}, headers=h
        )
    )
    await _ok(await w.client.delete(f"{source}/reward-rules/100", headers=h), 204)


async def test_copy_from_one_community_to_two_others_then_again_changes_nothing(
    world: World,
) -> None:
    w = world
    source, targets, untouched = w.communities[0], w.communities[1:3], w.communities[3]
    await _configure_source(w)
    before_untouched = (await _config(w, untouched), await _rules(w, untouched))
    assert await _config(w, targets[0]) != await _config(w, source)

    applied = await _ok(
        await _apply(w, {"from_community_id": source, "parts": ALL_PARTS, "community_ids": targets})
    )

    assert applied["source"] == f"community:{source}"
    assert [c["community_id"] for c in applied["communities"]] == targets
    for outcome in applied["communities"]:
        assert outcome["status"] == "changed", outcome
        parts = outcome["parts"]
        assert {p: parts[p]["status"] for p in ALL_PARTS} == dict.fromkeys(ALL_PARTS, "changed")
        assert "badge 'Regular': created" in parts["badges"]["changes"]
        # Levels 5…50 are the defaults in both; 100 the source removed.
        assert parts["reward_rules"]["changes"] == [
            "level 3: created",
            "level 7: created",
            "level 100: removed",
        ]
        assert {"cooldown_seconds", "message"} <= set(parts["xp_config"]["changes"])
    for target in targets:
        assert await _config(w, target) == await _config(w, source)
        assert await _rules(w, target) == await _rules(w, source)
        assert _definitions(await _badges(w, target)) == _definitions(await _badges(w, source))
        # The rule of level 7 gives the target's own badge "Regular".
        [seven] = [r for r in await _rules(w, target) if r["level"] == 7]
        assert seven["badge_id"] == "Regular"
        # Each change audited in the community, by the route's own entry, and the apply too.
        assert await _entries(w, target, "xp_config.changed") == 1
        assert await _entries(w, target, "badge.created") == 1
        assert await _entries(w, target, "reward_rule.changed") >= 2
        assert await _entries(w, target, "reward_rule.deleted") == 1
        assert await _entries(w, target, "shared_config.applied") == 1
    assert (await _config(w, untouched), await _rules(w, untouched)) == before_untouched
    async with w.sessions() as session:
        [company_entry] = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.community_id == w.company_id,
                    AuditEntry.action == "shared_config.applied",
                )
            )
        ).all()
    assert company_entry.target == f"community:{source}"
    assert company_entry.after is not None
    assert company_entry.after["parts"] == ["badges", "reward_rules", "xp_config"]
    assert company_entry.after["communities"] == dict.fromkeys(targets, "changed")
    assert company_entry.actor_account_id is not None

    audited = {t: await _entries(w, t) for t in targets}
    again = await _ok(
        await _apply(w, {"from_community_id": source, "parts": ALL_PARTS, "community_ids": targets})
    )

    for outcome in again["communities"]:
        assert outcome["status"] == "unchanged", outcome
        assert all(
            p["status"] == "unchanged" and not p.get("changes") for p in outcome["parts"].values()
        )
    assert {t: await _entries(w, t) for t in targets} == audited
    for target in targets:
        assert await _config(w, target) == await _config(w, source)


async def test_a_target_outside_the_company_is_422_and_nothing_is_applied(world: World) -> None:
    w = world
    target = w.communities[3]
    before = (await _config(w, target), await _entries(w, target))
    response = await _apply(
        w,
        {
            "from_community_id": w.communities[0],
            "parts": ["xp_config"],
            "community_ids": [target, w.other_community],
        },
    )
    problem = _problem(response, 422)
    assert problem["errors"][0]["key"] == "community_ids[1]"
    assert w.other_community in problem["detail"]
    assert (await _config(w, target), await _entries(w, target)) == before

    outside_source = await _apply(
        w,
        {"from_community_id": w.other_community, "parts": ["xp_config"], "community_ids": [target]},
    )
    assert _problem(outside_source, 422)["errors"][0]["key"] == "from_community_id"
    assert (await _config(w, target), await _entries(w, target)) == before


async def test_a_refused_part_is_said_next_to_the_ones_that_changed(world: World) -> None:
    """A template whose reward rule gives a badge the community lacks: its rules are refused
    (409, as the badge is missing) while its XP config changes; the answer says both."""
    w = world
    target = w.communities[3]
    rules_before = await _rules(w, target)
    body = {
        "template": {
            "xp_config": {
                "message": {"min": 21, "max": 21},
                "post": {"min": 15, "max": 25},
                "reaction": {"min": 5, "max": 5},
                "cooldown_seconds": 45,
            },
            "reward_rules": [{"level": 4, "kind": "badge", "badge_name": "Nope"}],
        },
        "parts": ["xp_config", "reward_rules"],
        "community_ids": [target],
    }
    applied = await _ok(await _apply(w, body))
    [outcome] = applied["communities"]
    assert applied["source"] == "template"
    assert outcome["status"] == "refused"
    assert outcome["parts"]["xp_config"]["status"] == "changed"
    refused = outcome["parts"]["reward_rules"]
    assert refused["status"] == "refused"
    assert refused["problem_status"] == 409
    assert "Nope" in refused["reason"]
    assert (await _config(w, target))["cooldown_seconds"] == 45
    assert await _rules(w, target) == rules_before

    again = await _ok(await _apply(w, body))
    [outcome] = again["communities"]
    assert outcome["parts"]["xp_config"] == {"status": "unchanged"}
    assert outcome["parts"]["reward_rules"]["status"] == "refused"


async def test_template_reward_rules_replace_the_set_and_again_change_nothing(
    world: World,
) -> None:
    w = world
    target = w.communities[3]
    rules = [
        {"level": 3, "kind": "free_days", "free_days": 2},
        {"level": 6, "kind": "discount_code", "discount": {"type": "percent", "percent_off": 10}},
    ]
    body = {
        "template": {"reward_rules": rules},
        "parts": ["reward_rules"],
        "community_ids": [target],
    }
    [outcome] = (await _ok(await _apply(w, body)))["communities"]
    assert outcome["parts"]["reward_rules"]["changes"] == [
        "level 3: created",
        "level 6: created",
        *(f"level {level}: removed" for level in (5, 10, 25, 50, 100)),
    ]
    held = await _rules(w, target)
    assert [(r["level"], r["kind"], r["free_days"]) for r in held] == [
        (3, "free_days", 2),
        (6, "discount_code", None),
    ]
    assert held[1]["discount"]["percent_off"] == 10

    [again] = (await _ok(await _apply(w, body)))["communities"]
    assert again == {
        "community_id": target,
        "status": "unchanged",
        "parts": {"reward_rules": {"status": "unchanged"}},
    }
    assert await _rules(w, target) == held


async def test_a_template_must_hold_the_parts_it_is_asked_for(world: World) -> None:
    response = await _apply(
        world,
        {
            "template": {"badges": []},
            "parts": ["xp_config"],
            "community_ids": [world.communities[1]],
        },
    )
    assert _problem(response, 422)["errors"][0]["key"] == "template.xp_config"
    badge = {"name": "Twice", "criteria": {"kind": "manual"}}
    twice = await _apply(
        world,
        {
            "template": {"badges": [badge, badge]},
            "parts": ["badges"],
            "community_ids": [world.communities[1]],
        },
    )
    assert _problem(twice, 422)["errors"][0]["key"] == "template.badges[1].name"
    base = f"/api/v1/companies/{world.company_id}/shared-config/template"
    for body, key in (
        ({"badges": [badge, badge]}, "badges[1].name"),
        (
            {"reward_rules": [{"level": 2, "kind": "badge", "badge_id": "1"}]},
            "reward_rules[0].badge_id",
        ),
        ({}, "xp_config"),
    ):
        response = await world.client.put(base, json=body, headers=world.admin_of_all)
        assert _problem(response, 422)["errors"][0]["key"] == key


async def test_who_may_apply(world: World) -> None:
    w = world
    body = {
        "from_community_id": w.communities[0],
        "parts": ["xp_config"],
        "community_ids": [w.communities[1]],
    }
    _problem(await _apply(w, body, {}), 401)
    # An admin of one community only, and a member, are no admins of the company.
    _problem(await _apply(w, body, w.admin_of_first), 403)
    _problem(await _apply(w, body, w.member_of_first), 403)
    await _company_plan(w, billing_pb2.PLAN_FREE)
    try:
        problem = _problem(await _apply(w, body), 402)
        assert problem["required_plan"] == "enterprise"
    finally:
        await _company_plan(w, billing_pb2.PLAN_ENTERPRISE)


async def test_a_shared_reward_rule_is_granted_once_in_each_of_three_communities(
    world: World,
) -> None:
    """A template's badge and the rule giving it at level 2, applied to three communities: a
    member reaching level 2 in each gets it there once (rewards hears xp's level-up), and
    applying the same again and levelling on grants nothing more."""
    w = world
    targets = w.communities[4:7]
    template = {
        "badges": [{"name": "Shared", "criteria": {"kind": "manual"}}],
        "reward_rules": [{"level": 2, "kind": "badge", "badge_name": "Shared"}],
    }
    body = {"template": template, "parts": ["badges", "reward_rules"], "community_ids": targets}
    applied = await _ok(await _apply(w, body))
    assert [c["status"] for c in applied["communities"]] == ["changed"] * 3

    for community_id in targets:
        for _ in range(5):  # 100 XP: level 2
            await _message(w.xp, community_id, "user_climber", w.company_id)
    for community_id in targets:
        held = await _eventually_badges(w, community_id, "user_climber")
        assert [b["badge"]["name"] for b in held] == ["Shared"]

    again = await _ok(await _apply(w, body))
    assert [c["status"] for c in again["communities"]] == ["unchanged"] * 3
    for community_id in targets:
        await _message(w.xp, community_id, "user_climber", w.company_id)
        rewards = await _ok(
            await w.client.get(
                f"{_community(community_id)}/rewards",
                params={"user_id": "user_climber"},
                headers=w.admin_of_all,
            )
        )
        assert [(r["level"], r["kind"]) for r in rewards["rewards"]] == [(2, "badge")]
        [badge] = await _badges(w, community_id)
        assert rewards["rewards"][0]["badge_id"] == badge["id"]


async def _eventually_badges(w: World, community_id: str, user_id: str) -> list[dict[str, Any]]:
    held: list[dict[str, Any]] = []
    for _ in range(200):
        page = await _ok(
            await w.client.get(
                f"{_community(community_id)}/members/{user_id}/badges", headers=w.admin_of_all
            )
        )
        held = page["member_badges"]
        if held:
            return held
        await asyncio.sleep(0.05)
    raise AssertionError(f"no badge in {community_id}: {held}")


XP_CONFIG = {
    "message": {"min": 12, "max": 12},
    "post": {"min": 15, "max": 25},
    "reaction": {"min": 5, "max": 5},
}


async def _set_template(w: World, cooldown: int) -> Any:
    return await _ok(
        await w.client.put(
            f"/api/v1/companies/{w.company_id}/shared-config/template",
            json={"xp_config": {**XP_CONFIG, "cooldown_seconds": cooldown}},
            headers=w.admin_of_all,
        )
    )


async def _cooldowns(w: World, communities: list[str]) -> list[int]:
    return [(await _config(w, c))["cooldown_seconds"] for c in communities]


async def test_followers_get_each_template_change_until_they_change_the_part_themselves(
    world: World,
) -> None:
    w = world
    followers = w.communities[7:9]
    base = f"/api/v1/companies/{w.company_id}/shared-config"
    follow = {"parts": ["xp_config"], "community_ids": followers}
    # Nothing to follow before the company has a template of the part.
    no_template = await w.client.put(f"{base}/followers", json=follow, headers=w.admin_of_all)
    assert _problem(no_template, 422)["errors"][0]["key"] == "parts"
    outside = await w.client.put(
        f"{base}/followers",
        json={"parts": ["xp_config"], "community_ids": [w.other_community]},
        headers=w.admin_of_all,
    )
    assert _problem(outside, 422)["errors"][0]["key"] == "community_ids[0]"

    assert (await _set_template(w, 33))["communities"] == []  # nobody follows yet
    followed = await _ok(
        await w.client.put(f"{base}/followers", json=follow, headers=w.admin_of_all)
    )
    assert [c["status"] for c in followed["communities"]] == ["changed", "changed"]
    assert await _cooldowns(w, followers) == [33, 33]
    state = await _ok(await w.client.get(base, headers=w.admin_of_all))
    assert state["followers"] == {"xp_config": followers, "reward_rules": [], "badges": []}
    assert state["template"]["xp_config"]["cooldown_seconds"] == 33

    changed = await _set_template(w, 34)
    assert [(c["community_id"], c["status"]) for c in changed["communities"]] == [
        (followers[0], "changed"),
        (followers[1], "changed"),
    ]
    assert await _cooldowns(w, followers) == [34, 34]

    # The second follower's admin changes the cooldown: it overrides the template's.
    await _ok(
        await w.client.patch(
            f"{_community(followers[1])}/xp-config",
            json={"cooldown_seconds": 99},
            headers=w.admin_of_all,
        )
    )
    changed = await _set_template(w, 35)
    by_id = {c["community_id"]: c for c in changed["communities"]}
    assert by_id[followers[0]]["parts"]["xp_config"]["status"] == "changed"
    assert by_id[followers[1]]["status"] == "overridden"
    overridden = by_id[followers[1]]["parts"]["xp_config"]
    assert overridden["status"] == "overridden"
    assert "no longer follows" in overridden["reason"]
    assert await _cooldowns(w, followers) == [35, 99]
    state = await _ok(await w.client.get(base, headers=w.admin_of_all))
    assert state["followers"]["xp_config"] == [followers[0]]

    changed = await _set_template(w, 36)
    assert [c["community_id"] for c in changed["communities"]] == [followers[0]]
    assert await _cooldowns(w, followers) == [36, 99]
    assert await _entries(w, w.company_id, "shared_config.template_changed") == 4
    assert await _entries(w, w.company_id, "shared_config.followed") == 1

    # A one-off copy by the company onto a follower is no override: it still follows.
    once = {"from_community_id": w.communities[0], "parts": ["xp_config"]}
    await _ok(await _apply(w, {**once, "community_ids": [followers[0]]}))
    assert await _cooldowns(w, [followers[0]]) == await _cooldowns(w, [w.communities[0]])
    assert await _cooldowns(w, [followers[0]]) != [36]
    changed = await _set_template(w, 37)
    assert [(c["community_id"], c["status"]) for c in changed["communities"]] == [
        (followers[0], "changed")
    ]
    assert await _cooldowns(w, followers) == [37, 99]

    # The company lets the first follower go: it keeps what it holds, and hears no more.
    outside = await w.client.delete(f"{base}/followers/{w.other_community}", headers=w.admin_of_all)
    _problem(outside, 404)
    await _ok(
        await w.client.delete(f"{base}/followers/{followers[0]}", headers=w.admin_of_all), 204
    )
    assert (await _set_template(w, 38))["communities"] == []
    assert await _cooldowns(w, followers) == [37, 99]
    assert await _entries(w, w.company_id, "shared_config.unfollowed") == 1


async def test_followed_badges_and_rules_follow_until_a_followed_badge_is_redefined(
    world: World,
) -> None:
    w = world
    followers = w.communities[9:11]
    base = f"/api/v1/companies/{w.company_id}/shared-config"
    vip = {"name": "VIP", "criteria": {"kind": "manual"}}
    template: dict[str, Any] = {
        "badges": [vip],
        "reward_rules": [{"level": 2, "kind": "badge", "badge_name": "VIP"}],
    }
    await _ok(await w.client.put(f"{base}/template", json=template, headers=w.admin_of_all))
    follow = {"parts": ["badges", "reward_rules"], "community_ids": followers}
    followed = await _ok(
        await w.client.put(f"{base}/followers", json=follow, headers=w.admin_of_all)
    )
    assert [c["status"] for c in followed["communities"]] == ["changed", "changed"]

    # The second follower redefines the followed badge itself: its badges are its own now.
    [own_vip] = await _badges(w, followers[1])
    await _ok(
        await w.client.put(
            f"{_community(followers[1])}/badges/{own_vip['id']}",
            json={**vip, "description": "ours"},
            headers=w.admin_of_all,
        )
    )
    template["badges"] = [{**vip, "description": "the company's VIPs"}]
    template["reward_rules"].append({"level": 3, "kind": "free_days", "free_days": 1})
    changed = await _ok(
        await w.client.put(f"{base}/template", json=template, headers=w.admin_of_all)
    )
    by_id = {c["community_id"]: c["parts"] for c in changed["communities"]}
    assert by_id[followers[0]]["badges"]["changes"] == ["badge 'VIP': updated"]
    assert by_id[followers[0]]["reward_rules"]["changes"] == ["level 3: created"]
    assert by_id[followers[1]]["badges"]["status"] == "overridden"
    assert by_id[followers[1]]["reward_rules"]["changes"] == ["level 3: created"]
    assert [b["description"] for b in await _badges(w, followers[0])] == ["the company's VIPs"]
    assert [b["description"] for b in await _badges(w, followers[1])] == ["ours"]
    state = await _ok(await w.client.get(base, headers=w.admin_of_all))
    assert state["followers"]["badges"] == [followers[0]]
    assert state["followers"]["reward_rules"] == sorted(followers)
