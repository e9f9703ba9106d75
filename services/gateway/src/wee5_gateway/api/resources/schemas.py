"""Request and response bodies of the resource library."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

ResourceType = Literal["template", "sop", "playbook", "course", "video"]
# The file types a resource may be; the stored bytes are checked against the declared one.
ContentType = Literal[
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "video/mp4",
    "application/zip",
]
Sort = Literal["newest", "updated", "downloads", "title", "relevance"]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=20)]
FileName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Sha256 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{64}$")]


class UploadRequest(msgspec.Struct, forbid_unknown_fields=True):
    file_name: FileName
    content_type: ContentType
    # The file's size in bytes; the upload is refused above it.
    size_bytes: Annotated[int, msgspec.Meta(ge=1)]


class UploadGrant(msgspec.Struct):
    # Send the file here with `method` and `headers`, straight to storage, within the hour.
    url: str
    method: str
    headers: dict[str, str]
    # Pass to `POST …/resources` once the upload finished.
    storage_key: str
    expires_at: datetime
    max_size_bytes: int


class ResourceCreate(msgspec.Struct, forbid_unknown_fields=True):
    storage_key: Annotated[str, msgspec.Meta(min_length=1, max_length=400)]
    title: Title
    category: Category
    type: ResourceType
    description: Description = ""
    featured: bool = False
    tags: Tags = msgspec.field(default_factory=list)
    # Shown on download; defaults to the name given for the upload.
    file_name: FileName | None = None
    # Hex SHA-256 of the file as the client computed it; checked against what was stored.
    checksum_sha256: Sha256 | None = None


class ResourcePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent change."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    category: Category | msgspec.UnsetType = msgspec.UNSET
    type: ResourceType | msgspec.UnsetType = msgspec.UNSET
    featured: bool | msgspec.UnsetType = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET
    file_name: FileName | msgspec.UnsetType = msgspec.UNSET


class ResourceView(msgspec.Struct):
    id: uuid.UUID
    community_id: str
    title: str
    description: str
    category: str
    type: ResourceType
    featured: bool
    tags: list[str]
    file_name: str
    size_bytes: int
    content_type: str
    checksum_sha256: str
    download_count: int
    created_at: datetime
    updated_at: datetime


class ResourcePage(msgspec.Struct):
    resources: list[ResourceView]
    # Pass back as `cursor` (with the same filters and sort) for the next page; null at the end.
    next_cursor: str | None
    # Resources matching the filters, all pages together.
    total_count: int


class DownloadLink(msgspec.Struct):
    # GET this URL (straight from storage) within the hour; it supports Range requests.
    url: str
    method: str
    expires_at: datetime
    # Whether this request counted as a download (admins' and retried ones do not).
    counted: bool
    # Whether it was your first download of this resource.
    first_by_member: bool


class DailyDownloads(msgspec.Struct):
    day: date
    downloads: int


class TopResource(msgspec.Struct):
    resource_id: uuid.UUID
    title: str
    downloads: int


class DownloadEntry(msgspec.Struct):
    resource_id: uuid.UUID
    user_id: str
    downloaded_at: datetime


class ResourceStats(msgspec.Struct):
    community_id: str
    since: datetime | None
    until: datetime | None
    total_downloads: int
    unique_downloaders: int
    per_day: list[DailyDownloads]
    top_resources: list[TopResource]
    # Who downloaded what, newest first; `next_cursor` pages further back.
    downloads: list[DownloadEntry]
    next_cursor: str | None


class LibrarySettingsView(msgspec.Struct):
    community_id: str
    enabled: bool
    categories: list[str]


class LibrarySettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    """Every library setting (PUT)."""

    enabled: bool
    categories: Annotated[list[Category], msgspec.Meta(min_length=1, max_length=50)]


class LibrarySettingsPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Some library settings (PATCH, a JSON merge patch): those left out keep their value."""

    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    categories: Annotated[list[Category], msgspec.Meta(min_length=1, max_length=50)] | (
        msgspec.UnsetType
    ) = msgspec.UNSET


@dataclass(frozen=True)
class ResourceFilters:
    """What a list of resources is filtered by and ordered on (query parameters)."""

    category: str | None
    type: ResourceType | None
    featured: bool | None
    tag: str | None
    q: str | None
    sort: Sort
