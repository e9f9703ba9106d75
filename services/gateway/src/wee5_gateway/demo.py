"""The demo community for local runs (`WEE5_DEMO=1`, which `make up` sets; off by default and
in production): at startup the gateway seeds community `demo` with a dozen named members spread
over the levels, two reward rules of its own, a badge, the enterprise plan, and an owner
account to sign in with outside Whop, so a newcomer can click through every page.

Everything goes through the services' own RPCs, as the API and the webhook intake use them:
members get their names the way Whop's webhooks give them, as the profile of an activity
(RecordActivities), and their XP history through ImportMembers (imported XP counts all time,
not on period boards, and announces no level-ups, so no rewards are granted for the past).
Seeding again adds nothing: activities carry fixed idempotency keys, an import of the same
numbers credits nothing, and rules, the badge, the plan, the account and its role are created
only where missing.

Startup does not wait for it: the services may still be starting, so the seeding retries in
the background, and /readyz answers 503 (`demo: seeding`) until it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import grpc
from litestar import Litestar
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.billing.v1 import billing_pb2
from wee5.rewards.v1 import rewards_pb2
from wee5.xp.v1 import xp_pb2
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.clients import OK, Downstream
from wee5_gateway.core.security import Passwords
from wee5_gateway.db.models import CommunityRole
from wee5_gateway.db.repository import AccountRepository, RolesRepository
from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway.demo")

DEMO_COMMUNITY = "demo"
DEMO_EMAIL = "demo@wee5.local"
# Printed by `make up`; the demo is for one's own machine only.
DEMO_PASSWORD = "wee5-demo-password"
DEMO_PLAN = "enterprise"
DEMO_STATE = "demo"
SEEDING = "seeding"
# Who the seed says it is where a service records an actor.
SEEDER = "wee5-demo"
_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


class DemoNotSeeded(Exception):
    """A round of seeding that could not finish; the next round tries again."""


@dataclass(frozen=True)
class DemoMember:
    user_id: str
    name: str
    username: str
    # Imported history (all time).
    xp: int
    # Activities recorded today (they count on the day, week and month boards too).
    kinds: tuple[xp_pb2.ActivityKind.ValueType, ...]


_M, _P, _R = (
    xp_pb2.ACTIVITY_KIND_MESSAGE,
    xp_pb2.ACTIVITY_KIND_POST,
    xp_pb2.ACTIVITY_KIND_REACTION,
)
DEMO_MEMBERS = (
    DemoMember("demo_ava", "Ava Martin", "ava", 9150, (_M, _P, _R)),
    DemoMember("demo_noah", "Noah Kim", "noahk", 7860, (_M, _R)),
    DemoMember("demo_mia", "Mia Rossi", "mia.rossi", 6120, (_M, _P)),
    DemoMember("demo_leo", "Leo Dubois", "leo", 5280, (_M,)),
    DemoMember("demo_zoe", "Zoe Nakamura", "zoe_n", 3960, (_M, _P, _R)),
    DemoMember("demo_omar", "Omar Haddad", "omar", 2600, (_M, _R)),
    # The demo account's own member (its card and "you" on the board).
    DemoMember("demo_lena", "Lena Fischer", "lena", 1850, (_M, _P)),
    DemoMember("demo_ravi", "Ravi Patel", "ravi", 980, (_M,)),
    DemoMember("demo_sofia", "Sofia Alves", "sofia", 610, (_M, _P, _R)),
    DemoMember("demo_finn", "Finn O'Brien", "finn", 300, (_M,)),
    DemoMember("demo_yuki", "Yuki Tanaka", "yuki", 140, (_M, _R)),
    DemoMember("demo_ines", "Ines Costa", "ines", 0, (_M,)),
)
DEMO_OWNER_MEMBER = "demo_lena"
DEMO_BADGE = "Veteran"
# The community's own rules, on top of the defaults (levels 5, 10, 25, 50, 100).
DEMO_RULES = {
    15: rewards_pb2.RewardSpec(
        kind=rewards_pb2.REWARD_KIND_DISCOUNT_CODE,
        discount=rewards_pb2.Discount(type=rewards_pb2.DISCOUNT_TYPE_PERCENT, percent_off=25),
    ),
    20: rewards_pb2.RewardSpec(kind=rewards_pb2.REWARD_KIND_FREE_DAYS, free_days=30),
}


@dataclass(frozen=True)
class DemoSeed:
    """What one seeding did; all zeros when everything existed already."""

    xp_imported_members: int
    activities_recorded: int
    rules_created: int
    badge_created: bool
    badges_awarded: int
    plan_assigned: bool
    account_created: bool
    role_granted: bool


async def seed_demo(
    downstream: Downstream,
    sessionmaker: async_sessionmaker[AsyncSession],
    passwords: Passwords,
) -> DemoSeed:
    """Seeds the demo community where anything is missing (see the module's docstring)."""
    activities = await _record_activities(downstream)
    imported = await downstream.xp.ImportMembers(
        xp_pb2.ImportMembersRequest(
            community_id=DEMO_COMMUNITY,
            source=xp_pb2.SOURCE_API,
            members=[
                xp_pb2.ImportedMember(user_id=m.user_id, xp=m.xp, message_count=m.xp // 20)
                for m in DEMO_MEMBERS
                if m.xp
            ],
        )
    )
    rules = await _add_rules(downstream)
    badge_id, badge_created = await _badge(downstream)
    awarded = await _award_badge(downstream, badge_id)
    plan_assigned = await _assign_plan(downstream)
    account_created, role_granted = await _owner_account(sessionmaker, passwords)
    return DemoSeed(
        xp_imported_members=imported.imported,
        activities_recorded=activities,
        rules_created=rules,
        badge_created=badge_created,
        badges_awarded=awarded,
        plan_assigned=plan_assigned,
        account_created=account_created,
        role_granted=role_granted,
    )


async def _record_activities(downstream: Downstream) -> int:
    """Today's activities, each carrying the member's profile as a Whop webhook would."""
    reply = await downstream.xp.RecordActivities(
        xp_pb2.RecordActivitiesRequest(
            activities=[
                xp_pb2.Activity(
                    community_id=DEMO_COMMUNITY,
                    user_id=m.user_id,
                    kind=kind,
                    source=xp_pb2.SOURCE_API,
                    idempotency_key=f"demo:{m.user_id}:{xp_pb2.ActivityKind.Name(kind)}",
                    content_length=120,
                    profile=xp_pb2.Profile(display_name=m.name, username=m.username),
                )
                for m in DEMO_MEMBERS
                for kind in m.kinds
            ]
        )
    )
    return sum(1 for r in reply.results if r.outcome != xp_pb2.ACTIVITY_OUTCOME_DUPLICATE)


async def _add_rules(downstream: Downstream) -> int:
    """The demo's own rules, where the community has none at their levels."""
    listed = await downstream.rewards.ListRewardRules(
        rewards_pb2.ListRewardRulesRequest(community_id=DEMO_COMMUNITY)
    )
    present = {rule.level for rule in listed.rules}
    created = 0
    for level, reward in DEMO_RULES.items():
        if level in present:
            continue
        await downstream.rewards.UpsertRewardRule(
            rewards_pb2.UpsertRewardRuleRequest(
                community_id=DEMO_COMMUNITY, level=level, reward=reward, enabled=True
            )
        )
        created += 1
    return created


async def _find_badge(downstream: Downstream) -> str | None:
    token = ""
    while True:
        page = await downstream.rewards.ListBadges(
            rewards_pb2.ListBadgesRequest(
                community_id=DEMO_COMMUNITY, page_size=100, page_token=token
            )
        )
        for badge in page.badges:
            if badge.name == DEMO_BADGE:
                return badge.id
        token = page.next_page_token
        if not token:
            return None


async def _badge(downstream: Downstream) -> tuple[str, bool]:
    found = await _find_badge(downstream)
    if found is not None:
        return found, False
    try:
        reply = await downstream.rewards.CreateBadge(
            rewards_pb2.CreateBadgeRequest(
                community_id=DEMO_COMMUNITY,
                name=DEMO_BADGE,
                description="Reached level 10.",
                criteria=rewards_pb2.BadgeCriteria(
                    kind=rewards_pb2.BADGE_CRITERIA_KIND_LEVEL,
                    threshold=10,
                    period=rewards_pb2.BADGE_PERIOD_ALL_TIME,
                ),
            )
        )
    except grpc.aio.AioRpcError as error:
        # Another gateway created it meanwhile.
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        found = await _find_badge(downstream)
        if found is None:
            raise
        return found, False
    return reply.badge.id, True


async def _award_badge(downstream: Downstream, badge_id: str) -> int:
    """The badge for the members at level 10 or more (their level came from the import,
    which evaluates no badge criteria)."""
    awarded = 0
    for m in DEMO_MEMBERS:
        member = await downstream.xp.GetMember(
            xp_pb2.GetMemberRequest(community_id=DEMO_COMMUNITY, user_id=m.user_id)
        )
        if member.member.level < 10:
            continue
        reply = await downstream.rewards.AwardBadge(
            rewards_pb2.AwardBadgeRequest(
                community_id=DEMO_COMMUNITY, badge_id=badge_id, user_id=m.user_id
            )
        )
        awarded += reply.newly_awarded
    return awarded


async def _assign_plan(downstream: Downstream) -> bool:
    """Every feature unlocked, unless the demo has a plan already (one set by hand stays)."""
    current = await downstream.billing.GetSubscription(
        billing_pb2.GetSubscriptionRequest(community_id=DEMO_COMMUNITY)
    )
    if current.HasField("subscription"):
        return False
    await downstream.billing.SetCommunityPlan(
        billing_pb2.SetCommunityPlanRequest(
            community_id=DEMO_COMMUNITY,
            plan=billing_pb2.Plan.Value(f"PLAN_{DEMO_PLAN.upper()}"),
            admin_user_id=SEEDER,
            reason="WEE5_DEMO: the demo community shows every feature",
        )
    )
    return True


async def _owner_account(
    sessionmaker: async_sessionmaker[AsyncSession], passwords: Passwords
) -> tuple[bool, bool]:
    """The demo account (created once; a password changed since is kept) as the owner of the
    demo community, linked to one of its members."""
    password_hash = await asyncio.to_thread(passwords.hash, DEMO_PASSWORD)
    async with sessionmaker.begin() as session:
        accounts = AccountRepository(session)
        user = await accounts.create_user(DEMO_EMAIL, password_hash, "Demo owner")
        created = user is not None
        if user is None:
            user = await accounts.user_by_email(DEMO_EMAIL)
        if user is None:  # deleted between the two statements; the next round adds it
            raise DemoNotSeeded("the demo account vanished while it was being seeded")
        roles = RolesRepository(session)
        if await roles.get_for_update(DEMO_COMMUNITY, user.id) is not None:
            return created, False
        session.add(
            CommunityRole(
                community_id=DEMO_COMMUNITY,
                account_id=user.id,
                role="owner",
                member_user_id=DEMO_OWNER_MEMBER,
                granted_by=None,
            )
        )
    return created, True


@dataclass
class DemoStatus:
    """`ok` once seeded; until then `seeding` (what /readyz reports as the `demo` check)."""

    state: str = SEEDING


def demo_lifespan(
    settings: GatewaySettings,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """With `WEE5_DEMO` on, seeds the demo community in the background from startup on,
    retrying while the services start; otherwise nothing."""

    @asynccontextmanager
    async def demo(app: Litestar) -> AsyncIterator[None]:
        if not settings.demo:
            yield
            return
        status = DemoStatus()
        app.state[DEMO_STATE] = status
        task = asyncio.create_task(
            _seed_until_done(app.state.downstream, app.state.sessionmaker, status)
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return demo


async def _seed_until_done(
    downstream: Downstream,
    sessionmaker: async_sessionmaker[AsyncSession],
    status: DemoStatus,
) -> None:
    passwords = Passwords()
    attempt = 0
    while True:
        try:
            seeded = await seed_demo(downstream, sessionmaker, passwords)
        except (grpc.aio.AioRpcError, SQLAlchemyError, OSError, DemoNotSeeded) as error:
            delay = _RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)]
            attempt += 1
            log.info(
                "demo community not seeded yet; trying again",
                error=_describe(error),
                retry_in_seconds=delay,
            )
            await asyncio.sleep(delay)
            continue
        status.state = OK
        log.info(
            "demo community ready",
            community_id=DEMO_COMMUNITY,
            **{name: getattr(seeded, name) for name in DemoSeed.__dataclass_fields__},
        )
        return


def _describe(error: Exception) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return type(error).__name__
