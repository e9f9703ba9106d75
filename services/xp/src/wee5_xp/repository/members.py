"""SQL of members and what moves them: activities, the award path (one statement per step for
a whole batch), the ledger, period XP, levels, streaks and community configs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Select,
    Table,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_xp.leaderboards import Score
from wee5_xp.levels import LevelCurve
from wee5_xp.models import (
    Activity,
    AwardKey,
    LedgerEntry,
    Member,
    PeriodXp,
    XpConfigRow,
)
from wee5_xp.profiles import ProfileUpdate
from wee5_xp.repository.profiles import SAVE_PROFILES, profile_params, profile_rows

# SQL expression language on the tables (not ORM DML) on the hot path: it skips ORM
# bookkeeping that the award path has no use for.
activities = cast(Table, Activity.__table__)
members = cast(Table, Member.__table__)
ledger = cast(Table, LedgerEntry.__table__)
period_xp = cast(Table, PeriodXp.__table__)
award_keys = cast(Table, AwardKey.__table__)
configs = cast(Table, XpConfigRow.__table__)

# Rows per fetch when a whole board is read from Postgres (to be loaded into Redis).
SCORES_PER_CHUNK = 5000

# New members of a batch, at their community's first level (XpRepository.lock_members).
_INSERT_MEMBERS = text("""
    INSERT INTO xp.members (community_id, user_id, xp, level, highest_level, messages, posts,
                            reactions, custom, current_streak, longest_streak)
    SELECT c, u, 0, lvl, lvl, 0, 0, 0, 0, 0, 0
      FROM unnest(CAST(:c AS varchar[]), CAST(:u AS varchar[]), CAST(:lvl AS int[]))
           AS t(c, u, lvl)
     ORDER BY c, u
    ON CONFLICT DO NOTHING""")

# Members locked in key order, handed back as one row of arrays (see _WRITE_AWARDS). `{after}`
# is a condition the lock waits for (see _INSERT_ACTIVITIES).
_LOCKED = """
    locked AS (
        SELECT m.community_id, m.user_id, m.xp, m.level, m.highest_level, m.messages, m.posts,
               m.reactions, m.custom, m.current_streak, m.longest_streak, m.last_active_day,
               m.last_activity_at, m.reached_at, m.hidden_from_leaderboards
          FROM xp.members m
          JOIN unnest(CAST(:mc AS varchar[]), CAST(:mu AS varchar[])) AS t(c, u)
            ON m.community_id = t.c AND m.user_id = t.u
         WHERE {after}
         ORDER BY m.community_id, m.user_id
           FOR UPDATE OF m),
    members AS (
        SELECT array_agg(community_id) AS mc, array_agg(user_id) AS mu, array_agg(xp) AS mxp,
               array_agg(level) AS mlevel, array_agg(highest_level) AS mhi,
               array_agg(messages) AS mmessages, array_agg(posts) AS mposts,
               array_agg(reactions) AS mreactions, array_agg(custom) AS mcustom,
               array_agg(current_streak) AS mcur, array_agg(longest_streak) AS mlongest,
               array_agg(last_active_day) AS mday, array_agg(last_activity_at) AS mat,
               array_agg(reached_at) AS mreached, array_agg(hidden_from_leaderboards) AS mhidden
          FROM locked)"""
_LOCK_MEMBERS = text(f"WITH {_LOCKED.format(after='true')} SELECT * FROM members")

# New activities inserted (those whose key is new), handed back as one row of arrays, with the
# batch's members locked (`_LOCKED`) in the same round trip. The locks are taken only once the
# insert has finished (the condition on `inserted` runs first): a batch waiting on another's
# uncommitted activity key holds no member lock meanwhile, so two batches never wait on each
# other in a cycle.
_INSERT_ACTIVITIES = text(f"""
    WITH inserted AS (
        INSERT INTO xp.activities (community_id, user_id, kind, custom_kind, source,
                                   idempotency_key, channel_id, occurred_at, xp_awarded,
                                   skip_reason)
        SELECT c, u, k, ck, s, key, ch, oc, xp, skip
          FROM unnest(CAST(:c AS varchar[]), CAST(:u AS varchar[]),
                      CAST(:k AS varchar[]), CAST(:ck AS varchar[]),
                      CAST(:s AS varchar[]), CAST(:key AS varchar[]),
                      CAST(:ch AS varchar[]), CAST(:oc AS timestamptz[]),
                      CAST(:xp AS bigint[]), CAST(:skip AS varchar[]))
               AS t(c, u, k, ck, s, key, ch, oc, xp, skip)
        ON CONFLICT (community_id, source, idempotency_key) DO NOTHING
        RETURNING id, community_id, source, idempotency_key),
    new AS (
        SELECT array_agg(id) AS id, array_agg(community_id) AS c, array_agg(source) AS s,
               array_agg(idempotency_key) AS key
          FROM inserted),
    {_LOCKED.format(after="(SELECT count(*) FROM inserted) >= 0")}
    SELECT * FROM new, members""")

# The award path's writes of a batch (XpRepository.write_awards). The new period totals come
# back as one row of arrays: thousands of rows a batch would cost more to turn into Python
# objects than the upsert costs Postgres.
_WRITE_AWARDS = text(f"""
    WITH saved AS (
        UPDATE xp.members m
           SET xp = t.xp, level = t.level, highest_level = t.hi, messages = t.messages,
               posts = t.posts, reactions = t.reactions, custom = t.custom,
               current_streak = t.cur, longest_streak = t.longest,
               last_active_day = t.day, last_activity_at = t.at, reached_at = t.reached,
               updated_at = now()
          FROM unnest(CAST(:mc AS varchar[]), CAST(:mu AS varchar[]), CAST(:mxp AS bigint[]),
                      CAST(:mlevel AS int[]), CAST(:mhi AS int[]),
                      CAST(:mmessages AS bigint[]), CAST(:mposts AS bigint[]),
                      CAST(:mreactions AS bigint[]), CAST(:mcustom AS bigint[]),
                      CAST(:mcur AS int[]), CAST(:mlongest AS int[]), CAST(:mday AS date[]),
                      CAST(:mat AS timestamptz[]), CAST(:mreached AS timestamptz[]))
               AS t(c, u, xp, level, hi, messages, posts, reactions, custom, cur, longest,
                    day, at, reached)
         WHERE m.community_id = t.c AND m.user_id = t.u),
    entries AS (
        INSERT INTO xp.ledger (community_id, user_id, delta, reason, source, activity_id,
                               balance_after, level_before, level_after, day, actor)
        SELECT c, u, d, r, s, a, b, lb, la, day, actor
          FROM unnest(CAST(:lc AS varchar[]), CAST(:lu AS varchar[]), CAST(:ld AS bigint[]),
                      CAST(:lr AS varchar[]), CAST(:ls AS varchar[]), CAST(:la AS bigint[]),
                      CAST(:lb AS bigint[]), CAST(:llb AS int[]), CAST(:lla AS int[]),
                      CAST(:lday AS date[]), CAST(:lactor AS varchar[]))
               WITH ORDINALITY AS t(c, u, d, r, s, a, b, lb, la, day, actor, n)
         ORDER BY n),
    upserted AS (
        INSERT INTO xp.period_xp AS px (community_id, user_id, period, period_start, xp,
                                       reached_at)
        SELECT * FROM unnest(CAST(:pc AS varchar[]), CAST(:pu AS varchar[]),
                             CAST(:pp AS varchar[]), CAST(:pstart AS date[]),
                             CAST(:pd AS bigint[]), CAST(:preached AS timestamptz[]))
        ON CONFLICT (community_id, period, period_start, user_id)
        DO UPDATE SET xp = px.xp + excluded.xp, reached_at = excluded.reached_at
        RETURNING community_id, user_id, period, period_start, xp),
    queued AS (
        INSERT INTO xp.outbox (event_id, subject, payload)
        SELECT e, s, p
          FROM unnest(CAST(:event_ids AS uuid[]), CAST(:subjects AS varchar[]),
                      CAST(:payloads AS bytea[]))
               WITH ORDINALITY AS t(e, s, p, n)
         ORDER BY n),
    profiled AS ({SAVE_PROFILES})
    SELECT array_agg(community_id) AS c, array_agg(user_id) AS u, array_agg(period) AS p,
           array_agg(period_start) AS start, array_agg(xp) AS xp,
           (SELECT array_agg(ARRAY[x.community_id, x.company_id])
              FROM xp.communities x
             WHERE x.community_id = ANY(CAST(:communities AS varchar[]))
               AND x.in_company_board) AS opted
      FROM upserted""")

ACTIVITY_COUNTERS = {
    "message": "messages",
    "post": "posts",
    "reaction": "reactions",
    "custom": "custom",
}


@dataclass(frozen=True)
class ActivityRow:
    community_id: str
    user_id: str
    kind: str
    custom_kind: str | None
    source: str
    idempotency_key: str
    channel_id: str | None
    occurred_at: datetime | None
    # The outcome by the community's rules, the cooldown aside (settle_activities corrects it).
    xp_awarded: int = 0
    skip_reason: str | None = None


@dataclass
class MemberState:
    """A member's row while a batch of awards moves it (written back by write_awards)."""

    xp: int
    level: int
    highest_level: int
    counters: dict[str, int]
    current_streak: int
    longest_streak: int
    last_active_day: date | None
    last_activity_at: datetime | None
    reached_at: datetime
    # Hidden members stay off the boards others read (their standings are not mirrored).
    hidden: bool = False


@dataclass(frozen=True)
class LedgerRow:
    community_id: str
    user_id: str
    delta: int
    reason: str
    source: str
    activity_id: int | None
    balance_after: int
    level_before: int
    level_after: int
    day: date
    actor: str | None


@dataclass(frozen=True)
class WrittenAwards:
    # {(community, user, period, start): the member's new XP in that period}
    period_totals: dict[tuple[str, str, str, date], int]
    # community -> company, of the batch's communities that count on their company's board
    opted_in: dict[str, str]


@dataclass(frozen=True)
class MemberLevel:
    user_id: str
    xp: int
    level: int
    highest_level: int


class XpRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- the award path: one statement per step for a whole batch ------------------------

    async def insert_activities(
        self, rows: Sequence[ActivityRow], lock: Sequence[tuple[str, str]] = ()
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], MemberState]]:
        """Inserts the activities whose (community, source, key) is new and, in the same round
        trip, locks the members `lock` names that exist (as `lock_members` does). Returns
        {(community_id, source + NUL + idempotency key): id} of those inserted, and the locked
        members."""
        if not rows:
            return {}, {}
        ordered = sorted(set(lock))
        got = (
            await self.session.execute(
                _INSERT_ACTIVITIES,
                {
                    "c": [r.community_id for r in rows],
                    "u": [r.user_id for r in rows],
                    "k": [r.kind for r in rows],
                    "ck": [r.custom_kind for r in rows],
                    "s": [r.source for r in rows],
                    "key": [r.idempotency_key for r in rows],
                    "ch": [r.channel_id for r in rows],
                    "oc": [r.occurred_at for r in rows],
                    "xp": [r.xp_awarded for r in rows],
                    "skip": [r.skip_reason for r in rows],
                    "mc": [c for c, _ in ordered],
                    "mu": [u for _, u in ordered],
                },
            )
        ).one()  # one row of arrays (see _WRITE_AWARDS); nulls: nothing inserted
        locked = _states(got._asdict())
        if got.id is None:
            return {}, locked
        inserted = {
            (c, f"{source}\x00{key}"): id_
            for id_, c, source, key in zip(got.id, got.c, got.s, got.key, strict=True)
        }
        return inserted, locked

    async def settle_activities(self, settled: Sequence[tuple[int, int, str | None]]) -> None:
        """(activity id, XP awarded, skip reason) of new activities whose outcome changed since
        they were inserted (the cooldown stopped them)."""
        if not settled:
            return
        await self.session.execute(
            text("""
            UPDATE xp.activities a SET xp_awarded = t.xp, skip_reason = t.reason
              FROM unnest(CAST(:ids AS bigint[]), CAST(:xps AS bigint[]),
                          CAST(:reasons AS varchar[])) AS t(id, xp, reason)
             WHERE a.id = t.id"""),
            {
                "ids": [i for i, _, _ in settled],
                "xps": [x for _, x, _ in settled],
                "reasons": [r for _, _, r in settled],
            },
        )

    async def claim_award_keys(
        self, community_keys: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """The (community_id, key) claimed now; a key used before (or claimed by a concurrent
        transaction, which this waits for) is left out."""
        if not community_keys:
            return set()
        result = await self.session.execute(
            text("""
            INSERT INTO xp.award_keys (community_id, idempotency_key)
            SELECT * FROM unnest(CAST(:c AS varchar[]), CAST(:k AS varchar[]))
            ON CONFLICT DO NOTHING
            RETURNING community_id, idempotency_key"""),
            {"c": [c for c, _ in community_keys], "k": [k for _, k in community_keys]},
        )
        return {(row.community_id, row.idempotency_key) for row in result}

    async def lock_members(
        self,
        wanted: Sequence[tuple[str, str, int]],
        locked: dict[tuple[str, str], MemberState] | None = None,
    ) -> dict[tuple[str, str], MemberState]:
        """The members (community_id, user_id, first level) as they stand, created if new, and
        locked until the transaction ends: concurrent awards for a member queue up here. Rows
        are taken in key order, so two batches never wait on each other in a cycle. Members
        who exist (the usual case) cost one statement, none for those this transaction
        `locked` already (`insert_activities`); only new ones are inserted, then locked like
        the rest."""
        ordered = sorted(wanted)
        if locked is None:
            states = await self._lock([(c, u) for c, u, _ in ordered])
        else:
            states = {(c, u): locked[(c, u)] for c, u, _ in ordered if (c, u) in locked}
        missing = [(c, u, lvl) for c, u, lvl in ordered if (c, u) not in states]
        if missing:
            await self.session.execute(
                _INSERT_MEMBERS,
                {
                    "c": [c for c, _, _ in missing],
                    "u": [u for _, u, _ in missing],
                    "lvl": [lvl for _, _, lvl in missing],
                },
            )
            states.update(await self._lock([(c, u) for c, u, _ in missing]))
            states = dict(sorted(states.items()))  # key order again, as `_lock` gives it
        return states

    async def _lock(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], MemberState]:
        """The members of `pairs` that exist, locked in key order."""
        got = await self.session.execute(
            _LOCK_MEMBERS, {"mc": [c for c, _ in pairs], "mu": [u for _, u in pairs]}
        )
        return _states(got.one()._asdict())

    async def write_awards(
        self,
        states: dict[tuple[str, str], MemberState],
        ledger_rows: Sequence[LedgerRow],
        periods: dict[tuple[str, str, str, date], tuple[int, datetime]],
        events: dict[str, list[Any]],
        profiles: Sequence[ProfileUpdate] = (),
    ) -> WrittenAwards:
        """Writes what a batch of awards did, in one statement: the members' new standing,
        their ledger entries (ids increase in the order given), the XP added to their
        periods {(community, user, period, start): (delta, reached at)}, the batch's events
        into the outbox (`Outbox.columns`, in order) and the profiles its activities carried
        (`SAVE_PROFILES`). Returns the new period totals, and which of the members'
        communities count on their company's board. One round trip instead of six: Postgres
        runs each part against the same snapshot, and no part reads what another writes."""
        members = list(states.items())
        period_items = list(periods.items())
        row = (
            await self.session.execute(
                _WRITE_AWARDS,
                {
                    "mc": [c for (c, _), _ in members],
                    "mu": [u for (_, u), _ in members],
                    "mxp": [m.xp for _, m in members],
                    "mlevel": [m.level for _, m in members],
                    "mhi": [m.highest_level for _, m in members],
                    "mmessages": [m.counters["messages"] for _, m in members],
                    "mposts": [m.counters["posts"] for _, m in members],
                    "mreactions": [m.counters["reactions"] for _, m in members],
                    "mcustom": [m.counters["custom"] for _, m in members],
                    "mcur": [m.current_streak for _, m in members],
                    "mlongest": [m.longest_streak for _, m in members],
                    "mday": [m.last_active_day for _, m in members],
                    "mat": [m.last_activity_at for _, m in members],
                    "mreached": [m.reached_at for _, m in members],
                    "lc": [r.community_id for r in ledger_rows],
                    "lu": [r.user_id for r in ledger_rows],
                    "ld": [r.delta for r in ledger_rows],
                    "lr": [r.reason for r in ledger_rows],
                    "ls": [r.source for r in ledger_rows],
                    "la": [r.activity_id for r in ledger_rows],
                    "lb": [r.balance_after for r in ledger_rows],
                    "llb": [r.level_before for r in ledger_rows],
                    "lla": [r.level_after for r in ledger_rows],
                    "lday": [r.day for r in ledger_rows],
                    "lactor": [r.actor for r in ledger_rows],
                    "pc": [k[0] for k, _ in period_items],
                    "pu": [k[1] for k, _ in period_items],
                    "pp": [k[2] for k, _ in period_items],
                    "pstart": [k[3] for k, _ in period_items],
                    "pd": [v[0] for _, v in period_items],
                    "preached": [v[1] for _, v in period_items],
                    "communities": sorted({c for c, _ in states}),
                    **events,
                    **profile_params(profile_rows(profiles)),
                },
            )
        ).one()
        totals = (
            dict(zip(zip(row.c, row.u, row.p, row.start, strict=True), row.xp, strict=True))
            if row.c is not None
            else {}
        )
        return WrittenAwards(totals, {c: company for c, company in row.opted or ()})

    async def totals_of(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """{(community_id, user_id): (xp, level)} of the members that exist."""
        if not pairs:
            return {}
        rows = await self.session.execute(
            text("""
            SELECT m.community_id, m.user_id, m.xp, m.level FROM xp.members m
              JOIN unnest(CAST(:c AS varchar[]), CAST(:u AS varchar[])) AS t(c, u)
                ON m.community_id = t.c AND m.user_id = t.u"""),
            {"c": [c for c, _ in pairs], "u": [u for _, u in pairs]},
        )
        return {(row.community_id, row.user_id): (row.xp, row.level) for row in rows}

    async def set_levels(self, community_id: str, levels: Sequence[tuple[str, int, int]]) -> None:
        """(user_id, level, highest_level) for many members at once."""
        if not levels:
            return
        await self.session.execute(
            update(members)
            .where(
                members.c.community_id == community_id,
                members.c.user_id == bindparam("uid"),
            )
            .values(level=bindparam("lvl"), highest_level=bindparam("hi")),
            [{"uid": u, "lvl": lvl, "hi": hi} for u, lvl, hi in levels],
        )

    async def wrong_levels(
        self, community_id: str, curve: LevelCurve, after: str, limit: int
    ) -> list[MemberLevel]:
        """Up to `limit` members after user id `after` (in user id order: the order awards lock
        members in) whose level is not the one `curve` gives their XP, locked until the
        transaction ends. Postgres finds them (`width_bucket` is `curve.level_for`'s bisection
        over the same thresholds), so members whose level is right never leave the database."""
        thresholds = bindparam("thresholds", list(curve.thresholds), type_=ARRAY(BigInteger))
        wanted = curve.first_level + func.greatest(
            0, func.width_bucket(members.c.xp, thresholds) - 1
        )
        rows = await self.session.execute(
            select(members.c.user_id, members.c.xp, members.c.level, members.c.highest_level)
            .where(
                members.c.community_id == community_id,
                members.c.user_id > after,
                members.c.level != wanted,
            )
            .order_by(members.c.user_id)
            .limit(limit)
            .with_for_update()
        )
        return [MemberLevel(r.user_id, r.xp, r.level, r.highest_level) for r in rows]

    async def get_member(self, community_id: str, user_id: str) -> Member | None:
        member: Member | None = await self.session.get(Member, (community_id, user_id))
        return member

    async def levels_of(
        self, community_id: str, user_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """(level, total XP) of each of the members."""
        rows = await self.session.execute(
            select(Member.user_id, Member.level, Member.xp).where(
                Member.community_id == community_id, Member.user_id.in_(user_ids)
            )
        )
        return {row.user_id: (row.level, row.xp) for row in rows}

    async def custom_totals(self, community_id: str, user_id: str) -> dict[str, int]:
        """Awarded activities of the member per custom kind name."""
        rows = await self.session.execute(
            select(activities.c.custom_kind, func.count().label("n"))
            .where(
                activities.c.community_id == community_id,
                activities.c.user_id == user_id,
                activities.c.kind == "custom",
                activities.c.skip_reason.is_(None),
            )
            .group_by(activities.c.custom_kind)
        )
        return {row.custom_kind: row.n for row in rows}

    async def close_streaks(
        self, yesterday: date, *, only: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> int:
        """Ends the streaks of members with no active day since before `yesterday`."""
        statement = (
            update(members)
            .where(members.c.current_streak > 0, members.c.last_active_day < yesterday)
            .values(current_streak=0)
        )
        if only:
            statement = statement.where(members.c.community_id.in_(only))
        if exclude:
            statement = statement.where(members.c.community_id.not_in(exclude))
        result = await self.session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    # --- ledger and periods ----------------------------------------------------------------

    async def history(
        self, community_id: str, user_id: str, before_id: int | None, limit: int
    ) -> list[LedgerEntry]:
        query = select(LedgerEntry).where(
            LedgerEntry.community_id == community_id, LedgerEntry.user_id == user_id
        )
        if before_id is not None:
            query = query.where(LedgerEntry.id < before_id)
        return list(await self.session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit)))

    async def all_time_scores(self, community_id: str) -> AsyncIterator[list[Score]]:
        """The all-time board as Postgres has it (hidden members left out), a chunk at a time
        from one server-side cursor, in key order (the primary key's index: one snapshot,
        streamed, never sorted whole)."""
        query = (
            select(members.c.user_id, members.c.xp, members.c.reached_at)
            .where(
                members.c.community_id == community_id,
                members.c.xp > 0,
                members.c.hidden_from_leaderboards.is_(False),
            )
            .order_by(members.c.user_id)
        )
        async for chunk in self._scores(query):
            yield chunk

    async def first_period_start(self, community_id: str, period: str) -> date | None:
        """The first period (day, week, month) in which the community's members earned XP
        (None: none yet); read from the primary key's index."""
        first: date | None = await self.session.scalar(
            select(func.min(period_xp.c.period_start)).where(
                period_xp.c.community_id == community_id, period_xp.c.period == period
            )
        )
        return first

    async def period_scores(
        self, community_id: str, period: str, start: date
    ) -> AsyncIterator[list[Score]]:
        """A period's board as Postgres has it (hidden members left out), a chunk at a time,
        in key order."""
        hidden = select(members.c.user_id).where(
            members.c.community_id == community_id, members.c.hidden_from_leaderboards
        )
        query = (
            select(period_xp.c.user_id, period_xp.c.xp, period_xp.c.reached_at)
            .where(
                period_xp.c.community_id == community_id,
                period_xp.c.period == period,
                period_xp.c.period_start == start,
                period_xp.c.xp > 0,
                period_xp.c.user_id.not_in(hidden),
            )
            .order_by(period_xp.c.user_id)
        )
        async for chunk in self._scores(query):
            yield chunk

    # The boards read from Postgres while Redis rebuilds them or cannot answer
    # (wee5_xp.queries.PostgresBoard):
    # the same members in the same order as the Redis board (XP, then who reached it first,
    # then the user id as the Redis member string orders it).

    def _board(
        self, community_id: str, period: str, start: date | None, sample: float | None = None
    ) -> Any:
        """The board's (user_id, xp, reached_at) as a subquery; of a `sample` percent of the
        table's pages when given (the same pages every time)."""
        if start is None:
            table = _sampled(members, sample)
            query = select(table.c.user_id, table.c.xp, table.c.reached_at).where(
                table.c.community_id == community_id,
                table.c.xp > 0,
                table.c.hidden_from_leaderboards.is_(False),
            )
        else:
            hidden = select(members.c.user_id).where(
                members.c.community_id == community_id, members.c.hidden_from_leaderboards
            )
            table = _sampled(period_xp, sample)
            query = select(table.c.user_id, table.c.xp, table.c.reached_at).where(
                table.c.community_id == community_id,
                table.c.period == period,
                table.c.period_start == start,
                table.c.xp > 0,
                table.c.user_id.not_in(hidden),
            )
        return query.subquery("board")

    async def board_page(
        self, community_id: str, period: str, start: date | None, offset: int, limit: int
    ) -> list[tuple[str, int]]:
        return await board_page(
            self.session, self._board(community_id, period, start), offset, limit
        )

    async def board_size(self, community_id: str, period: str, start: date | None) -> int:
        return await board_size(self.session, self._board(community_id, period, start))

    async def board_scores(
        self, community_id: str, period: str, start: date | None, user_ids: Sequence[str]
    ) -> list[Score]:
        """The scores of those of `user_ids` who are on the board."""
        return await board_scores(self.session, self._board(community_id, period, start), user_ids)

    async def board_rank(
        self, community_id: str, period: str, start: date | None, score: Score
    ) -> int:
        """The 1-based rank `score` has (or would have) on the board: 1 + those ahead."""
        return await board_rank(self.session, self._board(community_id, period, start), score)

    async def board_rank_sampled(
        self, community_id: str, period: str, start: date | None, score: Score, percent: float
    ) -> tuple[int, int]:
        """(the board's members, those of them ahead of `score`) in a sample of `percent` of
        the table's pages: a rank estimate that reads a few hundred pages, not the board."""
        board = self._board(community_id, period, start, sample=percent)
        counts = select(func.count(), func.count().filter(_ahead(board, score)))
        sampled, ahead = (await self.session.execute(counts.select_from(board))).one()
        return int(sampled), int(ahead)

    async def _scores(self, query: Select[Any]) -> AsyncIterator[list[Score]]:
        result = await self.session.stream(query.execution_options(yield_per=SCORES_PER_CHUNK))
        async for rows in result.partitions():
            yield [Score(row.user_id, row.xp, row.reached_at) for row in rows]

    async def period_score(
        self, community_id: str, user_id: str, period: str, start: date
    ) -> Score | None:
        """One member's XP in a period (for a hidden member's own rank)."""
        row = (
            await self.session.execute(
                select(period_xp.c.user_id, period_xp.c.xp, period_xp.c.reached_at).where(
                    period_xp.c.community_id == community_id,
                    period_xp.c.user_id == user_id,
                    period_xp.c.period == period,
                    period_xp.c.period_start == start,
                    period_xp.c.xp > 0,
                )
            )
        ).first()
        return Score(row.user_id, row.xp, row.reached_at) if row else None

    async def recent_periods(
        self, community_id: str, since: dict[str, date]
    ) -> list[tuple[str, date]]:
        """The (period, start) with XP of the community that began on or after since[period]."""
        rows = await self.session.execute(
            select(period_xp.c.period, period_xp.c.period_start)
            .distinct()
            .where(
                period_xp.c.community_id == community_id,
                or_(
                    *(
                        and_(period_xp.c.period == period, period_xp.c.period_start >= start)
                        for period, start in since.items()
                    )
                ),
            )
        )
        return [(row.period, row.period_start) for row in rows]

    # --- configuration ---------------------------------------------------------------------

    async def get_config(self, community_id: str) -> dict[str, Any] | None:
        stored: dict[str, Any] | None = await self.session.scalar(
            select(configs.c.config).where(configs.c.community_id == community_id)
        )
        return stored

    async def lock_config(self, community_id: str) -> dict[str, Any] | None:
        """The stored config, locked until the transaction ends (updates queue up)."""
        await self.session.execute(
            insert(configs).values(community_id=community_id, config={}).on_conflict_do_nothing()
        )
        stored: dict[str, Any] | None = await self.session.scalar(
            select(configs.c.config).where(configs.c.community_id == community_id).with_for_update()
        )
        return stored or None

    async def save_config(self, community_id: str, config: dict[str, Any]) -> None:
        await self.session.execute(
            update(configs)
            .where(configs.c.community_id == community_id)
            .values(config=config, updated_at=func.now())
        )

    async def configured_communities(self) -> dict[str, dict[str, Any]]:
        rows = await self.session.execute(select(configs.c.community_id, configs.c.config))
        return {row.community_id: row.config for row in rows if row.config}

    # --- analytics -------------------------------------------------------------------------


# A board read from Postgres (a subquery of user_id, xp, reached_at: a community's board, or a
# company's summed across its communities), with the same members in the same order as the
# Redis board (XP, then who reached it first, then the user id as the Redis member string
# orders it).


async def board_page(
    session: AsyncSession, board: Any, offset: int, limit: int
) -> list[tuple[str, int]]:
    rows = await session.execute(
        select(board.c.user_id, board.c.xp)
        .order_by(board.c.xp.desc(), board.c.reached_at, board.c.user_id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [(user_id, int(xp)) for user_id, xp in rows]


async def board_size(session: AsyncSession, board: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(board)) or 0)


async def board_scores(session: AsyncSession, board: Any, user_ids: Sequence[str]) -> list[Score]:
    """The scores of those of `user_ids` who are on the board."""
    rows = await session.execute(
        select(board.c.user_id, board.c.xp, board.c.reached_at).where(board.c.user_id.in_(user_ids))
    )
    return [Score(row.user_id, int(row.xp), row.reached_at) for row in rows]


async def board_rank(session: AsyncSession, board: Any, score: Score) -> int:
    """The 1-based rank `score` has (or would have) on the board: 1 + those ahead."""
    ahead = _ahead(board, score)
    count = await session.scalar(select(func.count()).select_from(board).where(ahead))
    return int(count or 0) + 1


def _ahead(board: Any, score: Score) -> Any:
    """Who ranks ahead of `score` on `board`: more XP, or as much reached earlier (then the
    greater user id, as the Redis member string orders them)."""
    return or_(
        board.c.xp > score.xp,
        and_(board.c.xp == score.xp, board.c.reached_at < score.reached_at),
        and_(
            board.c.xp == score.xp,
            board.c.reached_at == score.reached_at,
            board.c.user_id > score.user_id,
        ),
    )


def _sampled(table: Table, percent: float | None) -> Any:
    """The table, or a sample of `percent` of its pages (TABLESAMPLE SYSTEM, REPEATABLE: the
    same pages on every read, so an estimate does not jump between reads)."""
    if percent is None:
        return table
    return table.tablesample(func.system(percent), name=f"{table.name}_sample", seed=literal(1))


def _states(a: dict[str, Any]) -> dict[tuple[str, str], MemberState]:
    """The locked members of `_LOCKED`'s row of arrays (column -> values, in key order)."""
    if a["mc"] is None:
        return {}
    return {
        (a["mc"][i], a["mu"][i]): MemberState(
            xp=a["mxp"][i],
            level=a["mlevel"][i],
            highest_level=a["mhi"][i],
            counters={kind: a[f"m{kind}"][i] for kind in ACTIVITY_COUNTERS.values()},
            current_streak=a["mcur"][i],
            longest_streak=a["mlongest"][i],
            last_active_day=a["mday"][i],
            last_activity_at=a["mat"][i],
            reached_at=a["mreached"][i],
            hidden=a["mhidden"][i],
        )
        for i in range(len(a["mc"]))
    }
