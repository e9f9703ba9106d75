"""Every SQL statement of the benchmarks service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast

from sqlalchemy import Table, delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_benchmarks.models import CategoryState, CommunitySettings, Submission, SubmissionRevision

submissions = cast(Table, Submission.__table__)
category_state = cast(Table, CategoryState.__table__)
settings_table = cast(Table, CommunitySettings.__table__)


class SnapshotRow(Protocol):
    """A submission as result snapshots read it (a result row, not copied: they come by
    the hundred thousand)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def user_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def numbers(self) -> list[float | None] | None: ...
    @property
    def choices(self) -> list[int | None] | None: ...
    @property
    def revision(self) -> int: ...


@dataclass(frozen=True)
class CategoryColumns:
    """Every submission of a community category, column by column as delimited text: one
    round trip and a few C-speed parses instead of a hundred thousand row objects."""

    count: int
    revision: int
    ids: str
    user_ids: str
    valid: str
    numbers: str
    choices: str


# Between user ids (which may hold commas): the ASCII unit separator.
USER_SEPARATOR = "\x1f"
_COLUMNS = text(
    """
    SELECT count(*) AS total,
           coalesce(max(revision), 0) AS revision,
           string_agg(id::text, ',') AS ids,
           string_agg(user_id, chr(31)) AS user_ids,
           string_agg(CASE WHEN status = 'accepted' AND numbers IS NOT NULL THEN '1' ELSE '0' END,
                      '') AS valid,
           string_agg(coalesce(array_to_string(numbers, ',', 'NaN'), :no_numbers), ',')
               AS numbers,
           string_agg(coalesce(array_to_string(choices, ',', '-1'), :no_choices), ',')
               AS choices,
           bool_and((numbers IS NULL OR cardinality(numbers) = :numbers_width)
                    AND (choices IS NULL OR cardinality(choices) = :choices_width)) AS uniform
    FROM (SELECT id, user_id, status, numbers, choices, revision
          FROM benchmarks.submissions
          WHERE community_id = :community_id AND category = :category
          ORDER BY id) AS rows
    """
)


@dataclass(frozen=True)
class DailyParticipation:
    community_id: str
    day: datetime
    submissions: int
    members: int


async def daily_participation(
    session: AsyncSession, community_ids: Sequence[str], since: datetime, until: datetime
) -> list[DailyParticipation]:
    """First submissions in [since, until) per community and UTC day, by community then day."""
    day = func.date_trunc("day", func.timezone("UTC", Submission.created_at)).label("day")
    rows = await session.execute(
        select(
            Submission.community_id,
            day,
            func.count().label("submissions"),
            func.count(Submission.user_id.distinct()).label("members"),
        )
        .where(
            Submission.community_id.in_(community_ids),
            Submission.created_at >= since,
            Submission.created_at < until,
        )
        .group_by(Submission.community_id, day)
        .order_by(Submission.community_id, day)
    )
    return [DailyParticipation(r.community_id, r.day, r.submissions, r.members) for r in rows]


class BenchmarksRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def settings(self, community_id: str) -> CommunitySettings | None:
        found: CommunitySettings | None = await self.session.get(CommunitySettings, community_id)
        return found

    async def save_settings(
        self, community_id: str, enabled: bool, updated_by: str | None
    ) -> CommunitySettings:
        statement = (
            insert(settings_table)
            .values(community_id=community_id, enabled=enabled, updated_by=updated_by)
            .on_conflict_do_update(
                index_elements=[settings_table.c.community_id],
                set_={"enabled": enabled, "updated_by": updated_by, "updated_at": func.now()},
            )
            .returning(settings_table)
        )
        row = (await self.session.execute(statement)).one()
        return CommunitySettings(**row._mapping)

    async def next_revision(self, community_id: str, category: str) -> int:
        """Bumps the category's revision and holds its row lock until the transaction ends:
        every change to the category's results goes through here, one at a time."""
        statement = (
            insert(category_state)
            .values(community_id=community_id, category=category, revision=1)
            .on_conflict_do_update(
                index_elements=[category_state.c.community_id, category_state.c.category],
                set_={"revision": category_state.c.revision + 1},
            )
            .returning(category_state.c.revision)
        )
        revision: int = (await self.session.execute(statement)).scalar_one()
        return revision

    async def changed_since(
        self, community_id: str, category: str, revision: int
    ) -> Sequence[SnapshotRow]:
        rows = await self.session.execute(
            select(
                submissions.c.id,
                submissions.c.user_id,
                submissions.c.status,
                submissions.c.numbers,
                submissions.c.choices,
                submissions.c.revision,
            ).where(
                submissions.c.community_id == community_id,
                submissions.c.category == category,
                submissions.c.revision > revision,
            )
        )
        return rows.all()

    async def category_columns(
        self, community_id: str, category: str, numbers_width: int, choices_width: int
    ) -> CategoryColumns | None:
        """The whole category as columns, or None when some row was stored under an older
        schema width (then read it row by row)."""
        row = (
            await self.session.execute(
                _COLUMNS,
                {
                    "community_id": community_id,
                    "category": category,
                    "numbers_width": numbers_width,
                    "choices_width": choices_width,
                    "no_numbers": ",".join(["NaN"] * numbers_width),
                    "no_choices": ",".join(["-1"] * choices_width),
                },
            )
        ).one()
        if row.total and not row.uniform:
            return None
        return CategoryColumns(
            count=row.total,
            revision=row.revision,
            ids=row.ids or "",
            user_ids=row.user_ids or "",
            valid=row.valid or "",
            numbers=row.numbers or "",
            choices=row.choices or "",
        )

    async def find(self, community_id: str, user_id: str, category: str) -> Submission | None:
        found: Submission | None = await self.session.scalar(
            select(Submission).where(
                Submission.community_id == community_id,
                Submission.user_id == user_id,
                Submission.category == category,
            )
        )
        return found

    async def find_owned(self, community_id: str, owner: str, category: str) -> Submission | None:
        """The owner's latest live submission in the category."""
        found: Submission | None = await self.session.scalar(
            select(Submission)
            .where(
                Submission.community_id == community_id,
                Submission.owner == owner,
                Submission.category == category,
                Submission.status != "deleted",
            )
            .order_by(Submission.updated_at.desc())
            .limit(1)
        )
        return found

    async def get(self, community_id: str, submission_id: uuid.UUID) -> Submission | None:
        found: Submission | None = await self.session.scalar(
            select(Submission).where(
                Submission.community_id == community_id, Submission.id == submission_id
            )
        )
        return found

    async def add(self, submission: Submission) -> Submission:
        self.session.add(submission)
        await self.session.flush()
        return submission

    async def keep_revision(self, submission: Submission, replaced_at: datetime) -> None:
        """Files the submission's current answers in its history before they are replaced."""
        assert submission.answers is not None
        self.session.add(
            SubmissionRevision(
                submission_id=submission.id,
                version=submission.version,
                schema_version=submission.schema_version,
                answers=submission.answers,
                status=submission.status,
                submitted_at=submission.updated_at,
                replaced_at=replaced_at,
            )
        )
        await self.session.flush()

    async def erase_history(self, submission_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(SubmissionRevision).where(SubmissionRevision.submission_id == submission_id)
        )

    async def mine(self, community_id: str, owner: str, category: str | None) -> list[Submission]:
        query = select(Submission).where(
            Submission.community_id == community_id,
            Submission.owner == owner,
            Submission.status != "deleted",
        )
        if category is not None:
            query = query.where(Submission.category == category)
        return list(await self.session.scalars(query.order_by(Submission.category)))

    async def history(self, submission_ids: list[uuid.UUID]) -> list[SubmissionRevision]:
        if not submission_ids:
            return []
        return list(
            await self.session.scalars(
                select(SubmissionRevision)
                .where(SubmissionRevision.submission_id.in_(submission_ids))
                .order_by(SubmissionRevision.submission_id, SubmissionRevision.version.desc())
            )
        )

    async def review_queue(
        self,
        community_id: str,
        category: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Submission]:
        query = select(Submission).where(
            Submission.community_id == community_id, Submission.status == "pending_review"
        )
        if category is not None:
            query = query.where(Submission.category == category)
        if after is not None:
            query = query.where(tuple_(Submission.updated_at, Submission.id) > after)
        query = query.order_by(Submission.updated_at, Submission.id).limit(limit)
        return list(await self.session.scalars(query))

    async def lock(self, submission: Submission) -> None:
        """Re-reads the submission under its row lock (after the category lock is held)."""
        await self.session.refresh(submission, with_for_update=True)

    async def touch(self, submission_id: uuid.UUID, **values: object) -> None:
        await self.session.execute(
            update(submissions).where(submissions.c.id == submission_id).values(**values)
        )
