"""The rules of the resource library. Never commits: the servicer owns the transaction."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_kit.communities import validate_community_id
from wee5_kit.events import Outbox, new_meta
from wee5_kit.logging import get_logger
from wee5_kit.pagination import InvalidPageToken, decode_page_token, encode_page_token, take_page
from wee5_kit.uow import UnitOfWork
from wee5_resources.errors import (
    FileMissing,
    FileRejected,
    InvalidResource,
    LibraryDisabled,
    ResourceNotFound,
    UploadNotFound,
    UploadUsed,
)
from wee5_resources.filetypes import ACCEPTED_CONTENT_TYPES, FileKind, kind_of_head, kind_of_zip
from wee5_resources.models import RESOURCE_TYPES, Download, LibrarySettings, Resource, Upload
from wee5_resources.repository import (
    DailyCount,
    DownloadRow,
    ResourceFilter,
    ResourcesRepository,
    StatsWindow,
    TopResource,
    keyset,
    relevance,
)
from wee5_resources.storage import Downloader, SignedRequest, Storage, new_storage_key
from wee5_resources.storage.base import is_storage_key

log = get_logger("wee5.resources")

DEFAULT_CATEGORIES = (
    "Cold email",
    "Sales/GTM",
    "Customer service",
    "Operations",
    "Agency growth",
)
MAX_CATEGORIES = 50
MAX_TAGS = 20
MAX_PAGE = 100
DEFAULT_PAGE = 20
MAX_STATS_PAGE = 200
MAX_STATS_DAYS = 366
# An upload not published this long after its URL expired is deleted, object and all.
ABANDONED_AFTER = timedelta(hours=24)
UPDATABLE = frozenset({"title", "description", "category", "type", "featured", "tags", "file_name"})
ORDERS = ("created_at", "updated_at", "download_count", "title", "relevance")
_TAG = re.compile(r"^[a-z0-9][a-z0-9 _./&+-]{0,39}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KIND_NAMES = {
    FileKind.PDF: "a PDF",
    FileKind.DOCX: "a Word document (DOCX)",
    FileKind.XLSX: "an Excel workbook (XLSX)",
    FileKind.MP4: "an MP4 video",
    FileKind.ZIP: "a ZIP archive",
    FileKind.EXECUTABLE: "an executable program",
    FileKind.UNKNOWN: "of a type not accepted",
}


@dataclass(frozen=True)
class LibraryConfig:
    community_id: str
    enabled: bool
    categories: tuple[str, ...]


@dataclass(frozen=True)
class ResourceDraft:
    community_id: str
    storage_key: str
    title: str
    description: str
    category: str
    type: str
    featured: bool
    tags: list[str]
    file_name: str
    content_type: str
    checksum_sha256: str
    created_by: str


@dataclass(frozen=True)
class Page:
    resources: list[Resource]
    next_token: str
    total: int


@dataclass(frozen=True)
class DownloadOutcome:
    counted: bool
    first_by_member: bool


@dataclass(frozen=True)
class Stats:
    days: list[DailyCount]
    top: list[TopResource]
    recent: list[DownloadRow]
    next_token: str
    total: int
    unique: int


@dataclass
class ResourceChanges:
    """Fields of an update, already validated; only those present in `fields` change."""

    fields: dict[str, Any] = field(default_factory=dict)


def _config(community_id: str, row: LibrarySettings | None) -> LibraryConfig:
    if row is None:
        return LibraryConfig(community_id, True, DEFAULT_CATEGORIES)
    return LibraryConfig(community_id, row.enabled, tuple(row.categories))


def plain_text(value: str, name: str) -> str:
    """Refuses the NUL character, which Postgres text cannot hold."""
    if "\x00" in value:
        raise InvalidResource(f"{name} must not contain the NUL character")
    return value


def clean_title(value: str) -> str:
    title = " ".join(plain_text(value, "title").split())
    if not 1 <= len(title) <= 200:
        raise InvalidResource("title must have 1 to 200 characters")
    return title


def clean_description(value: str) -> str:
    description = plain_text(value, "description").strip()
    if len(description) > 10_000:
        raise InvalidResource("description must have at most 10000 characters")
    return description


def clean_file_name(value: str) -> str:
    name = value.strip()
    if not 1 <= len(name) <= 200 or "/" in name or "\\" in name or "\x00" in name:
        raise InvalidResource("file_name must have 1 to 200 characters and no path separators")
    return name


def clean_tags(values: Sequence[str]) -> list[str]:
    tags: list[str] = []
    for value in values:
        tag = " ".join(value.lower().split())
        if not _TAG.fullmatch(tag):
            raise InvalidResource(
                f"tag {value!r} must be 1 to 40 letters, digits, spaces or _ . / & + -"
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidResource(f"a resource has at most {MAX_TAGS} tags")
    return tags


def clean_categories(values: Sequence[str]) -> list[str]:
    categories: list[str] = []
    for value in values:
        category = " ".join(plain_text(value, "category").split())
        if not 1 <= len(category) <= 64:
            raise InvalidResource("a category has 1 to 64 characters")
        if category.casefold() in (known.casefold() for known in categories):
            raise InvalidResource(f"category {category!r} is listed twice")
        categories.append(category)
    if not 1 <= len(categories) <= MAX_CATEGORIES:
        raise InvalidResource(f"a library has 1 to {MAX_CATEGORIES} categories")
    return categories


def check_type(value: str) -> str:
    if value not in RESOURCE_TYPES:
        raise InvalidResource(f"type must be one of {', '.join(RESOURCE_TYPES)}")
    return value


def check_update_mask(changes: ResourceChanges) -> None:
    """Refuses an update that names no field, or a field that cannot change."""
    if not changes.fields:
        raise InvalidResource("update_mask names no field to change")
    unknown = set(changes.fields) - UPDATABLE
    if unknown:
        raise InvalidResource(
            f"cannot update {', '.join(sorted(unknown))}; updatable: {', '.join(sorted(UPDATABLE))}"
        )


def check_category(value: str, library: LibraryConfig) -> str:
    if value not in library.categories:
        raise InvalidResource(
            f"category must be one of this library's: {', '.join(library.categories)}"
        )
    return value


def clean_changes(changes: ResourceChanges, library: LibraryConfig) -> dict[str, Any]:
    """The new value of each field the update names, cleaned as on create."""
    cleaners: dict[str, Callable[[Any], Any]] = {
        "title": clean_title,
        "description": clean_description,
        "category": lambda value: check_category(value, library),
        "type": check_type,
        "tags": clean_tags,
        "file_name": clean_file_name,
        "featured": bool,
    }
    return {name: cleaners[name](value) for name, value in changes.fields.items()}


class ResourcesService:
    def __init__(self, storage: Storage, outbox: Outbox, *, url_ttl: int, max_upload: int) -> None:
        self.storage = storage
        self.outbox = outbox
        self.url_ttl = url_ttl
        self.max_upload = max_upload

    # Settings

    async def library(self, session: AsyncSession, community_id: str) -> LibraryConfig:
        validate_community_id(community_id)
        return _config(community_id, await ResourcesRepository(session).get_settings(community_id))

    async def open_library(self, session: AsyncSession, community_id: str) -> LibraryConfig:
        """The library's settings, or FAILED_PRECONDITION when the community turned it off."""
        library = await self.library(session, community_id)
        if not library.enabled:
            raise LibraryDisabled(community_id)
        return library

    async def update_library(
        self,
        session: AsyncSession,
        community_id: str,
        *,
        enabled: bool | None,
        categories: Sequence[str] | None,
    ) -> tuple[LibraryConfig, LibraryConfig]:
        """Applies the given settings; returns (before, after)."""
        validate_community_id(community_id)
        defaults = _config(community_id, None)
        row, existed = await ResourcesRepository(session).lock_settings(
            community_id, defaults.enabled, list(defaults.categories)
        )
        before = _config(community_id, row) if existed else defaults
        if enabled is not None:
            row.enabled = enabled
        if categories is not None:
            row.categories = clean_categories(categories)
        await session.flush()
        return before, _config(community_id, row)

    # Uploads and creation

    async def create_upload(
        self,
        session: AsyncSession,
        community_id: str,
        *,
        file_name: str,
        content_type: str,
        max_size: int,
        created_by: str,
    ) -> tuple[str, SignedRequest]:
        await self.open_library(session, community_id)
        name = clean_file_name(file_name)
        if content_type not in ACCEPTED_CONTENT_TYPES:
            raise InvalidResource(
                "content_type must be one of " + ", ".join(sorted(ACCEPTED_CONTENT_TYPES))
            )
        if not 1 <= max_size <= self.max_upload:
            raise InvalidResource(f"max_size_bytes must be between 1 and {self.max_upload}")
        if not created_by:
            raise InvalidResource("created_by is required")
        key = new_storage_key(community_id, name)
        signed = await self.storage.upload_url(key, content_type, max_size, self.url_ttl)
        await ResourcesRepository(session).add(
            Upload(
                storage_key=key,
                community_id=community_id,
                file_name=name,
                content_type=content_type,
                max_size_bytes=max_size,
                created_by=created_by,
                expires_at=signed.expires_at,
            )
        )
        return key, signed

    async def create_resource(self, session: AsyncSession, draft: ResourceDraft) -> Resource:
        """Registers the uploaded object as a resource after checking it: present, within
        the size signed for, of the declared type by its content (never an executable), and
        matching the checksum the client sent. A file that fails is deleted. Creating again
        from the same key returns the resource already created (a safe retry)."""
        library = await self.open_library(session, draft.community_id)
        if not is_storage_key(draft.storage_key):
            raise InvalidResource("storage_key is not one CreateUploadUrl returned")
        repository = ResourcesRepository(session)
        upload = await repository.lock_upload(draft.community_id, draft.storage_key)
        if upload is None:
            raise UploadNotFound(draft.storage_key)
        if upload.consumed_at is not None:
            existing = await repository.by_storage_key(draft.storage_key)
            if existing is not None:
                return existing
            raise UploadUsed(draft.storage_key)
        title = clean_title(draft.title)
        description = clean_description(draft.description)
        if draft.category not in library.categories:
            raise InvalidResource(
                f"category must be one of this library's: {', '.join(library.categories)}"
            )
        kind = check_type(draft.type)
        tags = clean_tags(draft.tags)
        file_name = clean_file_name(draft.file_name) if draft.file_name else upload.file_name
        if draft.content_type and draft.content_type != upload.content_type:
            raise InvalidResource(
                f"content_type must be {upload.content_type}, as declared for the upload"
            )
        checksum = draft.checksum_sha256.lower()
        if checksum and not _SHA256.fullmatch(checksum):
            raise InvalidResource("checksum_sha256 must be 64 hexadecimal characters")
        size, sha256 = await self._verify_object(upload, checksum)
        upload.consumed_at = datetime.now(UTC)
        resource = Resource(
            id=uuid.uuid4(),
            community_id=draft.community_id,
            title=title,
            description=description,
            category=draft.category,
            type=kind,
            featured=draft.featured,
            tags=tags,
            file_name=file_name,
            size_bytes=size,
            content_type=upload.content_type,
            checksum_sha256=sha256,
            storage_key=upload.storage_key,
            download_count=0,
            created_by=draft.created_by or upload.created_by,
        )
        await repository.add(resource)
        await session.refresh(resource)
        return resource

    async def _verify_object(self, upload: Upload, checksum: str) -> tuple[int, str]:
        key = upload.storage_key
        await self.storage.seal(key)
        size = await self.storage.size(key)
        if size is None:
            raise FileMissing(key)
        if size > upload.max_size_bytes:
            await self._reject(
                key, f"the file has {size} bytes, over the {upload.max_size_bytes} allowed"
            )
        if size == 0:
            await self._reject(key, "the file is empty")
        stored = await self.storage.inspect(key)
        found = kind_of_head(stored.head)
        if found is FileKind.ZIP:
            found = kind_of_zip(await self.storage.zip_entries(key))
        if found is FileKind.EXECUTABLE:
            await self._reject(key, "the file is an executable program, which is never accepted")
        if found.value != upload.content_type:
            declared = _KIND_NAMES.get(FileKind(upload.content_type), upload.content_type)
            await self._reject(key, f"the file is {_KIND_NAMES[found]}, not {declared} as declared")
        if checksum and checksum != stored.sha256:
            await self._reject(key, "the file's SHA-256 does not match checksum_sha256")
        return stored.size, stored.sha256

    async def _reject(self, key: str, reason: str) -> None:
        await self.storage.delete(key)
        log.warning("uploaded file rejected and deleted", storage_key=key, reason=reason)
        raise FileRejected(reason)

    async def purge_abandoned_uploads(self, session: AsyncSession, *, batch: int = 100) -> int:
        """Deletes uploads never published a day after their URL expired, objects first (a
        failed commit only leaves rows to claim again). Returns how many."""
        keys = await ResourcesRepository(session).claim_abandoned_uploads(
            datetime.now(UTC) - ABANDONED_AFTER, batch
        )
        for key in keys:
            await self.storage.delete(key)
        if keys:
            log.info("abandoned uploads deleted", count=len(keys))
        return len(keys)

    # Reading

    async def get(self, session: AsyncSession, community_id: str, resource_id: str) -> Resource:
        await self.open_library(session, community_id)
        resource = await ResourcesRepository(session).get(community_id, _resource_uuid(resource_id))
        if resource is None:
            raise ResourceNotFound(resource_id)
        return resource

    async def list_resources(
        self,
        session: AsyncSession,
        where: ResourceFilter,
        *,
        order: str,
        page_size: int,
        page_token: str,
    ) -> Page:
        await self.open_library(session, where.community_id)
        if order not in ORDERS:
            raise InvalidResource(f"order must be one of {', '.join(ORDERS)}")
        if order == "relevance" and not where.query:
            order = "created_at"
        size = page_size or DEFAULT_PAGE
        if not 1 <= size <= MAX_PAGE:
            raise InvalidResource(f"page_size must be between 1 and {MAX_PAGE}")
        repository = ResourcesRepository(session)
        offset, after, columns = 0, None, _order_columns(order, where.query)
        descending = order != "title"
        if order == "relevance":
            offset = _relevance_offset(page_token)
        elif (last := _keyset_after(page_token, order)) is not None:
            after = keyset(columns, last, descending)
        ordering = [column.desc() if descending else column.asc() for column in columns]
        rows, more = take_page(
            await repository.page(where, ordering, after, offset, size + 1), size
        )
        token = _encode_cursor(order, rows[-1], offset + size) if more else ""
        return Page(rows, token, await repository.count(where))

    # Writing

    async def update(
        self,
        session: AsyncSession,
        community_id: str,
        resource_id: str,
        changes: ResourceChanges,
    ) -> tuple[Resource, dict[str, Any]]:
        """Applies the changes; returns the resource and the changed fields' old values."""
        library = await self.open_library(session, community_id)
        check_update_mask(changes)
        repository = ResourcesRepository(session)
        resource = await repository.get_for_update(community_id, _resource_uuid(resource_id))
        if resource is None:
            raise ResourceNotFound(resource_id)
        clean = clean_changes(changes, library)
        before = {name: getattr(resource, name) for name in clean}
        for name, value in clean.items():
            setattr(resource, name, value)
        resource.updated_at = datetime.now(UTC)
        await session.flush()
        return resource, before

    async def delete(self, session: AsyncSession, community_id: str, resource_id: str) -> Resource:
        """Deletes the resource's row (and its download records), and its stored object once
        that committed (`session` belongs to a `wee5_kit.uow.unit_of_work`)."""
        await self.open_library(session, community_id)
        repository = ResourcesRepository(session)
        resource = await repository.get_for_update(community_id, _resource_uuid(resource_id))
        if resource is None:
            raise ResourceNotFound(resource_id)
        await repository.delete(resource)
        key = resource.storage_key
        UnitOfWork.of(session).on_commit(lambda: self.delete_object(key))
        return resource

    async def delete_object(self, key: str) -> None:
        try:
            await self.storage.delete(key)
        except Exception:
            # The row is gone; an object left behind is only storage, found by its key.
            log.exception("stored object of a deleted resource could not be removed", key=key)

    # Downloads

    async def record_download(
        self,
        session: AsyncSession,
        resource: Resource,
        user_id: str,
        idempotency_key: str,
    ) -> DownloadOutcome:
        """Counts one member download and queues `resources.downloaded`; a retry with the
        same idempotency key counts nothing. `first_by_member` is true exactly once per
        member and resource, however many downloads race."""
        repository = ResourcesRepository(session)
        await repository.lock_member(resource.community_id, user_id)
        if not await repository.hold(resource.id):
            raise ResourceNotFound(str(resource.id))  # deleted since it was read
        if idempotency_key:
            previous = await repository.download_by_key(
                resource.community_id, user_id, idempotency_key
            )
            if previous is not None:
                return DownloadOutcome(counted=False, first_by_member=previous.first_by_member)
        first = not await repository.has_downloaded(resource.id, user_id)
        await repository.add(
            Download(
                community_id=resource.community_id,
                resource_id=resource.id,
                user_id=user_id,
                first_by_member=first,
                idempotency_key=idempotency_key or None,
            )
        )
        await repository.count_download(resource.id)
        await self.outbox.add(
            session,
            "resources.downloaded",
            events_pb2.ResourceDownloaded(
                meta=new_meta(resource.community_id),
                user_id=user_id,
                resource_id=str(resource.id),
                first_by_member=first,
            ),
        )
        return DownloadOutcome(counted=True, first_by_member=first)

    async def download_url(self, resource: Resource, downloader: Downloader) -> SignedRequest:
        return await self.storage.download_url(
            resource.storage_key,
            resource.content_type,
            resource.file_name,
            self.url_ttl,
            downloader,
        )

    # Stats

    async def stats(
        self,
        session: AsyncSession,
        community_id: str,
        *,
        start: datetime | None,
        end: datetime | None,
        resource_id: str,
        top_n: int,
        page_size: int,
        page_token: str,
    ) -> Stats:
        await self.open_library(session, community_id)
        until = end or datetime.now(UTC)
        try:
            since = start or until - timedelta(days=30)
        except OverflowError:
            raise InvalidResource("end_time is too early for a 30-day window") from None
        if since >= until:
            raise InvalidResource("start_time must be before end_time")
        if until - since > timedelta(days=MAX_STATS_DAYS):
            raise InvalidResource(f"the window spans at most {MAX_STATS_DAYS} days")
        top = top_n or 10
        if not 1 <= top <= MAX_PAGE:
            raise InvalidResource(f"top_n must be between 1 and {MAX_PAGE}")
        size = page_size or 50
        if not 1 <= size <= MAX_STATS_PAGE:
            raise InvalidResource(f"page_size must be between 1 and {MAX_STATS_PAGE}")
        before_id = _download_cursor(page_token)
        window = StatsWindow(
            community_id, since, until, _resource_uuid(resource_id) if resource_id else None
        )
        repository = ResourcesRepository(session)
        counted = {row.day: row.count for row in await repository.daily_counts(window)}
        days = [DailyCount(day, counted.get(day, 0)) for day in _days(since, until)]
        recent, more = take_page(
            await repository.recent_downloads(window, before_id, size + 1), size
        )
        total, unique = await repository.totals(window)
        return Stats(
            days=days,
            top=await repository.top_resources(window, top),
            recent=recent,
            next_token=encode_page_token(recent[-1].id) if more else "",
            total=total,
            unique=unique,
        )


def _resource_uuid(resource_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(resource_id)
    except ValueError:
        raise ResourceNotFound(resource_id) from None


def _days(since: datetime, until: datetime) -> list[date]:
    first, last = (
        since.astimezone(UTC).date(),
        (until - timedelta(microseconds=1)).astimezone(UTC).date(),
    )
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _order_columns(order: str, query: str | None) -> list[ColumnElement[Any]]:
    if order == "relevance" and query:
        return [relevance(query), Resource.id.expression]
    column: ColumnElement[Any] = {
        "created_at": Resource.created_at,
        "updated_at": Resource.updated_at,
        "download_count": Resource.download_count,
        "title": Resource.title,
    }[order].expression
    return [column, Resource.id.expression]


# The sort key of a keyset page token, by order (relevance pages by offset instead).
_KEY_KINDS: dict[str, type] = {
    "created_at": datetime,
    "updated_at": datetime,
    "download_count": int,
    "title": str,
}


def _encode_cursor(order: str, last: Resource, offset: int) -> str:
    if order == "relevance":
        return encode_page_token(order, offset)
    return encode_page_token(order, getattr(last, order), last.id)


def _decode_for(token: str, order: str, *kinds: type) -> tuple[Any, ...]:
    """The parts of a token after its order, which must be `order` (a token of another sort
    would start the page somewhere meaningless)."""
    found, *parts = decode_page_token(token, str, *kinds, name="page_token")
    if found != order:
        raise InvalidPageToken("page_token")
    return tuple(parts)


def _relevance_offset(token: str) -> int:
    if not token:
        return 0
    (offset,) = _decode_for(token, "relevance", int)
    if not 0 <= offset < 2**31:
        raise InvalidPageToken("page_token")
    return int(offset)


def _keyset_after(token: str, order: str) -> list[Any] | None:
    """The (sort value, resource id) the next page starts after, or None for the first page."""
    if not token:
        return None
    value, key = _decode_for(token, order, _KEY_KINDS[order], uuid.UUID)
    if order == "download_count" and value < 0:
        raise InvalidPageToken("page_token")
    return [value, key]


def _download_cursor(token: str) -> int | None:
    """The id of the last download shown; the next page holds older ones."""
    if not token:
        return None
    (download_id,) = decode_page_token(token, int, name="page_token")
    if download_id < 1:
        raise InvalidPageToken("page_token")
    return int(download_id)
