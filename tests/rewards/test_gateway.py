"""The rewards API through the real gateway, with real xp, billing and rewards servers: plan
gates (402 naming the plan), validation (problem+json), the audit log, the reward ledger and its
dead letters, badges on the member card (and drawn on its image), and the level-up message."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from PIL import Image
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.rewards.conftest import RealXp
from tests.support.gateway import bearer, gateway_settings, new_account, serve
from wee5.events.v1 import events_pb2
from wee5_billing.config import BillingSettings
from wee5_billing.server import build as build_billing
from wee5_gateway.config import GatewaySettings
from wee5_gateway.db.models import AuditEntry
from wee5_gateway.web.rank_card import (
    BADGE_GAP,
    BADGE_SIZE,
    BADGE_TOP,
    CONTENT_LEFT,
    MAX_BADGES,
    PANEL,
    colour_of,
)
from wee5_kit.events import EventBus, new_meta
from wee5_rewards.config import RewardsSettings
from wee5_rewards.models import Reward
from wee5_rewards.server import build as build_rewards
from wee5_rewards.service import RewardsService

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: GatewaySettings
    sessions: Sessions

    async def community(self, plan: str = "free") -> tuple[str, dict[str, str], dict[str, str]]:
        """A community on `plan` with an admin and a member (`user_member`): their headers."""
        community_id = f"exp_{uuid.uuid4().hex[:12]}"
        admin = await new_account(self.sessions, community_id, "admin")
        member = await new_account(
            self.sessions, community_id, "member", member_user_id="user_member"
        )
        if plan != "free":
            response = await self.client.put(
                f"/api/v1/communities/{community_id}/plan",
                json={"plan": plan, "reason": "test"},
                headers=bearer(self.settings, platform_admin=True),
            )
            assert response.status_code == 200, response.text
        return community_id, bearer(self.settings, admin), bearer(self.settings, member)

    async def audit(self, community_id: str) -> list[str]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.community_id == community_id)
                .order_by(AuditEntry.id)
            )
            return [action for action in rows if action != "plan.changed"]


@pytest.fixture(scope="module")
async def api(
    real_xp: RealXp, database_url: str, redis: Redis, bus: EventBus, sessionmaker: Sessions
) -> AsyncIterator[Api]:
    billing_addr, rewards_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    billing = await build_billing(BillingSettings(billing_addr=billing_addr))
    rewards = await build_rewards(
        RewardsSettings(rewards_addr=rewards_addr, xp_addr=real_xp.address, rewards_workers=False)
    )
    await billing.start()
    await rewards.start()
    settings = gateway_settings(
        real_xp.address, billing_addr=billing_addr, rewards_addr=rewards_addr
    )
    async with serve(settings) as client:
        yield Api(client, settings, sessionmaker)
    await rewards.stop()
    await billing.stop()


def url(community_id: str, path: str) -> str:
    return f"/api/v1/communities/{community_id}{path}"


async def test_changing_rules_needs_premium_and_badges_need_enterprise(api: Api) -> None:
    community_id, admin, _ = await api.community("free")

    rule = await api.client.put(
        url(community_id, "/reward-rules/7"),
        json={"kind": "free_days", "free_days": 2},
        headers=admin,
    )
    badge = await api.client.post(
        url(community_id, "/badges"),
        json={"name": "Early", "criteria": {"kind": "manual"}},
        headers=admin,
    )

    assert rule.status_code == 402
    assert rule.json()["required_plan"] == "premium"
    assert badge.status_code == 402
    assert badge.json()["required_plan"] == "enterprise"
    listed = await api.client.get(url(community_id, "/reward-rules"), headers=admin)
    assert [rule["level"] for rule in listed.json()["rules"]] == [5, 10, 25, 50, 100]


async def test_a_premium_admin_changes_rules_and_the_change_is_audited(api: Api) -> None:
    community_id, admin, _ = await api.community("premium")

    saved = await api.client.put(
        url(community_id, "/reward-rules/7"),
        json={
            "kind": "discount_code",
            "discount": {"type": "flat", "amount_off_minor": 500, "currency": "usd"},
        },
        headers=admin,
    )
    deleted = await api.client.delete(url(community_id, "/reward-rules/5"), headers=admin)
    listed = await api.client.get(url(community_id, "/reward-rules"), headers=admin)

    assert saved.status_code == 200, saved.text
    assert saved.json()["created"] is True
    assert saved.json()["rule"]["discount"]["amount_off_minor"] == 500
    assert deleted.status_code == 204
    assert [r["level"] for r in listed.json()["rules"]] == [7, 10, 25, 50, 100]
    assert await api.audit(community_id) == ["reward_rule.changed", "reward_rule.deleted"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "free_days"},
        {"kind": "free_days", "free_days": 0},
        {"kind": "gold", "free_days": 1},
        {"kind": "discount_code", "discount": {"type": "percent", "percent_off": 101}},
        {"kind": "role", "role_id": "moderators"},
        {"kind": "free_days", "free_days": 1, "surprise": True},
    ],
)
async def test_an_invalid_rule_is_a_400_problem(api: Api, body: dict[str, object]) -> None:
    community_id, admin, _ = await api.community("premium")

    response = await api.client.put(url(community_id, "/reward-rules/7"), json=body, headers=admin)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_ledger_filters_by_status_and_dead_rewards_are_retried_by_an_admin(
    api: Api,
) -> None:
    community_id, admin, member = await api.community("free")
    event = events_pb2.LevelUp(
        meta=new_meta(community_id), user_id="user_member", from_level=1, to_level=11
    )
    async with api.sessions.begin() as session:
        await RewardsService().record_level_up(session, event)
        await session.execute(
            update(Reward)
            .where(Reward.community_id == community_id, Reward.level == 10)
            .values(status="dead", last_error="Whop answered 503: Service Unavailable")
        )

    dead = await api.client.get(url(community_id, "/rewards/dead"), headers=admin)
    pending = await api.client.get(url(community_id, "/rewards?status=pending"), headers=admin)
    bad_status = await api.client.get(url(community_id, "/rewards?status=lost"), headers=admin)
    [dead_reward] = dead.json()["rewards"]
    retried = await api.client.post(
        url(community_id, f"/rewards/{dead_reward['id']}/retry"), headers=admin
    )
    again = await api.client.post(
        url(community_id, f"/rewards/{dead_reward['id']}/retry"), headers=admin
    )
    mine = await api.client.get(url(community_id, "/members/user_member/rewards"), headers=member)

    assert (dead_reward["level"], dead_reward["last_error"]) == (
        10,
        "Whop answered 503: Service Unavailable",
    )
    assert [r["level"] for r in pending.json()["rewards"]] == [5]
    assert bad_status.status_code == 400
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    assert again.status_code == 409  # pending rewards are already in line
    assert sorted(r["level"] for r in mine.json()["rewards"]) == [5, 10]
    assert await api.audit(community_id) == ["reward.retried"]


async def test_badges_defined_awarded_and_revoked_show_on_the_member_card(
    api: Api, real_xp: RealXp
) -> None:
    community_id, admin, member = await api.community("enterprise")
    await real_xp.messages(community_id, "user_member", 1)
    created = await api.client.post(
        url(community_id, "/badges"),
        json={
            "name": "Helper",
            "description": "Helps others",
            "image_url": "https://cdn.example.test/helper.png",
            "criteria": {"kind": "manual"},
        },
        headers=admin,
    )
    badge_id = created.json()["id"]

    awarded = await api.client.put(
        url(community_id, f"/badges/{badge_id}/members/user_member"), headers=admin
    )
    card = await api.client.get(url(community_id, "/members/user_member"), headers=member)
    held = await api.client.get(url(community_id, "/members/user_member/badges"), headers=member)
    revoked = await api.client.delete(
        url(community_id, f"/badges/{badge_id}/members/user_member"), headers=admin
    )
    card_after = await api.client.get(url(community_id, "/members/user_member"), headers=member)
    duplicate = await api.client.post(
        url(community_id, "/badges"),
        json={"name": "Helper", "criteria": {"kind": "manual"}},
        headers=admin,
    )

    assert created.status_code == 201, created.text
    assert awarded.json()["newly_awarded"] is True
    assert [(b["id"], b["name"]) for b in card.json()["badges"]] == [(badge_id, "Helper")]
    assert [h["badge"]["name"] for h in held.json()["member_badges"]] == ["Helper"]
    assert revoked.status_code == 204
    assert card_after.json()["badges"] == []
    assert duplicate.status_code == 409
    assert await api.audit(community_id) == ["badge.created", "badge.awarded", "badge.revoked"]


async def test_members_read_the_level_up_message_and_admins_set_it(api: Api) -> None:
    community_id, admin, member = await api.community("free")

    default = await api.client.get(url(community_id, "/reward-settings"), headers=member)
    updated = await api.client.put(
        url(community_id, "/reward-settings"),
        json={"level_up_template": "GG {member}, level {level}! {reward}"},
        headers=admin,
    )
    refused = await api.client.put(
        url(community_id, "/reward-settings"),
        json={"level_up_template": "{member} {password}"},
        headers=admin,
    )
    read = await api.client.get(url(community_id, "/reward-settings"), headers=member)

    assert "{level}" in default.json()["level_up_template"]
    assert {"member", "level", "reward", "rank", "mention"} <= set(default.json()["variables"])
    assert updated.status_code == 200, updated.text
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["key"] == "level_up_template"
    assert "{password}" in refused.json()["errors"][0]["message"]
    assert read.json()["level_up_template"] == "GG {member}, level {level}! {reward}"
    assert await api.audit(community_id) == ["reward_settings.changed"]


async def test_a_premium_backfill_through_the_api_reports_what_it_granted(
    api: Api, real_xp: RealXp
) -> None:
    community_id, admin, _ = await api.community("premium")
    await api.client.put(
        url(community_id, "/reward-rules/3"),
        json={"kind": "free_days", "free_days": 1},
        headers=admin,
    )
    await real_xp.messages(community_id, "user_a", 1)  # level 5

    dry = await api.client.post(
        url(community_id, "/reward-rules/backfill"), json={"dry_run": True}, headers=admin
    )

    assert dry.status_code == 200, dry.text
    # level 5 reaches rules 3 and 5 (the consumer may already have granted them from xp's
    # level-up event: then they count as skipped).
    assert dry.json()["created"] + dry.json()["skipped"] == 2
    assert dry.json()["dry_run"] is True


async def test_a_discount_code_is_shown_to_its_member_and_admins_only(api: Api) -> None:
    community_id, admin, member = await api.community("free")
    other = bearer(
        api.settings,
        await new_account(api.sessions, community_id, "member", member_user_id="user_other"),
    )
    event = events_pb2.LevelUp(
        meta=new_meta(community_id), user_id="user_member", from_level=99, to_level=100
    )
    async with api.sessions.begin() as session:
        await RewardsService().record_level_up(session, event)
        await session.execute(
            update(Reward)
            .where(Reward.community_id == community_id)
            .values(status="granted", code="LVL100-SECRET")
        )

    async def code_seen_by(headers: dict[str, str]) -> object:
        reply = await api.client.get(
            url(community_id, "/members/user_member/rewards"), headers=headers
        )
        assert reply.status_code == 200, reply.text
        [reward] = reply.json()["rewards"]
        return reward["discount"]["code"]

    assert await code_seen_by(member) == "LVL100-SECRET"
    assert await code_seen_by(admin) == "LVL100-SECRET"
    assert await code_seen_by(other) is None


async def test_the_card_image_draws_the_first_six_badges_in_award_order(
    api: Api, real_xp: RealXp
) -> None:
    community_id, admin, member = await api.community("enterprise")
    await real_xp.messages(community_id, "user_member", 1)
    badge_ids = []
    for n in range(MAX_BADGES + 1):
        created = await api.client.post(
            url(community_id, "/badges"),
            json={"name": f"Badge {n}", "criteria": {"kind": "manual"}},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        badge_ids.append(created.json()["id"])
        awarded = await api.client.put(
            url(community_id, f"/badges/{badge_ids[-1]}/members/user_member"), headers=admin
        )
        assert awarded.status_code == 200, awarded.text

    response = await api.client.get(
        url(community_id, "/members/user_member/card.png"), headers=member
    )

    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content)).convert("RGB")

    def badge_pixel(n: int) -> tuple[int, ...]:
        # Inside the n-th circle, left of its letter.
        x = CONTENT_LEFT + n * (BADGE_SIZE + BADGE_GAP) + 5
        return tuple(image.getpixel((x, BADGE_TOP + BADGE_SIZE // 2)))  # type: ignore[arg-type]

    assert [badge_pixel(n) for n in range(MAX_BADGES)] == [
        colour_of(badge_id) for badge_id in badge_ids[:MAX_BADGES]
    ]
    assert badge_pixel(MAX_BADGES) == PANEL[:3]
