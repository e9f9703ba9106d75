"""Every SQL statement of the resources service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    delete,
    func,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_resources.models import Download, LibrarySettings, Resource, Upload

Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class ResourceFilter:
    community_id: str
    category: str | None = None
    type: str | None = None
    featured: bool | None = None
    tag: str | None = None
    query: str | None = None


@dataclass(frozen=True)
class DailyCount:
    day: date
    count: int


@dataclass(frozen=True)
class TopResource:
    resource_id: uuid.UUID
    title: str
    count: int


@dataclass(frozen=True)
class DownloadRow:
    id: int
    resource_id: uuid.UUID
    user_id: str
    downloaded_at: datetime


@dataclass(frozen=True)
class StatsWindow:
    community_id: str
    start: datetime
    end: datetime
    resource_id: uuid.UUID | None


class ResourcesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Library settings

    async def get_settings(self, community_id: str) -> LibrarySettings | None:
        settings: LibrarySettings | None = await self.session.get(LibrarySettings, community_id)
        return settings

    async def lock_settings(
        self, community_id: str, enabled: bool, categories: list[str]
    ) -> tuple[LibrarySettings, bool]:
        """The community's settings row, locked until the transaction ends, created from the
        given defaults first when missing (so two first updates queue on one row). The flag
        says whether the row existed."""
        created = await self.session.scalar(
            insert(LibrarySettings)
            .values(community_id=community_id, enabled=enabled, categories=categories)
            .on_conflict_do_nothing(index_elements=[LibrarySettings.community_id])
            .returning(LibrarySettings.community_id)
        )
        settings: LibrarySettings = (
            await self.session.scalars(
                select(LibrarySettings)
                .where(LibrarySettings.community_id == community_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
        return settings, created is None

    async def add(self, row: Any) -> None:
        self.session.add(row)
        await self.session.flush()

    # Uploads

    async def lock_upload(self, community_id: str, storage_key: str) -> Upload | None:
        upload: Upload | None = await self.session.scalar(
            select(Upload)
            .where(Upload.storage_key == storage_key, Upload.community_id == community_id)
            .with_for_update()
        )
        return upload

    async def claim_abandoned_uploads(self, expired_before: datetime, limit: int) -> list[str]:
        """Keys of uploads never published whose URL expired before `expired_before`, locked
        (skipping any a CreateResource holds) and deleted with the transaction."""
        keys = list(
            await self.session.scalars(
                select(Upload.storage_key)
                .where(Upload.consumed_at.is_(None), Upload.expires_at < expired_before)
                .order_by(Upload.expires_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if keys:
            await self.session.execute(delete(Upload).where(Upload.storage_key.in_(keys)))
        return keys

    # Resources

    async def get(self, community_id: str, resource_id: uuid.UUID) -> Resource | None:
        resource: Resource | None = await self.session.scalar(
            select(Resource).where(
                Resource.community_id == community_id, Resource.id == resource_id
            )
        )
        return resource

    async def get_for_update(self, community_id: str, resource_id: uuid.UUID) -> Resource | None:
        resource: Resource | None = await self.session.scalar(
            select(Resource)
            .where(Resource.community_id == community_id, Resource.id == resource_id)
            .with_for_update()
        )
        return resource

    async def by_storage_key(self, storage_key: str) -> Resource | None:
        resource: Resource | None = await self.session.scalar(
            select(Resource).where(Resource.storage_key == storage_key)
        )
        return resource

    async def delete(self, resource: Resource) -> None:
        await self.session.execute(delete(Resource).where(Resource.id == resource.id))

    def _filtered(self, query: Q, where: ResourceFilter) -> Q:
        query = query.where(Resource.community_id == where.community_id)
        if where.category:
            query = query.where(Resource.category == where.category)
        if where.type:
            query = query.where(Resource.type == where.type)
        if where.featured is not None:
            query = query.where(Resource.featured.is_(where.featured))
        if where.tag:
            query = query.where(Resource.tags.contains([where.tag]))
        if where.query:
            query = query.where(Resource.search.bool_op("@@")(_tsquery(where.query)))
        return query

    async def count(self, where: ResourceFilter) -> int:
        total: int = (
            await self.session.execute(self._filtered(select(func.count()), where))
        ).scalar_one()
        return total

    async def page(
        self,
        where: ResourceFilter,
        order: Sequence[ColumnElement[Any]],
        after: ColumnElement[bool] | None,
        offset: int,
        limit: int,
    ) -> list[Resource]:
        query = self._filtered(select(Resource), where)
        if after is not None:
            query = query.where(after)
        rows = await self.session.scalars(query.order_by(*order).offset(offset).limit(limit))
        return list(rows)

    # Downloads

    async def lock_member(self, community_id: str, user_id: str) -> None:
        """Serialises one member's downloads (until the transaction ends), so that a retry
        and the first download of a resource are decided exactly once."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"resources.download:{community_id}:{user_id}"},
        )

    async def hold(self, resource_id: uuid.UUID) -> bool:
        """Keeps the resource from being deleted until the transaction ends (a key-share
        lock); False when it is already gone."""
        found = await self.session.scalar(
            select(Resource.id)
            .where(Resource.id == resource_id)
            .with_for_update(read=True, key_share=True)
        )
        return found is not None

    async def download_by_key(
        self, community_id: str, user_id: str, idempotency_key: str
    ) -> Download | None:
        download: Download | None = await self.session.scalar(
            select(Download).where(
                Download.community_id == community_id,
                Download.user_id == user_id,
                Download.idempotency_key == idempotency_key,
            )
        )
        return download

    async def has_downloaded(self, resource_id: uuid.UUID, user_id: str) -> bool:
        found = await self.session.scalar(
            select(Download.id)
            .where(Download.resource_id == resource_id, Download.user_id == user_id)
            .limit(1)
        )
        return found is not None

    async def count_download(self, resource_id: uuid.UUID) -> int:
        """Adds one to the resource's count in one statement (exact under concurrency)."""
        count: int = (
            await self.session.execute(
                update(Resource)
                .where(Resource.id == resource_id)
                .values(download_count=Resource.download_count + 1)
                .returning(Resource.download_count)
            )
        ).scalar_one()
        return count

    # Stats

    def _in_window(self, query: Q, window: StatsWindow) -> Q:
        query = query.where(
            Download.community_id == window.community_id,
            Download.downloaded_at >= window.start,
            Download.downloaded_at < window.end,
        )
        if window.resource_id is not None:
            query = query.where(Download.resource_id == window.resource_id)
        return query

    async def daily_counts(self, window: StatsWindow) -> list[DailyCount]:
        day = func.date(func.timezone("UTC", Download.downloaded_at)).label("day")
        rows = await self.session.execute(
            self._in_window(select(day, func.count()), window).group_by(day).order_by(day)
        )
        return [DailyCount(row[0], row[1]) for row in rows]

    async def totals(self, window: StatsWindow) -> tuple[int, int]:
        row = (
            await self.session.execute(
                self._in_window(
                    select(func.count(), func.count(func.distinct(Download.user_id))), window
                )
            )
        ).one()
        return int(row[0]), int(row[1])

    async def top_resources(self, window: StatsWindow, limit: int) -> list[TopResource]:
        downloads = func.count(Download.id).label("downloads")
        rows = await self.session.execute(
            self._in_window(
                select(Resource.id, Resource.title, downloads).join(
                    Resource, Resource.id == Download.resource_id
                ),
                window,
            )
            .group_by(Resource.id, Resource.title)
            .order_by(downloads.desc(), Resource.title, Resource.id)
            .limit(limit)
        )
        return [TopResource(row[0], row[1], row[2]) for row in rows]

    async def recent_downloads(
        self, window: StatsWindow, before_id: int | None, limit: int
    ) -> list[DownloadRow]:
        query = self._in_window(
            select(Download.id, Download.resource_id, Download.user_id, Download.downloaded_at),
            window,
        )
        if before_id is not None:
            query = query.where(Download.id < before_id)
        rows = await self.session.execute(query.order_by(Download.id.desc()).limit(limit))
        return [DownloadRow(*row) for row in rows]


def _tsquery(query: str) -> ColumnElement[Any]:
    return func.websearch_to_tsquery(literal_column("'english'::regconfig"), query)


def relevance(query: str) -> ColumnElement[float]:
    return func.ts_rank(Resource.search, _tsquery(query))


def keyset(
    columns: Sequence[ColumnElement[Any]], values: Sequence[Any], descending: bool
) -> ColumnElement[bool]:
    """Rows after the cursor's row in a `(columns…) DESC|ASC` order."""
    left, right = tuple_(*columns), tuple_(*values)
    return left < right if descending else left > right
