"""The rules of rewards: which levels earn what, recording what a level-up earned, backfills,
badges and their criteria, and a community's notification settings.

Functions here work inside the caller's transaction and never commit (the servicer or the
event consumer does). Applying free days and codes through Whop is delivery.py's job; Discord
roles are queued here and assigned by roles.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal

import grpc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2
from wee5_kit.communities import COMMUNITY_ID_RULE, is_community_id
from wee5_kit.events import Outbox, new_meta
from wee5_kit.logging import get_logger
from wee5_kit.provider_ids import is_snowflake
from wee5_rewards.announcement_queue import Announcer, announcements_of, settings_of
from wee5_rewards.announcements import (
    DEFAULT_TEMPLATES,
    Announcements,
    Kind,
    check_template,
    check_welcome,
)
from wee5_rewards.badge_catalog import AutomaticBadge, BadgeCatalog
from wee5_rewards.errors import (
    AnnouncementNotFound,
    AnnouncementNotRetryable,
    BadgeInUse,
    BadgeNameTaken,
    BadgeNotFound,
    GuildBoundElsewhere,
    GuildNeedsProof,
    GuildNotBound,
    InvalidLevelUp,
    InvalidRequest,
    RewardNotFound,
    RewardNotRetryable,
    RuleNotFound,
    XpRequired,
)
from wee5_rewards.models import (
    Announcement,
    AnnouncementAttempt,
    Badge,
    CommunitySettings,
    MemberBadge,
    Reward,
    RewardAttempt,
    outbox,
)
from wee5_rewards.models import RewardRule as StoredRule
from wee5_rewards.repository import (
    AnnouncementRepository,
    NewReward,
    RewardsRepository,
    RoleRepository,
)

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

log = get_logger("wee5.rewards")
RewardKind = Literal["free_days", "discount_code", "badge", "role"]
DiscountType = Literal["percent", "flat"]
MAX_LEVEL = 10_000
DEFAULT_TEMPLATE = DEFAULT_TEMPLATES[Kind.LEVEL_UP]
_DISCORD_ID = re.compile(r"[0-9]{1,20}")
XP_PAGE = 100
# Badge criteria that need more than the event carries (a GetMember or GetLeaderboard call).
_NEEDS_MEMBER = frozenset({"activity_count", "streak"})
# Badge periods by xp's names for them: xp's `Period` names its values differently
# (`PERIOD_ALL`, `PERIOD_MONTH`), so no codec derives this from either enum.
_XP_PERIODS = {
    "all_time": xp_pb2.PERIOD_ALL,
    "monthly": xp_pb2.PERIOD_MONTH,
    "weekly": xp_pb2.PERIOD_WEEK,
    "daily": xp_pb2.PERIOD_DAY,
}
ACTIVITY_KINDS = ("", "message", "post", "reaction", "custom")


@dataclass(frozen=True)
class RewardRule:
    """What a member earns on reaching `level`."""

    level: int
    kind: RewardKind
    free_days: int | None = None
    discount_percent: int | None = None
    discount_type: DiscountType | None = None
    amount_off_minor: int | None = None
    currency: str | None = None
    duration_months: int | None = None
    expires_in_days: int | None = None
    badge_id: int | None = None
    role_id: str | None = None
    enabled: bool = True
    id: int | None = field(default=None, compare=False)
    stored: StoredRule | None = field(default=None, compare=False, repr=False)

    def reward_values(self) -> dict[str, Any]:
        """The reward columns a rule sets (rules and rewards share them)."""
        return {
            "kind": self.kind,
            "free_days": self.free_days,
            "discount_type": self.discount_type,
            "discount_percent": self.discount_percent,
            "amount_off_minor": self.amount_off_minor,
            "currency": self.currency,
            "duration_months": self.duration_months,
            "expires_in_days": self.expires_in_days,
            "badge_id": self.badge_id,
            "role_id": self.role_id,
        }

    def describe(self) -> str:
        if self.kind == "free_days":
            return f"{self.free_days} free days"
        if self.kind == "discount_code":
            if self.discount_type == "flat":
                amount = (self.amount_off_minor or 0) / 100
                return f"{amount:.2f} {(self.currency or 'usd').upper()} off"
            return f"{self.discount_percent} % discount code"
        if self.kind == "badge":
            return f"badge {self.badge_id}"
        return f"Discord role {self.role_id}"


# ARCHITECTURE.md §4: used by every community that has not changed its rules.
DEFAULT_RULES: tuple[RewardRule, ...] = (
    RewardRule(level=5, kind="free_days", free_days=3),
    RewardRule(level=10, kind="free_days", free_days=7),
    RewardRule(level=25, kind="free_days", free_days=14),
    RewardRule(level=50, kind="free_days", free_days=30),
    RewardRule(level=100, kind="discount_code", discount_percent=50, discount_type="percent"),
)


def rewards_due(
    from_level: int, to_level: int, rules: Sequence[RewardRule] = DEFAULT_RULES
) -> list[RewardRule]:
    """The enabled rules of every level in (from_level, to_level]: the levels a level-up newly
    reached. Rules added later never reach back below `from_level` (only a backfill does)."""
    due = [rule for rule in rules if rule.enabled and from_level < rule.level <= to_level]
    return sorted(due, key=lambda rule: rule.level)


def _from_stored(row: StoredRule) -> RewardRule:
    return RewardRule(
        level=row.level,
        kind=row.kind,  # type: ignore[arg-type]
        free_days=row.free_days,
        discount_percent=row.discount_percent,
        discount_type=row.discount_type,  # type: ignore[arg-type]
        amount_off_minor=row.amount_off_minor,
        currency=row.currency,
        duration_months=row.duration_months,
        expires_in_days=row.expires_in_days,
        badge_id=row.badge_id,
        role_id=row.role_id,
        enabled=row.enabled,
        id=row.id,
        stored=row,
    )


def validate_rule(rule: RewardRule) -> RewardRule:
    """The rule with only the fields of its kind, or InvalidRequest naming the field."""
    if not 1 <= rule.level <= MAX_LEVEL:
        raise InvalidRequest(f"level must be between 1 and {MAX_LEVEL}")
    base = RewardRule(level=rule.level, kind=rule.kind, enabled=rule.enabled)
    if rule.kind == "free_days":
        if rule.free_days is None or not 1 <= rule.free_days <= 1095:
            raise InvalidRequest("reward.free_days must be between 1 and 1095")
        return replace(base, free_days=rule.free_days)
    if rule.kind == "discount_code":
        return _validate_discount(rule, base)
    if rule.kind == "badge":
        if not rule.badge_id:
            raise InvalidRequest("reward.badge_id is required for a badge reward")
        return replace(base, badge_id=rule.badge_id)
    if rule.kind == "role":
        return replace(base, role_id=validate_role_id(rule.role_id, "reward.role_id"))
    raise InvalidRequest("reward.kind must be FREE_DAYS, DISCOUNT_CODE, BADGE or ROLE")


def _validate_discount(rule: RewardRule, base: RewardRule) -> RewardRule:
    """A discount-code rule: its duration and expiry, then the percent or flat amount."""
    duration = rule.duration_months or 1
    if not 1 <= duration <= 36:
        raise InvalidRequest("reward.discount.duration_months must be between 0 and 36")
    expires = rule.expires_in_days or None
    if expires is not None and not 1 <= expires <= 3650:
        raise InvalidRequest("reward.discount.expires_in_days must be between 0 and 3650")
    common = replace(base, duration_months=duration, expires_in_days=expires)
    if rule.discount_type == "percent":
        if rule.discount_percent is None or not 1 <= rule.discount_percent <= 100:
            raise InvalidRequest("reward.discount.percent_off must be between 1 and 100")
        return replace(common, discount_type="percent", discount_percent=rule.discount_percent)
    if rule.discount_type == "flat":
        if rule.amount_off_minor is None or rule.amount_off_minor <= 0:
            raise InvalidRequest("reward.discount.amount_off_minor must be positive")
        currency = (rule.currency or "").lower()
        if len(currency) != 3 or not currency.isalpha():
            raise InvalidRequest("reward.discount.currency must be an ISO 4217 code")
        return replace(
            common,
            discount_type="flat",
            amount_off_minor=rule.amount_off_minor,
            currency=currency,
        )
    raise InvalidRequest("reward.discount.type must be PERCENT or FLAT")


def validate_role_id(role_id: str | None, name: str) -> str:
    return validate_snowflake(role_id, name, "role")


def validate_snowflake(value: str | None, name: str, what: str) -> str:
    """A Discord id: 1-20 ASCII digits (`str.isdigit` would let other scripts' digits in)."""
    if not value or not _DISCORD_ID.fullmatch(value):
        raise InvalidRequest(f"{name} must be a Discord {what} id (a snowflake)")
    return value


@dataclass(frozen=True)
class Welcome:
    """The Discord bot's welcome: a message in `channel_id` (none when empty) from
    `template` (the default when empty) and a DM from `dm_template` (none when empty)."""

    channel_id: str = ""
    template: str = ""
    dm_template: str = ""

    def checked(self) -> Welcome:
        if self.channel_id:
            validate_snowflake(self.channel_id, "discord_welcome_channel_id", "channel")
        check_welcome("discord_welcome_template", self.template)
        check_welcome("discord_welcome_dm_template", self.dm_template)
        return self


def validate_template(template: str) -> str:
    return check_template("level_up_template", template)


@dataclass(frozen=True)
class BadgeDraft:
    name: str
    description: str
    image_url: str
    criteria: str
    threshold: int
    activity_kind: str
    period: str
    role_id: str | None


def validate_badge(draft: BadgeDraft) -> BadgeDraft:
    name = draft.name.strip()
    if not 1 <= len(name) <= 80:
        raise InvalidRequest("name must be 1 to 80 characters")
    if len(draft.description) > 1000:
        raise InvalidRequest("description must be at most 1000 characters")
    if draft.image_url and (
        not draft.image_url.startswith(("https://", "http://")) or len(draft.image_url) > 2000
    ):
        raise InvalidRequest("image_url must be an http(s) URL")
    if draft.criteria not in ("level", "xp", "activity_count", "streak", "rank", "manual"):
        raise InvalidRequest("criteria.kind is required")
    if draft.criteria != "manual" and draft.threshold < 1:
        raise InvalidRequest("criteria.threshold must be at least 1")
    if draft.criteria == "activity_count":
        if draft.activity_kind not in ACTIVITY_KINDS:
            raise InvalidRequest("criteria.activity_kind must be message, post, reaction or custom")
        if draft.period != "all_time":
            # xp keeps activity totals over all time only.
            raise InvalidRequest("criteria.period of an activity count must be ALL_TIME")
    role_id = validate_role_id(draft.role_id, "role_id") if draft.role_id else None
    return replace(draft, name=name, role_id=role_id)


@dataclass(frozen=True)
class BackfillResult:
    created: int
    skipped: int


@dataclass
class MemberFacts:
    """What badge criteria are judged on: the event's numbers, and xp's when needed."""

    total_xp: int
    level: int
    member: xp_pb2.Member | None = None
    ranks: dict[str, int] = field(default_factory=dict)


class RewardsService:
    def __init__(
        self,
        events: Outbox | None = None,
        xp: XpServiceAsyncStub | None = None,
        *,
        xp_timeout: float = 5.0,
        announcer: Announcer | None = None,
        badges: BadgeCatalog | None = None,
    ) -> None:
        self.events = events or Outbox(outbox)
        self.xp = xp
        self.xp_timeout = xp_timeout
        self.announcer = announcer or Announcer(events=self.events, xp=xp, xp_timeout=xp_timeout)
        self.badges = badges or BadgeCatalog()

    # Rules

    async def rules_of(self, session: AsyncSession, community_id: str) -> list[RewardRule]:
        """The community's rules: its own once it changed them, the defaults until then."""
        repository = RewardsRepository(session)
        settings = await repository.settings(community_id)
        if settings is None or not settings.rules_customized:
            return list(DEFAULT_RULES)
        return [_from_stored(row) for row in await repository.rules(community_id)]

    async def _customize(self, session: AsyncSession, community_id: str) -> None:
        """Makes the defaults the community's own rows the first time it changes a rule."""
        repository = RewardsRepository(session)
        settings = await repository.lock_rules(community_id)
        if settings.rules_customized:
            return
        for rule in DEFAULT_RULES:
            values = {**rule.reward_values(), "enabled": rule.enabled}
            await repository.upsert_rule(community_id, rule.level, values)
        settings.rules_customized = True
        await session.flush()

    async def upsert_rule(
        self, session: AsyncSession, community_id: str, rule: RewardRule
    ) -> tuple[RewardRule, bool]:
        """Creates or replaces the rule of `rule.level`; True when it is new."""
        rule = validate_rule(rule)
        repository = RewardsRepository(session)
        if (
            rule.kind == "badge"
            and await repository.badge(community_id, rule.badge_id or 0) is None
        ):
            raise BadgeNotFound(str(rule.badge_id))
        await self._customize(session, community_id)
        existed = any(row.level == rule.level for row in await repository.rules(community_id))
        stored = await repository.upsert_rule(
            community_id, rule.level, {**rule.reward_values(), "enabled": rule.enabled}
        )
        return _from_stored(stored), not existed

    async def delete_rule(
        self, session: AsyncSession, community_id: str, *, rule_id: int | None, level: int | None
    ) -> None:
        if rule_id is None and not level:
            raise InvalidRequest("rule_id or level is required")
        await self._customize(session, community_id)
        if not await RewardsRepository(session).delete_rule(
            community_id, rule_id=rule_id, level=level
        ):
            raise RuleNotFound(str(rule_id) if rule_id is not None else f"level {level}")

    # Level-ups

    async def record_level_up(self, session: AsyncSession, event: events_pb2.LevelUp) -> list[int]:
        """Stores one reward for each rule level the member passed, never twice for the same
        (community, member, level); returns the levels that were new."""
        community_id = event.meta.community_id
        if not is_community_id(community_id) or not event.user_id:
            raise InvalidLevelUp(
                f"a level-up needs a user_id and meta.community_id: {COMMUNITY_ID_RULE}"
            )
        rules = await self.rules_of(session, community_id)
        due = rewards_due(event.from_level, event.to_level, rules)
        rewards = await self._grant(session, community_id, event.user_id, due)
        return [reward.level for reward in rewards]

    async def _grant(
        self, session: AsyncSession, community_id: str, user_id: str, rules: Sequence[RewardRule]
    ) -> list[Reward]:
        """The member's rewards for `rules`, each once. Free days and codes wait for the Whop
        worker; badges are awarded and roles queued here, so those are granted at once."""
        repository = RewardsRepository(session)
        new = await repository.insert_rewards(
            [
                NewReward(
                    community_id=community_id,
                    user_id=user_id,
                    level=rule.level,
                    rule_id=rule.id,
                    status="granted" if rule.kind in ("badge", "role") else "pending",
                    **rule.reward_values(),
                )
                for rule in rules
            ]
        )
        for reward in new:
            if reward.kind == "badge" and reward.badge_id is not None:
                badge = await repository.badge(community_id, reward.badge_id)
                if badge is not None:
                    await self._award(session, badge, user_id, None, manual=False)
            elif reward.kind == "role" and reward.role_id:
                await repository.queue_role(
                    community_id, user_id, reward.role_id, f"reward:{reward.id}"
                )
            if reward.status == "granted":
                await self.events.add(
                    session,
                    "rewards.granted",
                    events_pb2.RewardGranted(
                        meta=new_meta(community_id),
                        user_id=user_id,
                        reward_id=str(reward.id),
                        level=reward.level,
                        kind=reward.kind,
                    ),
                )
        return new

    async def member_levels(self, community_id: str) -> list[tuple[str, int]]:
        """Every ranked member's level, from xp's all-time leaderboard, page by page."""
        if self.xp is None:
            raise XpRequired()
        levels: list[tuple[str, int]] = []
        cursor = ""
        while True:
            reply = await self.xp.GetLeaderboard(
                xp_pb2.GetLeaderboardRequest(
                    community_id=community_id,
                    period=xp_pb2.PERIOD_ALL,
                    limit=XP_PAGE,
                    cursor=cursor,
                ),
                timeout=self.xp_timeout,
            )
            levels.extend((entry.user_id, entry.level) for entry in reply.entries)
            cursor = reply.next_cursor
            if not cursor:
                return levels

    async def backfill(
        self,
        session: AsyncSession,
        community_id: str,
        members: Sequence[tuple[str, int]],
        *,
        rule_id: int | None,
        dry_run: bool,
    ) -> BackfillResult:
        """Grants each member every missing reward of the levels they already reached (of one
        rule, or of every enabled rule), once."""
        rules = [rule for rule in await self.rules_of(session, community_id) if rule.enabled]
        if rule_id is not None:
            rules = [rule for rule in rules if rule.id == rule_id]
            if not rules:
                raise RuleNotFound(str(rule_id))
        repository = RewardsRepository(session)
        have = await repository.existing_levels(community_id, [rule.level for rule in rules])
        created = skipped = 0
        for user_id, level in members:
            reached = [rule for rule in rules if rule.level <= level]
            missing = [rule for rule in reached if (user_id, rule.level) not in have]
            skipped += len(reached) - len(missing)
            if dry_run or not missing:
                created += len(missing)
                continue
            granted = await self._grant(session, community_id, user_id, missing)
            created += len(granted)
            skipped += len(missing) - len(granted)
        return BackfillResult(created, skipped)

    async def list_rewards(
        self,
        session: AsyncSession,
        community_id: str,
        *,
        user_id: str | None = None,
        status: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Reward]:
        return await RewardsRepository(session).list_rewards(
            community_id, user_id=user_id, status=status, before_id=before_id, limit=limit
        )

    async def retry(self, session: AsyncSession, community_id: str, reward_id: int) -> Reward:
        """Puts a dead, failed or waiting reward back in line with a fresh retry budget."""
        repository = RewardsRepository(session)
        reward = await repository.requeue(community_id, reward_id)
        if reward is not None:
            return reward
        existing = await repository.get_reward(community_id, reward_id)
        if existing is None:
            raise RewardNotFound(str(reward_id))
        raise RewardNotRetryable(existing.status)

    async def attempts(
        self, session: AsyncSession, community_id: str, reward_id: int
    ) -> list[RewardAttempt]:
        repository = RewardsRepository(session)
        if await repository.get_reward(community_id, reward_id) is None:
            raise RewardNotFound(str(reward_id))
        return await repository.attempts(reward_id)

    # Announcements

    async def announcement_page(
        self,
        session: AsyncSession,
        community_id: str,
        *,
        status: str | None,
        after: int | None,
        limit: int,
    ) -> list[tuple[Announcement, list[AnnouncementAttempt]]]:
        repository = AnnouncementRepository(session)
        rows = await repository.of_community(community_id, status, after, limit)
        attempts = await repository.attempts_of_many([row.id for row in rows])
        return [(row, attempts[row.id]) for row in rows]

    async def retry_announcement(
        self, session: AsyncSession, community_id: str, announcement_id: int
    ) -> Announcement:
        """A dead or waiting announcement due again, with a new attempt budget."""
        repository = AnnouncementRepository(session)
        retried = await repository.retry(community_id, announcement_id)
        if retried is not None:
            return retried
        existing = await repository.get(community_id, announcement_id)
        if existing is None:
            raise AnnouncementNotFound(announcement_id)
        raise AnnouncementNotRetryable(existing.status)

    # Badges

    async def create_badge(
        self, session: AsyncSession, community_id: str, draft: BadgeDraft
    ) -> Badge:
        draft = validate_badge(draft)
        repository = RewardsRepository(session)
        if await repository.badge_named(community_id, draft.name) is not None:
            raise BadgeNameTaken(draft.name)
        self.badges.changed(session, community_id)
        return await repository.add_badge(Badge(community_id=community_id, **_badge_values(draft)))

    async def update_badge(
        self, session: AsyncSession, community_id: str, badge_id: int, draft: BadgeDraft
    ) -> Badge:
        draft = validate_badge(draft)
        repository = RewardsRepository(session)
        badge = await repository.badge(community_id, badge_id)
        if badge is None:
            raise BadgeNotFound(str(badge_id))
        other = await repository.badge_named(community_id, draft.name)
        if other is not None and other.id != badge_id:
            raise BadgeNameTaken(draft.name)
        self.badges.changed(session, community_id)
        for key, value in _badge_values(draft).items():
            setattr(badge, key, value)
        await session.flush()
        await session.refresh(badge)
        return badge

    async def delete_badge(self, session: AsyncSession, community_id: str, badge_id: int) -> None:
        repository = RewardsRepository(session)
        levels = [
            rule.level for rule in await repository.rules(community_id) if rule.badge_id == badge_id
        ]
        if levels:
            raise BadgeInUse(badge_id, levels)
        if not await repository.delete_badge(community_id, badge_id):
            raise BadgeNotFound(str(badge_id))
        self.badges.changed(session, community_id)

    async def list_badges(
        self, session: AsyncSession, community_id: str, *, after_id: int | None, limit: int
    ) -> list[Badge]:
        return await RewardsRepository(session).badges(community_id, after_id=after_id, limit=limit)

    async def award_badge(
        self,
        session: AsyncSession,
        community_id: str,
        badge_id: int,
        user_id: str,
        awarded_by: str | None,
    ) -> tuple[MemberBadge, Badge, bool]:
        if not user_id:
            raise InvalidRequest("user_id is required")
        badge = await RewardsRepository(session).badge(community_id, badge_id)
        if badge is None:
            raise BadgeNotFound(str(badge_id))
        held, new = await self._award(session, badge, user_id, awarded_by, manual=True)
        return held, badge, new

    async def revoke_badge(
        self, session: AsyncSession, community_id: str, badge_id: int, user_id: str
    ) -> bool:
        repository = RewardsRepository(session)
        if await repository.badge(community_id, badge_id) is None:
            raise BadgeNotFound(str(badge_id))
        return await repository.revoke_badge(community_id, badge_id, user_id)

    async def _award(
        self,
        session: AsyncSession,
        badge: Badge | AutomaticBadge,
        user_id: str,
        awarded_by: str | None,
        *,
        manual: bool,
    ) -> tuple[MemberBadge, bool]:
        repository = RewardsRepository(session)
        held, new = await repository.award_badge(
            badge.community_id, badge.id, user_id, awarded_by, manual=manual
        )
        if new:
            await self.events.add(
                session,
                "rewards.badge_awarded",
                events_pb2.BadgeAwarded(
                    meta=new_meta(badge.community_id), user_id=user_id, badge_id=str(badge.id)
                ),
            )
            if badge.role_id:
                await repository.queue_role(
                    badge.community_id, user_id, badge.role_id, f"badge:{badge.id}"
                )
            await self.announcer.badge(session, badge.community_id, user_id, badge.id, badge.name)
        return held, new

    async def evaluate_badges(
        self, session: AsyncSession, community_id: str, user_id: str, facts: MemberFacts
    ) -> list[int]:
        """Awards every automatic badge whose criteria the member now meets and does not hold
        (or once held); returns the ids newly awarded. Concurrent evaluations award a badge
        once: the (badge, member) key decides which one wins."""
        if not is_community_id(community_id) or not user_id:
            raise InvalidLevelUp(
                f"an XP event needs a user_id and meta.community_id: {COMMUNITY_ID_RULE}"
            )
        candidates = await self.badges.automatic(session, community_id)
        if not candidates:
            return []
        held = await RewardsRepository(session).held_badge_ids(community_id, user_id)
        awarded: list[int] = []
        for badge in candidates:
            if badge.id in held:
                continue
            try:
                meets = await self._meets(community_id, user_id, badge, facts)
            except grpc.aio.AioRpcError as error:
                # Never hold up the event (and the rewards it carries) on xp: the member's next
                # XP event judges this badge again.
                log.warning(
                    "badge not judged: xp unavailable", badge_id=badge.id, code=error.code().name
                )
                continue
            if not meets:
                continue
            _, new = await self._award(session, badge, user_id, None, manual=False)
            if new:
                awarded.append(badge.id)
        return awarded

    async def _meets(
        self, community_id: str, user_id: str, badge: AutomaticBadge, facts: MemberFacts
    ) -> bool:
        if badge.criteria == "level":
            return facts.level >= badge.threshold
        if badge.criteria == "xp":
            return facts.total_xp >= badge.threshold
        if self.xp is None:
            return False
        if badge.criteria in _NEEDS_MEMBER:
            if facts.member is None:
                reply = await self.xp.GetMember(
                    xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id),
                    timeout=self.xp_timeout,
                )
                facts.member = reply.member
            member = facts.member
            if badge.criteria == "streak":
                return member.streak_days >= badge.threshold
            totals = member.totals
            counts = {
                "message": totals.messages,
                "post": totals.posts,
                "reaction": totals.reactions,
                "custom": totals.custom,
            }
            count = counts.get(badge.activity_kind or "", sum(counts.values()))
            return count >= badge.threshold
        if badge.criteria == "rank":
            if badge.period not in facts.ranks:
                board = await self.xp.GetLeaderboard(
                    xp_pb2.GetLeaderboardRequest(
                        community_id=community_id,
                        period=_XP_PERIODS[badge.period],
                        limit=1,
                        viewer_user_id=user_id,
                    ),
                    timeout=self.xp_timeout,
                )
                facts.ranks[badge.period] = board.viewer.rank if board.HasField("viewer") else 0
            rank = facts.ranks[badge.period]
            return 0 < rank <= badge.threshold
        return False

    async def member_badges(
        self,
        session: AsyncSession,
        community_id: str,
        *,
        user_id: str | None,
        after: Any,
        limit: int,
    ) -> list[tuple[MemberBadge, Badge]]:
        return await RewardsRepository(session).member_badges(
            community_id, user_id=user_id, after=after, limit=limit
        )

    # Settings

    async def settings(self, session: AsyncSession, community_id: str) -> CommunitySettings:
        row = await RewardsRepository(session).settings(community_id)
        return row or CommunitySettings(community_id=community_id)

    async def update_settings(
        self,
        session: AsyncSession,
        community_id: str,
        *,
        template: str,
        guild_id: str,
        intro_channel_id: str = "",
        welcome: Welcome | None = None,
        subscription_role_id: str = "",
    ) -> CommunitySettings:
        """Replaces the level-up template and the Discord bot's settings (introductions
        channel, welcome, subscription role). The Discord guild is not changed here: a guild
        id other than the bound one is refused (it is bound only with proof, `bind_guild`)."""
        repository = RewardsRepository(session)
        current = await repository.settings(community_id)
        if guild_id and (current is None or current.discord_guild_id != guild_id):
            raise GuildNeedsProof()
        if intro_channel_id:
            validate_snowflake(intro_channel_id, "discord_intro_channel_id", "channel")
        welcome = (welcome or Welcome()).checked()
        if subscription_role_id:
            validate_snowflake(subscription_role_id, "discord_subscription_role_id", "role")
            guild = (current.discord_guild_id if current else None) or community_id
            if subscription_role_id == guild:  # the guild's @everyone role
                raise InvalidRequest(
                    "discord_subscription_role_id is the server's @everyone role; "
                    "pick a role members do not all hold"
                )
        return await repository.upsert_settings(
            community_id,
            level_up_template=validate_template(template) if template else None,
            discord_intro_channel_id=intro_channel_id or None,
            discord_welcome_channel_id=welcome.channel_id or None,
            discord_welcome_template=welcome.template or None,
            discord_welcome_dm_template=welcome.dm_template or None,
            discord_subscription_role_id=subscription_role_id or None,
        )

    async def membership_changed(
        self, session: AsyncSession, event: events_pb2.MembershipChanged
    ) -> str | None:
        """Queues the community's subscription role for the member: given while the Whop
        membership is active, taken when it is not. Returns the action queued, or None (no
        subscription role, or a newer change of this member's role is queued already)."""
        community_id = event.meta.community_id
        settings = await RewardsRepository(session).settings(community_id)
        role_id = settings.discord_subscription_role_id if settings else None
        if not role_id or not event.user_id:
            return None
        action = "add" if event.active else "remove"
        stated_at = event.updated_at.ToDatetime(tzinfo=UTC)
        queued = await RoleRepository(session).state_role(
            community_id, event.user_id, role_id, action=action, stated_at=stated_at
        )
        return action if queued else None

    async def link_discord(self, session: AsyncSession, user_id: str, discord_user_id: str) -> int:
        """Records the member's Discord account; their roles that waited for it are due.
        Returns how many."""
        if not user_id or len(user_id) > 64:
            raise InvalidRequest("user_id must be a member's Whop user id")
        if not is_snowflake(discord_user_id):
            raise InvalidRequest("discord_user_id must be a Discord user id (a snowflake)")
        repository = RoleRepository(session)
        await repository.link_discord(user_id, discord_user_id)
        return await repository.resume_waiting(user_id=user_id)

    async def discord_guild(self, session: AsyncSession, guild_id: str) -> CommunitySettings:
        """The settings of the community `guild_id` is bound to (GuildNotBound if none)."""
        validate_snowflake(guild_id, "guild_id", "guild")
        settings = await RewardsRepository(session).settings_of_guild(guild_id)
        if settings is None:
            raise GuildNotBound(guild_id)
        return settings

    async def announcements(self, session: AsyncSession, community_id: str) -> Announcements:
        return await settings_of(session, community_id)

    async def update_announcements(
        self, session: AsyncSession, community_id: str, wanted: Announcements
    ) -> Announcements:
        """Replaces the community's announcement settings (refused, naming the field, when
        they cannot work)."""
        wanted = wanted.checked()
        row = await RewardsRepository(session).upsert_settings(
            community_id,
            announce=wanted.enabled,
            announce_target=wanted.target.value,
            announce_channel_id=wanted.channel_id or None,
            announce_level_ups=wanted.level_ups,
            announce_rewards=wanted.rewards,
            announce_badges=wanted.badges,
            announce_every_levels=wanted.cadence.every,
            announce_every_level_from=wanted.cadence.every_from,
            level_up_template=wanted.templates.get(Kind.LEVEL_UP) or None,
            reward_template=wanted.templates.get(Kind.REWARD) or None,
            badge_template=wanted.templates.get(Kind.BADGE) or None,
        )
        return announcements_of(row)

    async def bind_guild(
        self, session: AsyncSession, community_id: str, *, guild_id: str, bound_by: str
    ) -> CommunitySettings:
        """Binds the Discord guild to the community (empty: unbinds it). The caller has the
        proof (the bot's install flow, or a platform admin); a guild belongs to one community."""
        repository = RewardsRepository(session)
        if not guild_id:
            return await repository.upsert_settings(
                community_id, discord_guild_id=None, discord_guild_bound_by=None
            )
        validate_snowflake(guild_id, "discord_guild_id", "guild")
        if not bound_by:
            raise InvalidRequest("bound_by must say who proved the guild binding")
        owner = await repository.community_of_guild(guild_id)
        if owner is not None and owner != community_id:
            raise GuildBoundElsewhere(guild_id)
        try:
            async with session.begin_nested():
                bound = await repository.upsert_settings(
                    community_id, discord_guild_id=guild_id, discord_guild_bound_by=bound_by[:80]
                )
        except IntegrityError:  # bound elsewhere at the same moment
            raise GuildBoundElsewhere(guild_id) from None
        await repository.resume_waiting_roles(community_id)
        return bound


def _badge_values(draft: BadgeDraft) -> dict[str, Any]:
    return {
        "name": draft.name,
        "description": draft.description,
        "image_url": draft.image_url,
        "criteria": draft.criteria,
        "threshold": draft.threshold if draft.criteria != "manual" else 0,
        "activity_kind": draft.activity_kind or None,
        "period": draft.period,
        "role_id": draft.role_id,
    }
