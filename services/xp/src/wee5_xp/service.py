"""The writes of xp: what an activity earns, and the one award path every change of XP takes
(activities, points, imports, syncs, adjustments), plus community configs.

Functions here work inside the caller's unit of work (`XpService.transaction()`, or the one a
consumer or task opened with `wee5_kit.uow.unit_of_work`) and never commit. What must only
follow a commit is left on the unit of work: the Redis boards are updated after it commits,
cooldowns claimed by a transaction that failed are given back, config caches are cleared.
The reads (rank card, boards, history, analytics) are in `queries.py`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_kit.communities import validate_community_id
from wee5_kit.events import EventMessage, Outbox
from wee5_kit.logging import get_logger
from wee5_kit.uow import UnitOfWork, unit_of_work
from wee5_xp.awards import (
    ActivityInput,
    ActivityResult,
    Award,
    AwardBatch,
    AwardResult,
    level_up_event,
    rule_skip,
)
from wee5_xp.config import XpSettings
from wee5_xp.cooldowns import Cooldowns
from wee5_xp.errors import (
    InvalidActivity,
    InvalidAdjustment,
    InvalidPrivacy,
    UnknownCustomKind,
    in_batch,
)
from wee5_xp.leaderboards import CompanyScore, Leaderboards, Standing
from wee5_xp.levels import preset
from wee5_xp.metrics import COOLDOWN_SKIPS
from wee5_xp.profiles import ProfileUpdate
from wee5_xp.repository import (
    ActivityRow,
    CompanyBoardRepository,
    MemberState,
    ProfileRepository,
    XpRepository,
)
from wee5_xp.rules import XpConfig, XpRange

log = get_logger("wee5.xp")

MAX_ADJUSTMENT = 10_000_000
# Members whose level a curve change moves, handled (and held in memory) at a time.
LEVELS_PER_CHUNK = 5000
Member = tuple[str, str]  # (community_id, user_id)


def default_config(settings: XpSettings) -> XpConfig:
    """The rules of a community that has not configured its own (ARCHITECTURE.md §4)."""
    return XpConfig(
        rates={
            "message": XpRange(settings.xp_message, settings.xp_message),
            "post": XpRange(settings.xp_post_min, settings.xp_post_max),
            "reaction": XpRange(settings.xp_reaction, settings.xp_reaction),
        },
        cooldown_seconds=settings.xp_cooldown_seconds,
        min_message_length=settings.xp_min_message_length,
        curve=preset("default"),
        timezone=settings.xp_timezone,
    ).validate()


@dataclass(frozen=True)
class ConfigChange:
    before: XpConfig
    after: XpConfig
    levels_changed: int


class ConfigCache:
    """Communities' configs for `ttl` seconds: every replica sees a change within that."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, XpConfig]] = {}

    def get(self, community_id: str) -> XpConfig | None:
        entry = self._entries.get(community_id)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, community_id: str, config: XpConfig) -> None:
        if len(self._entries) > 50_000:
            self._entries.clear()
        self._entries[community_id] = (time.monotonic() + self.ttl, config)

    def invalidate(self, community_id: str) -> None:
        self._entries.pop(community_id, None)


class XpService:
    def __init__(
        self,
        *,
        defaults: XpConfig,
        cooldowns: Cooldowns,
        leaderboards: Leaderboards,
        outbox: Outbox,
        sessionmaker: async_sessionmaker[AsyncSession],
        config_cache_seconds: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.defaults = defaults
        self.cooldowns = cooldowns
        self.leaderboards = leaderboards
        self.outbox = outbox
        self.sessionmaker = sessionmaker
        self.configs = ConfigCache(config_cache_seconds)
        # What time it is (tests move it across day, week and month boundaries).
        self.clock = clock or (lambda: datetime.now(UTC))

    # --- transaction boundary --------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work (`wee5_kit.uow`): commits when the block ends, then runs what the
        work left for after the commit (board updates) or the rollback (cooldown releases)."""
        async with unit_of_work(self.sessionmaker) as uow:
            yield uow.session

    async def _forget_boards(self, community_id: str) -> None:
        try:
            await self.leaderboards.forget(community_id)
        except Exception:
            # Committed is committed: the reconcile task rebuilds every board from Postgres.
            log.exception("leaderboard reset failed", community_id=community_id)

    async def forget_company_boards(self, company_id: str) -> None:
        try:
            await self.leaderboards.forget_company(company_id)
        except Exception:
            # Committed is committed: the reconcile task rebuilds every board from Postgres.
            log.exception("company board reset failed", company_id=company_id)

    # --- configuration ---------------------------------------------------------------------

    async def config_of(self, session: AsyncSession, community_id: str) -> XpConfig:
        cached = self.configs.get(community_id)
        if cached is not None:
            return cached
        stored = await XpRepository(session).get_config(community_id)
        config = XpConfig.from_json(stored) if stored else self.defaults
        self.configs.put(community_id, config)
        return config

    async def configs_of(
        self,
        session: AsyncSession,
        community_ids: Iterable[str],
        known: dict[str, XpConfig] | None = None,
    ) -> dict[str, XpConfig]:
        """The config of each community, starting from those already `known`."""
        configs = dict(known or {})
        for community_id in set(community_ids) - configs.keys():
            configs[community_id] = await self.config_of(session, community_id)
        return configs

    async def update_config(
        self, session: AsyncSession, community_id: str, config: XpConfig
    ) -> ConfigChange:
        """Replaces the community's config. A new level curve recomputes every member's level
        in the same transaction (XP and ledger unchanged); see `recompute_levels`."""
        validate_community_id(community_id)
        config.validate()
        repo = XpRepository(session)
        stored = await repo.lock_config(community_id)
        before = XpConfig.from_json(stored) if stored else self.defaults
        await repo.save_config(community_id, config.to_json())
        changed = 0
        if before.curve != config.curve:
            changed = await self.recompute_levels(session, community_id, config)
        # Now, and again once committed: a read in between must not cache the old one.
        self.configs.invalidate(community_id)
        UnitOfWork.of(session).on_commit(lambda: self.configs.invalidate(community_id))
        return ConfigChange(before, config, changed)

    # --- awards ----------------------------------------------------------------------------

    async def award(
        self, session: AsyncSession, award: Award, config: XpConfig | None = None
    ) -> AwardResult:
        """One award through `award_many` (the entry point for points and adjustments)."""
        configs = {award.community_id: config} if config else None
        return (await self.award_many(session, [award], configs))[0]

    async def award_many(
        self,
        session: AsyncSession,
        awards: Sequence[Award],
        configs: dict[str, XpConfig] | None = None,
        *,
        profiles: Sequence[ProfileUpdate] = (),
        locked: dict[Member, MemberState] | None = None,
        on_locked: Callable[[], None] | None = None,
    ) -> list[AwardResult]:
        """THE award entry point. In the caller's transaction and in the order given: appends
        each award's ledger entry and moves the member's totals, counters, level, streak and
        period XP with it; queues `xp.awarded` for each (and `xp.level_up` for levels never
        reached before) in the outbox; saves `profiles` (what the awards' sources said of
        their users); leaves the boards' update for after commit. An award with an
        idempotency key used before changes nothing (`duplicate`). A constant number of
        statements serves the whole batch; members this transaction `locked` before
        (`XpRepository.insert_activities`) are not locked again. `on_locked` is called once
        every member the awards move is locked: from then on, another transaction awarding
        one of them waits for this one to end."""
        configs = await self.configs_of(session, (a.community_id for a in awards), configs)
        repo = XpRepository(session)
        live = await _claim_idempotency_keys(repo, awards)
        states = await _lock_members(repo, live, configs, locked)
        if on_locked is not None:
            on_locked()
        batch = AwardBatch(self.clock())
        results = [
            None
            if a is None
            else batch.apply(a, configs[a.community_id], states[(a.community_id, a.user_id)])
            for a in live
        ]
        if states:
            await self._write_batch(session, repo, states, batch, profiles)
        else:
            await ProfileRepository(session).save_profiles(profiles)
        missing = [a for a, r in zip(awards, results, strict=True) if r is None]
        totals = await _totals(repo, missing)
        return [
            result or _duplicate(totals, award, configs[award.community_id])
            for award, result in zip(awards, results, strict=True)
        ]

    async def _write_batch(
        self,
        session: AsyncSession,
        repo: XpRepository,
        states: dict[Member, MemberState],
        batch: AwardBatch,
        profiles: Sequence[ProfileUpdate],
    ) -> None:
        """Writes what the batch did (members, ledger, period XP, events, profiles) in one
        statement and leaves the members' new standings to be mirrored into the boards once
        committed."""
        written = await repo.write_awards(
            states, batch.ledger, batch.periods, Outbox.columns(batch.events), profiles
        )
        if batch.events:
            Outbox.added(session)
        by_member: dict[Member, dict[tuple[str, date], int]] = defaultdict(dict)
        for (community_id, user_id, period, start), xp in written.period_totals.items():
            by_member[(community_id, user_id)][(period, start)] = xp
        standings = [
            Standing(community_id, user_id, state.xp, state.reached_at, by_member[member])
            for member, state in states.items()
            for community_id, user_id in [member]
            if not state.hidden
        ]
        company = await _company_scores(session, written.opted_in, states, by_member)
        UnitOfWork.of(session).on_commit(lambda: self.leaderboards.record_soon(standings, company))

    async def recompute_levels(
        self, session: AsyncSession, community_id: str, config: XpConfig
    ) -> int:
        """Every member's level under the community's curve. Nothing is re-granted:
        `xp.level_up` is published only for levels a member never reached before (from their
        highest level ever to the new one); a member whose level falls, or rises back to
        levels reached before, changes level silently. Postgres picks out the members whose level
        moves, a chunk at a time: a community of a million members is never held in memory."""
        repo = XpRepository(session)
        curve = config.level_curve
        changed, after = 0, ""
        while wrong := await repo.wrong_levels(community_id, curve, after, LEVELS_PER_CHUNK):
            changes = []
            events: list[tuple[str, EventMessage]] = []
            for member in wrong:
                level = curve.level_for(member.xp)
                changes.append((member.user_id, level, max(member.highest_level, level)))
                if level > member.highest_level:
                    events.append(
                        level_up_event(
                            community_id, member.user_id, member.highest_level, level, member.xp
                        )
                    )
            await repo.set_levels(community_id, changes)
            await self.outbox.add_many(session, events)
            changed += len(changes)
            after = wrong[-1].user_id
        return changed

    # --- activities ------------------------------------------------------------------------

    async def record_activity(
        self, session: AsyncSession, activity: ActivityInput
    ) -> ActivityResult:
        return (await self.record_activities(session, [activity]))[0]

    async def record_activities(
        self,
        session: AsyncSession,
        activities: Sequence[ActivityInput],
        *,
        on_locked: Callable[[], None] | None = None,
    ) -> list[ActivityResult]:
        """Records each activity once per idempotency key and awards its XP unless a rule
        skips it, in the order given, with a constant number of statements for the batch.
        `on_locked` is called once the members the awards move are locked (see
        `award_many`)."""
        configs = await self._activity_configs(session, activities)
        repo = XpRepository(session)
        now = self.clock()
        # What each earns by the rules, the cooldown aside: rows are inserted with it, so only
        # those the cooldown then stops need a second write.
        reasons = [rule_skip(a, configs[a.community_id]) for a in activities]
        xps = [
            0
            if reason
            # Boosts apply when the activity happened (if the source says, never the future).
            else configs[a.community_id].xp_for(
                a.kind, a.custom_kind, a.channel_id, min(a.occurred_at or now, now)
            )
            for a, reason in zip(activities, reasons, strict=True)
        ]
        ids, locked = await _insert_activities(repo, activities, xps, reasons)
        by_rules = list(reasons)
        await self._claim_cooldowns(session, activities, ids, reasons, configs)
        awards = [
            Award(
                a.community_id,
                a.user_id,
                xp,
                a.reason,
                a.source,
                None,
                i,
                a.kind,
                channel_id=a.channel_id,
            )
            for a, i, xp, reason in zip(activities, ids, xps, reasons, strict=True)
            if i is not None and reason is None
        ]
        profiles = [
            ProfileUpdate(a.user_id, a.profile, min(a.occurred_at or now, now))
            for a in activities
            if a.profile is not None
        ]
        awarded = iter(
            await self.award_many(
                session, awards, configs, profiles=profiles, locked=locked, on_locked=on_locked
            )
        )
        await repo.settle_activities(
            [
                (i, 0, reason)
                for i, reason, rule in zip(ids, reasons, by_rules, strict=True)
                if i is not None and reason != rule
            ]
        )
        unawarded = [a for a, i, r in zip(activities, ids, reasons, strict=True) if i is None or r]
        totals = await _totals(repo, unawarded)
        return [
            _activity_awarded(next(awarded))
            if i is not None and reason is None
            else _activity_not_awarded(totals, a, i, reason, configs[a.community_id])
            for a, i, reason in zip(activities, ids, reasons, strict=True)
        ]

    async def _activity_configs(
        self, session: AsyncSession, activities: Sequence[ActivityInput]
    ) -> dict[str, XpConfig]:
        """Validates the activities and returns the config of each one's community; a custom
        kind the community does not define is refused."""
        for activity in activities:
            activity.validate()
        configs = await self.configs_of(session, (a.community_id for a in activities))
        for activity in activities:
            _check_custom_kind(activity, configs[activity.community_id])
        return configs

    async def check_batch(self, session: AsyncSession, activities: Sequence[ActivityInput]) -> None:
        """Refuses a batch holding any activity `record_activities` would refuse, naming the
        first by its index (`activities[3].custom_kind: …`), before anything of it is
        recorded: a batch is taken whole or not at all."""
        for n, activity in enumerate(activities):
            try:
                activity.validate()
            except InvalidActivity as error:
                raise in_batch(n, error) from error
        configs = await self.configs_of(session, (a.community_id for a in activities))
        for n, activity in enumerate(activities):
            try:
                _check_custom_kind(activity, configs[activity.community_id])
            except UnknownCustomKind as error:
                raise in_batch(n, error) from error

    async def _claim_cooldowns(
        self,
        session: AsyncSession,
        activities: Sequence[ActivityInput],
        ids: list[int | None],
        reasons: list[str | None],
        configs: dict[str, XpConfig],
    ) -> None:
        """Claims the cooldown of every new activity no rule skipped (one Redis round trip,
        in order); an activity whose cooldown runs is skipped as `cooldown`. Claims are given
        back if the transaction fails."""
        claims = []
        for n, (a, i, reason) in enumerate(zip(activities, ids, reasons, strict=True)):
            seconds = configs[a.community_id].cooldown_seconds
            if i is not None and reason is None and seconds > 0:
                key = self.cooldowns.cooldown_key(a.community_id, a.user_id, a.kind)
                claims.append((n, key, seconds))
        won = await self.cooldowns.claim_many([(key, seconds) for _, key, seconds in claims])
        held = []
        for (n, key, _), ok in zip(claims, won, strict=True):
            if ok:
                held.append(key)
            else:
                reasons[n] = "cooldown"
        if held:
            UnitOfWork.of(session).on_rollback(lambda: self.cooldowns.release(held))
        if skipped := len(claims) - len(held):
            UnitOfWork.of(session).on_commit(lambda: COOLDOWN_SKIPS.inc(skipped))

    # --- privacy ---------------------------------------------------------------------------

    async def set_privacy(
        self, session: AsyncSession, community_id: str, user_id: str, hidden: bool
    ) -> None:
        """Hides the member from (or shows them on) the boards others read. The community's
        Redis boards are dropped once committed and load again from Postgres, which leaves
        hidden members out, so the ranks of others close the gap at once."""
        validate_community_id(community_id)
        if not user_id or len(user_id) > 64:
            raise InvalidPrivacy("user_id is required (at most 64 characters)")
        config = await self.config_of(session, community_id)
        await ProfileRepository(session).set_hidden(
            community_id, user_id, hidden, config.level_curve.first_level
        )
        UnitOfWork.of(session).on_commit(lambda: self._forget_boards(community_id))
        company = await CompanyBoardRepository(session).company_of(community_id)
        if company is not None and company[1]:
            # The company's boards leave out (or take back) a member hidden in any community.
            company_id = company[0]
            UnitOfWork.of(session).on_commit(lambda: self.forget_company_boards(company_id))

    # --- adjustments -----------------------------------------------------------------------

    async def adjust_xp(
        self,
        session: AsyncSession,
        *,
        community_id: str,
        user_id: str,
        delta: int,
        reason: str,
        actor: str,
        idempotency_key: str,
    ) -> AwardResult:
        """An admin's ± correction: a new ledger entry (the ledger is never edited). The level
        may go down; levels regained later are not announced again."""
        reason = reason.strip()
        validate_community_id(community_id)
        if not user_id or len(user_id) > 64:
            raise InvalidAdjustment("user_id is required (at most 64 characters)")
        if delta == 0 or abs(delta) > MAX_ADJUSTMENT:
            raise InvalidAdjustment(f"delta must be non-zero and at most ±{MAX_ADJUSTMENT}")
        if not reason or len(reason) > 180:
            raise InvalidAdjustment("reason is required and at most 180 characters")
        if not idempotency_key or len(idempotency_key) > 150:
            raise InvalidAdjustment("idempotency_key is required and at most 150 characters")
        return await self.award(
            session,
            Award(
                community_id=community_id,
                user_id=user_id,
                delta=delta,
                reason=f"adjustment:{reason}",
                source="admin",
                idempotency_key=f"adjust:{idempotency_key}",
                actor=actor or None,
            ),
        )


# --- steps of the award path ---------------------------------------------------------------


async def _claim_idempotency_keys(
    repo: XpRepository, awards: Sequence[Award]
) -> list[Award | None]:
    """The awards in order, None for those whose idempotency key was used before (the same
    key twice in one batch: the first counts)."""
    keyed = [(a.community_id, a.idempotency_key) for a in awards if a.idempotency_key]
    claimed = await repo.claim_award_keys(sorted(set(keyed)))
    live: list[Award | None] = []
    for a in awards:
        claim = (a.community_id, a.idempotency_key or "")
        if a.idempotency_key is None:
            live.append(a)
        elif claim in claimed:
            claimed.discard(claim)
            live.append(a)
        else:
            live.append(None)
    return live


async def _lock_members(
    repo: XpRepository,
    live: Sequence[Award | None],
    configs: dict[str, XpConfig],
    locked: dict[Member, MemberState] | None = None,
) -> dict[Member, MemberState]:
    """The members the awards move, created at their community's first level if new, locked
    until the transaction ends (those in `locked` are already)."""
    wanted = {
        (a.community_id, a.user_id, configs[a.community_id].level_curve.first_level)
        for a in live
        if a is not None
    }
    return await repo.lock_members(sorted(wanted), locked) if wanted else {}


async def _company_scores(
    session: AsyncSession,
    opted: dict[str, str],
    states: dict[Member, MemberState],
    periods: dict[Member, dict[tuple[str, date], int]],
) -> list[CompanyScore]:
    """The new totals on the company boards of the members the batch moved in communities
    that count on their company's board (`opted`: community -> company, as the batch's write
    read them): all time, and each period the batch added to. Summed
    by Postgres in this transaction, under a lock per (company, member), so two awards of one
    member in two of the company's communities each see the other's once committed."""
    if not opted:
        return []
    repo = CompanyBoardRepository(session)
    users: dict[str, set[str]] = defaultdict(set)
    slots: dict[str, set[tuple[str, date]]] = defaultdict(set)
    for community_id, user_id in states:
        if (company_id := opted.get(community_id)) is not None:
            users[company_id].add(user_id)
            slots[company_id].update(periods.get((community_id, user_id), {}))
    await repo.lock_members([(c, u) for c, company_users in users.items() for u in company_users])
    scores = []
    for company_id, company_users in sorted(users.items()):
        boards: list[tuple[str, date | None]] = [("all", None), *sorted(slots[company_id])]
        for period, start in boards:
            for score in await repo.scores(company_id, period, start, sorted(company_users)):
                scores.append(CompanyScore(company_id, period, start, score))
    return scores


def _check_custom_kind(activity: ActivityInput, config: XpConfig) -> None:
    """A custom kind the community does not define is refused."""
    if activity.kind == "custom" and activity.custom_kind not in config.custom_kinds:
        raise UnknownCustomKind(activity.custom_kind or "")


async def _insert_activities(
    repo: XpRepository,
    activities: Sequence[ActivityInput],
    xps: Sequence[int],
    reasons: Sequence[str | None],
) -> tuple[list[int | None], dict[Member, MemberState]]:
    """The new activity's id for each, None where its (source, key) was recorded before or
    comes again in the batch (only a key's first activity is offered to the insert, so the id
    returned is that one's, whatever the order rows are inserted in); and, locked in the same
    round trip, the existing members of the activities no rule skips (those the awards will
    move, but for the cooldown's and duplicates)."""
    firsts: dict[tuple[str, str, str], tuple[ActivityInput, int, str | None]] = {}
    for a, xp, reason in zip(activities, xps, reasons, strict=True):
        firsts.setdefault((a.community_id, a.source, a.idempotency_key), (a, xp, reason))
    inserted, locked = await repo.insert_activities(
        [
            ActivityRow(
                a.community_id,
                a.user_id,
                a.kind,
                a.custom_kind,
                a.source,
                a.idempotency_key,
                a.channel_id,
                a.occurred_at,
                xp,
                reason,
            )
            for a, xp, reason in firsts.values()
        ],
        lock=[(a.community_id, a.user_id) for a, _, reason in firsts.values() if reason is None],
    )
    # pop: the same key twice in one batch is a duplicate the second time.
    ids = [
        inserted.pop((a.community_id, f"{a.source}\x00{a.idempotency_key}"), None)
        for a in activities
    ]
    return ids, locked


async def _totals(
    repo: XpRepository, of: Iterable[Award | ActivityInput]
) -> dict[Member, tuple[int, int]]:
    """(xp, level) of the members of `of` that exist, for answers that award nothing."""
    return await repo.totals_of(sorted({(a.community_id, a.user_id) for a in of}))


def _duplicate(
    totals: dict[Member, tuple[int, int]], award: Award, config: XpConfig
) -> AwardResult:
    first = config.level_curve.first_level
    xp, level = totals.get((award.community_id, award.user_id), (0, first))
    return AwardResult(True, xp, level, xp, level, 0)


def _activity_awarded(result: AwardResult) -> ActivityResult:
    return ActivityResult(
        "awarded", None, result.delta, result.total_xp, result.level, result.leveled_up
    )


def _activity_not_awarded(
    totals: dict[Member, tuple[int, int]],
    activity: ActivityInput,
    activity_id: int | None,
    reason: str | None,
    config: XpConfig,
) -> ActivityResult:
    first = config.level_curve.first_level
    xp, level = totals.get((activity.community_id, activity.user_id), (0, first))
    if activity_id is None:
        return ActivityResult("duplicate", None, 0, xp, level)
    return ActivityResult("skipped", reason, 0, xp, level)
