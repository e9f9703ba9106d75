"""Points for actions: XP ledger entries with a reason and an idempotency key.

Points go through the one award path of activities (`XpService.award`): the member's totals,
level, period XP, the ledger, `xp.awarded`/`xp.level_up` in the outbox, and (after commit) the
leaderboards. An idempotency key gives points once per community; a repeated key changes
nothing and reports `duplicate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from wee5_kit.communities import validate_community_id
from wee5_xp.awards import Award
from wee5_xp.config import XpSettings
from wee5_xp.errors import IdempotencyKeyReused, InvalidPoints
from wee5_xp.repository import ACTIVITY_COUNTERS, PointsRepository, XpRepository
from wee5_xp.service import XpService

MAX_POINTS = 1_000_000
_REASON = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
# Reasons that name other ledger entries; points under them would blur the history.
_RESERVED_REASONS = {*ACTIVITY_COUNTERS, "import", "adjustment"}


@dataclass(frozen=True)
class PointAmounts:
    """What each named action is worth when the caller gives no amount (settings `points_*`)."""

    benchmark_submitted: int = 50
    resource_downloaded: int = 5
    intro: int = 25
    subscription_renewed: int = 10
    mee6_sync: int = 1

    @classmethod
    def from_settings(cls, settings: XpSettings) -> PointAmounts:
        return cls(
            benchmark_submitted=settings.points_benchmark_submitted,
            resource_downloaded=settings.points_resource_downloaded,
            intro=settings.points_intro,
            subscription_renewed=settings.points_subscription_renewed,
            mee6_sync=settings.points_mee6_sync,
        )

    def for_reason(self, reason: str) -> int | None:
        amount = getattr(self, reason, None)
        return amount if isinstance(amount, int) else None


@dataclass(frozen=True)
class PointsAward:
    community_id: str
    user_id: str
    reason: str
    idempotency_key: str
    # None: the configured amount of `reason`.
    points: int | None = None
    # Where the action happened: "api" for RPC callers, the publishing context for events.
    source: str = "api"


@dataclass(frozen=True)
class PointsResult:
    duplicate: bool
    points: int
    total_xp: int
    level: int


class PointsService:
    def __init__(self, xp: XpService, amounts: PointAmounts | None = None) -> None:
        self.xp = xp
        self.amounts = amounts or PointAmounts()

    def resolve(self, award: PointsAward) -> int:
        """The points of `award`, validating it."""
        # Events reach points without passing a gRPC edge: the community rule applies here.
        validate_community_id(award.community_id)
        if not award.user_id or len(award.user_id) > 64:
            raise InvalidPoints("user_id is required and at most 64 characters")
        if not award.idempotency_key or len(award.idempotency_key) > 200:
            raise InvalidPoints("idempotency_key is required and at most 200 characters")
        if not _REASON.fullmatch(award.reason):
            raise InvalidPoints(
                "reason is required: lowercase letters, digits and _.:- (e.g. benchmark_submitted)"
            )
        if award.reason in _RESERVED_REASONS:
            raise InvalidPoints(f"reason {award.reason!r} is reserved for other ledger entries")
        points = award.points if award.points else self.amounts.for_reason(award.reason)
        if points is None:
            raise InvalidPoints(f"points are required for reason {award.reason!r}")
        if not 1 <= points <= MAX_POINTS:
            raise InvalidPoints(f"points must be between 1 and {MAX_POINTS}")
        return points

    async def award(self, session: AsyncSession, award: PointsAward) -> PointsResult:
        """Credits the points once per (community, idempotency key), in the caller's
        transaction. A key reused for another member, reason or amount is refused."""
        points = self.resolve(award)
        repo = PointsRepository(session)
        claimed = await repo.claim_award(
            community_id=award.community_id,
            idempotency_key=award.idempotency_key,
            user_id=award.user_id,
            reason=award.reason,
            points=points,
            source=award.source,
        )
        if not claimed:
            earlier = await repo.get_award(award.community_id, award.idempotency_key)
            assert earlier is not None  # claims are never deleted
            # A configured amount may have changed since; only an explicit one must match.
            if (earlier.user_id, earlier.reason) != (award.user_id, award.reason) or (
                award.points and earlier.points != award.points
            ):
                raise IdempotencyKeyReused(award.idempotency_key)
            member = await XpRepository(session).get_member(award.community_id, award.user_id)
            if member is None:
                config = await self.xp.config_of(session, award.community_id)
            return PointsResult(
                duplicate=True,
                points=0,
                total_xp=member.xp if member else 0,
                level=member.level if member else config.level_curve.first_level,
            )
        # `xp.point_awards` (claimed above) is the idempotency record of points; the award
        # itself goes through the one award path.
        credited = await self.xp.award(
            session,
            Award(
                community_id=award.community_id,
                user_id=award.user_id,
                delta=points,
                reason=award.reason,
                source=award.source,
            ),
        )
        return PointsResult(
            duplicate=False,
            points=points,
            total_xp=credited.total_xp,
            level=credited.level,
        )
