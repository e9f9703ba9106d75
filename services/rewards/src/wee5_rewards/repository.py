"""Every SQL statement of the rewards service."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from wee5_rewards.models import (
    Announcement,
    AnnouncementAttempt,
    Badge,
    CommunitySettings,
    DiscordLink,
    InAppAnnouncement,
    MemberBadge,
    Reward,
    RewardAttempt,
    RewardRule,
    RoleAssignment,
)

# The kinds the Whop delivery worker applies; badges and roles are settled when recorded.
WHOP_KINDS = ("free_days", "discount_code")
# A Discord community's id is its guild id.
_GUILD_ID = re.compile(r"[0-9]{1,20}")


@dataclass(frozen=True)
class NewReward:
    community_id: str
    user_id: str
    level: int
    kind: str
    free_days: int | None = None
    discount_type: str | None = None
    discount_percent: int | None = None
    amount_off_minor: int | None = None
    currency: str | None = None
    duration_months: int | None = None
    expires_in_days: int | None = None
    badge_id: int | None = None
    role_id: str | None = None
    rule_id: int | None = None
    status: str = "pending"


class RewardsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_rewards(self, rewards: Sequence[NewReward]) -> list[Reward]:
        """Stores each reward unless the member already has one for its level; returns the
        rows that were new."""
        if not rewards:
            return []
        now = func.now()
        rows = await self.session.scalars(
            insert(Reward)
            .values(
                [
                    {
                        "community_id": r.community_id,
                        "user_id": r.user_id,
                        "level": r.level,
                        "kind": r.kind,
                        "free_days": r.free_days,
                        "discount_type": r.discount_type,
                        "discount_percent": r.discount_percent,
                        "amount_off_minor": r.amount_off_minor,
                        "currency": r.currency,
                        "duration_months": r.duration_months,
                        "expires_in_days": r.expires_in_days,
                        "badge_id": r.badge_id,
                        "role_id": r.role_id,
                        "rule_id": r.rule_id,
                        "status": r.status,
                        "granted_at": now if r.status == "granted" else None,
                        "next_attempt_at": now if r.status == "pending" else None,
                    }
                    for r in rewards
                ]
            )
            .on_conflict_do_nothing(
                index_elements=[Reward.community_id, Reward.user_id, Reward.level]
            )
            .returning(Reward)
        )
        return sorted(rows, key=lambda row: row.level)

    async def existing_levels(
        self, community_id: str, levels: Sequence[int]
    ) -> set[tuple[str, int]]:
        rows = await self.session.execute(
            select(Reward.user_id, Reward.level).where(
                Reward.community_id == community_id, Reward.level.in_(levels)
            )
        )
        return {(row.user_id, row.level) for row in rows}

    async def list_rewards(
        self,
        community_id: str,
        *,
        user_id: str | None,
        status: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[Reward]:
        """A community's rewards, newest first, starting below `before_id` when given."""
        query = select(Reward).where(Reward.community_id == community_id)
        if user_id is not None:
            query = query.where(Reward.user_id == user_id)
        if status is not None:
            query = query.where(Reward.status == status)
        if before_id is not None:
            query = query.where(Reward.id < before_id)
        rows = await self.session.scalars(query.order_by(Reward.id.desc()).limit(limit))
        return list(rows)

    async def get_reward(self, community_id: str, reward_id: int) -> Reward | None:
        reward: Reward | None = await self.session.scalar(
            select(Reward).where(Reward.community_id == community_id, Reward.id == reward_id)
        )
        return reward

    async def requeue(self, community_id: str, reward_id: int) -> Reward | None:
        """A dead, failed or waiting reward back to pending, due now, with a fresh budget."""
        reward: Reward | None = await self.session.scalar(
            update(Reward)
            .where(
                Reward.community_id == community_id,
                Reward.id == reward_id,
                Reward.status.in_(("dead", "failed", "waiting", "waiting_membership")),
            )
            .values(status="pending", budget_used=0, next_attempt_at=func.now(), last_error=None)
            .returning(Reward)
        )
        return reward

    async def attempts(self, reward_id: int) -> list[RewardAttempt]:
        rows = await self.session.scalars(
            select(RewardAttempt)
            .where(RewardAttempt.reward_id == reward_id)
            .order_by(RewardAttempt.number)
        )
        return list(rows)

    # Rules

    async def settings(self, community_id: str) -> CommunitySettings | None:
        row: CommunitySettings | None = await self.session.get(CommunitySettings, community_id)
        return row

    async def upsert_settings(self, community_id: str, **values: Any) -> CommunitySettings:
        row: CommunitySettings | None = await self.session.scalar(
            insert(CommunitySettings)
            .values(community_id=community_id, **values)
            .on_conflict_do_update(
                index_elements=[CommunitySettings.community_id],
                set_={**values, "updated_at": func.now()},
            )
            .returning(CommunitySettings)
            .execution_options(populate_existing=True)
        )
        assert row is not None
        return row

    async def open_rewards_by_status(self) -> dict[str, int]:
        """How many rewards are in each status but granted (the partial index
        ix_rewards_open_status)."""
        rows = await self.session.execute(
            select(Reward.status, func.count())
            .where(Reward.status != "granted")
            .group_by(Reward.status)
        )
        return {status: count for status, count in rows.tuples()}

    async def resume_waiting_roles(self, community_id: str) -> None:
        """The community's roles that waited for a guild are due again."""
        await self.session.execute(
            update(RoleAssignment)
            .where(RoleAssignment.community_id == community_id, RoleAssignment.status == "waiting")
            .values(status="pending", next_attempt_at=func.now())
        )

    async def community_of_guild(self, guild_id: str) -> str | None:
        """The community the guild is bound to, if any."""
        return await self.session.scalar(
            select(CommunitySettings.community_id).where(
                CommunitySettings.discord_guild_id == guild_id
            )
        )

    async def settings_of_guild(self, guild_id: str) -> CommunitySettings | None:
        """The settings of the community the guild is bound to, if any."""
        return await self.session.scalar(
            select(CommunitySettings).where(CommunitySettings.discord_guild_id == guild_id)
        )

    async def lock_rules(self, community_id: str) -> CommunitySettings:
        """The community's settings row, created if needed and locked: rule changes of one
        community serialize on it."""
        await self.session.execute(
            insert(CommunitySettings)
            .values(community_id=community_id)
            .on_conflict_do_nothing(index_elements=[CommunitySettings.community_id])
        )
        row = await self.session.scalar(
            select(CommunitySettings)
            .where(CommunitySettings.community_id == community_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None
        return row

    async def rules(self, community_id: str) -> list[RewardRule]:
        rows = await self.session.scalars(
            select(RewardRule)
            .where(RewardRule.community_id == community_id)
            .order_by(RewardRule.level)
        )
        return list(rows)

    async def upsert_rule(
        self, community_id: str, level: int, values: dict[str, Any]
    ) -> RewardRule:
        row = await self.session.scalar(
            insert(RewardRule)
            .values(community_id=community_id, level=level, **values)
            .on_conflict_do_update(
                index_elements=[RewardRule.community_id, RewardRule.level],
                set_={**values, "updated_at": func.now()},
            )
            .returning(RewardRule)
            .execution_options(populate_existing=True)
        )
        assert row is not None
        return row

    async def delete_rule(
        self, community_id: str, *, rule_id: int | None, level: int | None
    ) -> bool:
        query = delete(RewardRule).where(RewardRule.community_id == community_id)
        if rule_id is not None:
            query = query.where(RewardRule.id == rule_id)
        else:
            query = query.where(RewardRule.level == level)
        deleted = await self.session.scalar(query.returning(RewardRule.id))
        return deleted is not None

    # Badges

    async def badges(
        self, community_id: str, *, after_id: int | None = None, limit: int = 1000
    ) -> list[Badge]:
        query = select(Badge).where(Badge.community_id == community_id)
        if after_id is not None:
            query = query.where(Badge.id > after_id)
        return list(await self.session.scalars(query.order_by(Badge.id).limit(limit)))

    async def automatic_badges(self, community_id: str) -> list[Badge]:
        """The community's badges given by criteria (`BadgeCatalog` keeps them)."""
        rows = await self.session.scalars(
            select(Badge)
            .where(Badge.community_id == community_id, Badge.criteria != "manual")
            .order_by(Badge.id)
        )
        return list(rows)

    async def badge(self, community_id: str, badge_id: int) -> Badge | None:
        badge: Badge | None = await self.session.scalar(
            select(Badge).where(Badge.community_id == community_id, Badge.id == badge_id)
        )
        return badge

    async def badge_named(self, community_id: str, name: str) -> Badge | None:
        badge: Badge | None = await self.session.scalar(
            select(Badge).where(Badge.community_id == community_id, Badge.name == name)
        )
        return badge

    async def add_badge(self, badge: Badge) -> Badge:
        self.session.add(badge)
        await self.session.flush()
        await self.session.refresh(badge)
        return badge

    async def delete_badge(self, community_id: str, badge_id: int) -> bool:
        deleted = await self.session.scalar(
            delete(Badge)
            .where(Badge.community_id == community_id, Badge.id == badge_id)
            .returning(Badge.id)
        )
        return deleted is not None

    async def held_badge_ids(self, community_id: str, user_id: str) -> set[int]:
        """Badges the member holds or once held (revoked ones are not given back automatically)."""
        rows = await self.session.scalars(
            select(MemberBadge.badge_id).where(
                MemberBadge.community_id == community_id, MemberBadge.user_id == user_id
            )
        )
        return set(rows)

    async def award_badge(
        self,
        community_id: str,
        badge_id: int,
        user_id: str,
        awarded_by: str | None,
        *,
        manual: bool,
    ) -> tuple[MemberBadge, bool]:
        """Gives the badge once; a manual award also restores a revoked one. Returns the row and
        whether it is newly held."""
        statement = insert(MemberBadge).values(
            badge_id=badge_id, user_id=user_id, community_id=community_id, awarded_by=awarded_by
        )
        if manual:
            statement = statement.on_conflict_do_update(
                index_elements=[MemberBadge.badge_id, MemberBadge.user_id],
                set_={"revoked_at": None, "awarded_at": func.now(), "awarded_by": awarded_by},
                where=MemberBadge.revoked_at.is_not(None),
            )
        else:
            statement = statement.on_conflict_do_nothing(
                index_elements=[MemberBadge.badge_id, MemberBadge.user_id]
            )
        row = await self.session.scalar(
            statement.returning(MemberBadge).execution_options(populate_existing=True)
        )
        if row is not None:
            return row, True
        existing = await self.session.scalar(
            select(MemberBadge).where(
                MemberBadge.badge_id == badge_id, MemberBadge.user_id == user_id
            )
        )
        assert existing is not None
        return existing, False

    async def revoke_badge(self, community_id: str, badge_id: int, user_id: str) -> bool:
        revoked = await self.session.scalar(
            update(MemberBadge)
            .where(
                MemberBadge.community_id == community_id,
                MemberBadge.badge_id == badge_id,
                MemberBadge.user_id == user_id,
                MemberBadge.revoked_at.is_(None),
            )
            .values(revoked_at=func.now())
            .returning(MemberBadge.badge_id)
        )
        return revoked is not None

    async def member_badges(
        self,
        community_id: str,
        *,
        user_id: str | None,
        after: tuple[datetime, int, str] | None,
        limit: int,
    ) -> list[tuple[MemberBadge, Badge]]:
        """Held badges, oldest award first (keyset on awarded_at, badge id, user id)."""
        query = (
            select(MemberBadge, Badge)
            .join(Badge, Badge.id == MemberBadge.badge_id)
            .where(MemberBadge.community_id == community_id, MemberBadge.revoked_at.is_(None))
        )
        if user_id is not None:
            query = query.where(MemberBadge.user_id == user_id)
        if after is not None:
            awarded_at, badge_id, after_user = after
            query = query.where(
                or_(
                    MemberBadge.awarded_at > awarded_at,
                    and_(
                        MemberBadge.awarded_at == awarded_at,
                        or_(
                            MemberBadge.badge_id > badge_id,
                            and_(
                                MemberBadge.badge_id == badge_id, MemberBadge.user_id > after_user
                            ),
                        ),
                    ),
                )
            )
        rows = await self.session.execute(
            query.order_by(MemberBadge.awarded_at, MemberBadge.badge_id, MemberBadge.user_id).limit(
                limit
            )
        )
        return [(row[0], row[1]) for row in rows]

    # Roles

    async def queue_role(self, community_id: str, user_id: str, role_id: str, source: str) -> bool:
        """Queues the Discord role for the member once; True when newly queued."""
        queued = await self.session.scalar(
            insert(RoleAssignment)
            .values(community_id=community_id, user_id=user_id, role_id=role_id, source=source)
            .on_conflict_do_nothing(
                index_elements=[
                    RoleAssignment.community_id,
                    RoleAssignment.user_id,
                    RoleAssignment.role_id,
                ]
            )
            .returning(RoleAssignment.id)
        )
        return queued is not None


@dataclass
class Finish:
    """How an attempt (or a claim that attempted nothing) ends."""

    status: str
    outcome: str | None = None
    error: str | None = None
    http_status: int | None = None
    # Seconds until the reward is due again; None: not due by itself.
    delay: float | None = None
    provider_ref: str | None = None
    expires_at: datetime | None = None
    code: str | None = None


@dataclass
class DailyRewards:
    """What one community granted on one UTC day."""

    community_id: str
    day: datetime
    granted: int = 0
    free_days: int = 0
    discount_codes: int = 0
    amount_off_minor: dict[str, int] | None = None
    badges: int = 0
    roles: int = 0


class RewardStatsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def daily(
        self, community_ids: Sequence[str], since: datetime, until: datetime
    ) -> list[DailyRewards]:
        """Rewards granted in [since, until) per community and UTC day of `granted_at`, by
        community then day; days without a grant are left out."""
        day = func.date_trunc("day", func.timezone("UTC", Reward.granted_at)).label("day")
        rows = await self.session.execute(
            select(
                Reward.community_id,
                day,
                Reward.kind,
                Reward.currency,
                func.count().label("n"),
                func.coalesce(func.sum(Reward.free_days), 0).label("free_days"),
                func.coalesce(func.sum(Reward.amount_off_minor), 0).label("amount_off"),
            )
            .where(
                Reward.community_id.in_(community_ids),
                Reward.status == "granted",
                Reward.granted_at >= since,
                Reward.granted_at < until,
            )
            .group_by(Reward.community_id, day, Reward.kind, Reward.currency)
            .order_by(Reward.community_id, day)
        )
        days: dict[tuple[str, datetime], DailyRewards] = {}
        for row in rows:
            entry = days.setdefault(
                (row.community_id, row.day), DailyRewards(row.community_id, row.day)
            )
            entry.granted += row.n
            if row.kind == "free_days":
                entry.free_days += int(row.free_days)
            elif row.kind == "discount_code":
                entry.discount_codes += row.n
                if row.currency and row.amount_off:
                    amounts = entry.amount_off_minor = entry.amount_off_minor or {}
                    amounts[row.currency] = amounts.get(row.currency, 0) + int(row.amount_off)
            elif row.kind == "badge":
                entry.badges += row.n
            elif row.kind == "role":
                entry.roles += row.n
        return list(days.values())


class DeliveryRepository:
    """The statements of the Whop delivery worker."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_due(self, limit: int, lease: timedelta) -> list[Reward]:
        """Due rewards (and ones whose worker's lease lapsed), locked past other workers and
        marked applying under a new lease."""
        return await claim_leased(
            self.session,
            Reward,
            due=("pending", "failed", "waiting_membership"),
            leased="applying",
            limit=limit,
            lease=lease,
            where=(Reward.kind.in_(WHOP_KINDS),),
        )

    async def attempts_of(self, reward_id: int) -> list[RewardAttempt]:
        return await RewardsRepository(self.session).attempts(reward_id)

    async def start_attempt(
        self,
        reward_id: int,
        token: uuid.UUID,
        *,
        settled: dict[int, str],
        membership_id: str | None,
        company_id: str | None,
        code: str | None,
        before_period_end: datetime | None,
    ) -> int | None:
        """Counts a new attempt and writes its row, if the lease is still `token`'s; returns the
        attempt's number (None: the lease was lost)."""
        values: dict[str, Any] = {
            "attempts": Reward.attempts + 1,
            "budget_used": Reward.budget_used + 1,
        }
        if membership_id:
            values["membership_id"] = membership_id
        if company_id:
            values["company_id"] = company_id
        if code:
            values["code"] = code
        number = await self.session.scalar(
            update(Reward)
            .where(Reward.id == reward_id, Reward.lease_token == token, Reward.status == "applying")
            .values(**values)
            .returning(Reward.attempts)
        )
        if number is None:
            return None
        for attempt_id, outcome in settled.items():
            await self.session.execute(
                update(RewardAttempt)
                .where(RewardAttempt.id == attempt_id)
                .values(
                    outcome=outcome,
                    finished_at=func.coalesce(RewardAttempt.finished_at, func.now()),
                )
            )
        self.session.add(
            RewardAttempt(reward_id=reward_id, number=number, before_period_end=before_period_end)
        )
        await self.session.flush()
        return int(number)

    async def finish(self, reward_id: int, token: uuid.UUID, finish: Finish) -> bool:
        """Records the end of the claim if the lease is still `token`'s."""
        now = func.now()
        values: dict[str, Any] = {
            "status": finish.status,
            "last_error": finish.error,
            "lease_token": None,
            "lease_expires_at": None,
            "next_attempt_at": now + timedelta(seconds=finish.delay)
            if finish.delay is not None
            else None,
        }
        if finish.status == "granted":
            values |= {"granted_at": now, "provider_ref": finish.provider_ref}
            if finish.code:
                values["code"] = finish.code
            if finish.expires_at:
                values["expires_at"] = finish.expires_at
        attempts = await self.session.scalar(
            update(Reward)
            .where(Reward.id == reward_id, Reward.lease_token == token)
            .values(**values)
            .returning(Reward.attempts)
        )
        if attempts is None:
            return False
        if finish.outcome is not None:
            await self.session.execute(
                update(RewardAttempt)
                .where(
                    RewardAttempt.reward_id == reward_id,
                    RewardAttempt.number == attempts,
                    RewardAttempt.finished_at.is_(None),
                )
                .values(
                    outcome=finish.outcome,
                    error=finish.error,
                    http_status=finish.http_status,
                    finished_at=now,
                )
            )
        return True

    async def resume_waiting(self) -> int:
        """Rewards parked for want of a Whop key, due again (a key is set now)."""
        resumed = await self.session.scalars(
            update(Reward)
            .where(Reward.status == "waiting", Reward.kind.in_(WHOP_KINDS))
            .values(status="pending", next_attempt_at=func.now(), last_error=None)
            .returning(Reward.id)
        )
        return len(list(resumed))


class RoleRepository:
    """The statements of the Discord role worker."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_due(self, limit: int) -> list[RoleAssignment]:
        rows = await self.session.scalars(
            select(RoleAssignment)
            .where(RoleAssignment.status == "pending", RoleAssignment.next_attempt_at <= func.now())
            .order_by(RoleAssignment.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows)

    async def guild_of(self, community_id: str) -> str | None:
        """The guild bound to the community; else the community's own id when it is a guild
        id (a Discord community) that no other community has bound."""
        bound = await self.session.scalar(
            select(CommunitySettings.discord_guild_id).where(
                CommunitySettings.community_id == community_id
            )
        )
        if bound or not _GUILD_ID.fullmatch(community_id):
            return bound
        elsewhere = await self.session.scalar(
            select(CommunitySettings.community_id).where(
                CommunitySettings.discord_guild_id == community_id
            )
        )
        return None if elsewhere else community_id

    async def resume_waiting(self, *, user_id: str | None = None) -> int:
        """Waiting roles (all, or the member's) are due again."""
        statement = update(RoleAssignment).where(RoleAssignment.status == "waiting")
        if user_id is not None:
            statement = statement.where(RoleAssignment.user_id == user_id)
        resumed = await self.session.scalars(
            statement.values(status="pending", next_attempt_at=func.now()).returning(
                RoleAssignment.id
            )
        )
        return len(list(resumed))

    async def state_role(
        self, community_id: str, user_id: str, role_id: str, *, action: str, stated_at: datetime
    ) -> bool:
        """Queues giving (`add`) or taking (`remove`) the role, unless a change stated at the
        same time or later is queued already (a redelivered or older one); True if queued.
        The member's row for the role carries the latest action, so an end queued after a
        start leaves the role taken, whichever the worker saw first."""
        statement = insert(RoleAssignment).values(
            community_id=community_id,
            user_id=user_id,
            role_id=role_id,
            source="subscription",
            action=action,
            action_at=stated_at,
        )
        excluded = statement.excluded
        queued = await self.session.scalar(
            statement.on_conflict_do_update(
                index_elements=[
                    RoleAssignment.community_id,
                    RoleAssignment.user_id,
                    RoleAssignment.role_id,
                ],
                set_={
                    "source": excluded.source,
                    "action": excluded.action,
                    "action_at": excluded.action_at,
                    "status": "pending",
                    "attempts": 0,
                    "last_error": None,
                    "next_attempt_at": func.now(),
                },
                where=or_(
                    RoleAssignment.action_at.is_(None),
                    RoleAssignment.action_at < excluded.action_at,
                ),
            ).returning(RoleAssignment.id)
        )
        return queued is not None

    async def assignments(
        self, community_id: str, *, user_id: str | None, limit: int
    ) -> list[RoleAssignment]:
        """The community's role assignments (or one member's), most recently changed first."""
        query = select(RoleAssignment).where(RoleAssignment.community_id == community_id)
        if user_id:
            query = query.where(RoleAssignment.user_id == user_id)
        rows = await self.session.scalars(
            query.order_by(RoleAssignment.updated_at.desc(), RoleAssignment.id.desc()).limit(limit)
        )
        return list(rows)

    async def discord_user_of(self, user_id: str) -> str | None:
        """The Discord user id the member linked, if any."""
        return await self.session.scalar(
            select(DiscordLink.discord_user_id).where(DiscordLink.user_id == user_id)
        )

    async def link_discord(self, user_id: str, discord_user_id: str) -> None:
        """The member is this Discord user (one Whop user per Discord user: a Discord account
        linked before by someone else moves to this member)."""
        await self.session.execute(
            delete(DiscordLink).where(
                DiscordLink.discord_user_id == discord_user_id, DiscordLink.user_id != user_id
            )
        )
        statement = insert(DiscordLink).values(user_id=user_id, discord_user_id=discord_user_id)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[DiscordLink.user_id],
                set_={"discord_user_id": discord_user_id, "linked_at": func.now()},
            )
        )


Leased = TypeVar("Leased", Reward, Announcement)


async def claim_leased(
    session: AsyncSession,
    model: type[Leased],
    *,
    due: tuple[str, ...],
    leased: str,
    limit: int,
    lease: timedelta,
    where: tuple[ColumnElement[bool], ...] = (),
) -> list[Leased]:
    """Rows in a `due` status whose time has come (and `leased` ones whose worker's lease
    lapsed), locked past other workers and put in `leased` under a new lease."""
    now = func.now()
    ids = list(
        await session.scalars(
            select(model.id)
            .where(
                *where,
                or_(
                    and_(model.status.in_(due), model.next_attempt_at <= now),
                    and_(model.status == leased, model.lease_expires_at <= now),
                ),
            )
            .order_by(model.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    rows = await session.scalars(
        update(model)
        .where(model.id.in_(ids))
        .values(status=leased, lease_token=func.gen_random_uuid(), lease_expires_at=now + lease)
        .returning(model)
        .execution_options(populate_existing=True)
    )
    return list(rows)


@dataclass(frozen=True)
class NewAnnouncement:
    community_id: str
    user_id: str
    kind: str
    event_key: str
    target: str
    channel_id: str | None
    facts: dict[str, Any]
    template: str
    status: str = "pending"
    last_error: str | None = None
    next_attempt_at: datetime | None = None


class AnnouncementRepository:
    """The statements of announcements: created once, claimed under a lease, attempts."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, new: NewAnnouncement) -> int | None:
        """The new announcement's id; None when this (member, event, target) has one."""
        values = dict(new.__dict__)
        if new.next_attempt_at is None:
            del values["next_attempt_at"]  # due at once (the column's default)
        created: int | None = await self.session.scalar(
            insert(Announcement)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=["community_id", "user_id", "kind", "event_key", "target"]
            )
            .returning(Announcement.id)
        )
        return created

    async def in_app_shown(self, community_id: str, user_id: str, kind: str, key: str) -> bool:
        """Whether the app was already told about this (member, event)."""
        found = await self.session.scalar(
            select(InAppAnnouncement.id).where(
                InAppAnnouncement.community_id == community_id,
                InAppAnnouncement.user_id == user_id,
                InAppAnnouncement.kind == kind,
                InAppAnnouncement.event_key == key,
            )
        )
        return found is not None

    async def add_in_app(
        self, community_id: str, user_id: str, kind: str, key: str, text: str, event_id: str
    ) -> bool:
        """Records what the app shows for this (member, event); False when it had it already."""
        created = await self.session.scalar(
            insert(InAppAnnouncement)
            .values(
                community_id=community_id,
                user_id=user_id,
                kind=kind,
                event_key=key,
                text=text,
                event_id=uuid.UUID(event_id),
            )
            .on_conflict_do_nothing(index_elements=["community_id", "user_id", "kind", "event_key"])
            .returning(InAppAnnouncement.id)
        )
        return created is not None

    async def lock_community(self, key: int) -> None:
        """Holds the transaction-scoped advisory lock `key` (one community's queueing)."""
        await self.session.execute(select(func.pg_advisory_xact_lock(key)))

    async def count_in_open_summary(self, community_id: str, now: datetime) -> bool:
        """One more in the community's summary still to be sent, if there is one."""
        counted = await self.session.execute(
            update(Announcement)
            .where(
                Announcement.community_id == community_id,
                Announcement.kind == "summary",
                Announcement.status == "pending",
                Announcement.next_attempt_at > now,
            )
            .values(
                facts=text(
                    "jsonb_set(facts, '{count}', to_jsonb(COALESCE((facts->>'count')::int, 0) + 1))"
                )
            )
        )
        return bool(counted.rowcount)  # type: ignore[attr-defined]

    async def sent_since(self, community_id: str, since: datetime) -> int:
        """Announcements of the community queued since `since` that are sent or will be
        (not collapsed into a summary, nor summaries)."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(Announcement)
            .where(
                Announcement.community_id == community_id,
                Announcement.created_at >= since,
                Announcement.status != "collapsed",
                Announcement.kind != "summary",
            )
        )
        return int(count or 0)

    async def claim_due(self, limit: int, lease: timedelta) -> list[Announcement]:
        return await claim_leased(
            self.session,
            Announcement,
            due=("pending", "failed"),
            leased="sending",
            limit=limit,
            lease=lease,
        )

    async def attempts(self, announcement_id: int) -> list[AnnouncementAttempt]:
        rows = await self.session.scalars(
            select(AnnouncementAttempt)
            .where(AnnouncementAttempt.announcement_id == announcement_id)
            .order_by(AnnouncementAttempt.number)
        )
        return list(rows)

    async def start_attempt(
        self, announcement_id: int, token: uuid.UUID, text: str, settled: dict[int, str]
    ) -> int | None:
        """Counts an attempt, keeps the text it sends, writes its row and settles the earlier
        unknown ones, if `token` still holds the lease; its number (None: lease lost)."""
        number: int | None = await self.session.scalar(
            update(Announcement)
            .where(
                Announcement.id == announcement_id,
                Announcement.lease_token == token,
                Announcement.status == "sending",
            )
            .values(
                attempts=Announcement.attempts + 1,
                budget_used=Announcement.budget_used + 1,
                text=text,
            )
            .returning(Announcement.attempts)
        )
        if number is None:
            return None
        for attempt_id, outcome in settled.items():
            await self.session.execute(
                update(AnnouncementAttempt)
                .where(AnnouncementAttempt.id == attempt_id)
                .values(outcome=outcome, finished_at=func.now())
            )
        self.session.add(AnnouncementAttempt(announcement_id=announcement_id, number=number))
        return number

    async def finish(
        self, announcement_id: int, token: uuid.UUID, status: str, outcome: Finish
    ) -> bool:
        """Records how the claim ended, if `token` still holds the lease."""
        values: dict[str, Any] = {
            "status": status,
            "lease_token": None,
            "lease_expires_at": None,
            "last_error": outcome.error,
        }
        if outcome.delay is not None:
            values["next_attempt_at"] = func.now() + timedelta(seconds=outcome.delay)
        if status == "sent":
            values["sent_at"] = func.now()
            values["provider_ref"] = outcome.provider_ref
        finished = await self.session.scalar(
            update(Announcement)
            .where(Announcement.id == announcement_id, Announcement.lease_token == token)
            .values(**values)
            .returning(Announcement.attempts)
        )
        if finished is None:
            return False
        if outcome.outcome is not None:
            await self.session.execute(
                update(AnnouncementAttempt)
                .where(
                    AnnouncementAttempt.announcement_id == announcement_id,
                    AnnouncementAttempt.number == finished,
                    AnnouncementAttempt.outcome.is_(None),
                )
                .values(
                    outcome=outcome.outcome,
                    http_status=outcome.http_status,
                    error=outcome.error,
                    finished_at=func.now(),
                )
            )
        return True

    async def of_community(
        self, community_id: str, status: str | None, after: int | None, limit: int
    ) -> list[Announcement]:
        query = select(Announcement).where(Announcement.community_id == community_id)
        if status:
            query = query.where(Announcement.status == status)
        if after is not None:
            query = query.where(Announcement.id < after)
        rows = await self.session.scalars(query.order_by(Announcement.id.desc()).limit(limit))
        return list(rows)

    async def get(self, community_id: str, announcement_id: int) -> Announcement | None:
        return await self.session.scalar(
            select(Announcement).where(
                Announcement.community_id == community_id, Announcement.id == announcement_id
            )
        )

    async def attempts_of_many(self, ids: Sequence[int]) -> dict[int, list[AnnouncementAttempt]]:
        rows = await self.session.scalars(
            select(AnnouncementAttempt)
            .where(AnnouncementAttempt.announcement_id.in_(ids))
            .order_by(AnnouncementAttempt.announcement_id, AnnouncementAttempt.number)
        )
        attempts: dict[int, list[AnnouncementAttempt]] = {i: [] for i in ids}
        for row in rows:
            attempts[row.announcement_id].append(row)
        return attempts

    async def resume_waiting(self, reason: str) -> int:
        """Announcements that waited for `reason` (a missing key, now set) due again."""
        resumed = await self.session.execute(
            update(Announcement)
            .where(Announcement.status == "waiting", Announcement.last_error == reason)
            .values(status="pending", next_attempt_at=func.now(), last_error=None)
        )
        return int(resumed.rowcount or 0)  # type: ignore[attr-defined]

    async def retry(self, community_id: str, announcement_id: int) -> Announcement | None:
        """A dead (or waiting) announcement due again with a fresh attempt budget."""
        return await self.session.scalar(
            update(Announcement)
            .where(
                Announcement.community_id == community_id,
                Announcement.id == announcement_id,
                Announcement.status.in_(("dead", "waiting")),
            )
            .values(status="pending", budget_used=0, next_attempt_at=func.now(), last_error=None)
            .returning(Announcement)
        )
