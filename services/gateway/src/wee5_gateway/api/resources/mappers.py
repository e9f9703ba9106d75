"""protobuf <-> the resources context's bodies: resources, upload and download grants,
download stats and the library's settings."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import msgspec
from google.protobuf.field_mask_pb2 import FieldMask

from wee5.resources.v1 import resources_pb2
from wee5_gateway.api.resources.schemas import (
    DailyDownloads,
    DownloadEntry,
    DownloadLink,
    LibrarySettingsIn,
    LibrarySettingsPatch,
    LibrarySettingsView,
    ResourceCreate,
    ResourceFilters,
    ResourcePage,
    ResourcePatch,
    ResourceStats,
    ResourceView,
    Sort,
    TopResource,
    UploadGrant,
    UploadRequest,
)
from wee5_gateway.core.problems import ProblemError, reply_name
from wee5_kit.proto import EnumCodec, from_timestamp

RESOURCE_TYPES = EnumCodec(resources_pb2.ResourceType)
# Not an `EnumCodec`: the API names the orders as a reader picks them ("newest", "downloads"),
# shorter than the protobuf names (`RESOURCE_ORDER_BY_CREATED_AT_DESC`), and the OpenAPI
# document and its clients use these names.
SORTS: dict[Sort, resources_pb2.ResourceOrderBy.ValueType] = {
    "newest": resources_pb2.RESOURCE_ORDER_BY_CREATED_AT_DESC,
    "updated": resources_pb2.RESOURCE_ORDER_BY_UPDATED_AT_DESC,
    "downloads": resources_pb2.RESOURCE_ORDER_BY_DOWNLOAD_COUNT_DESC,
    "title": resources_pb2.RESOURCE_ORDER_BY_TITLE_ASC,
    "relevance": resources_pb2.RESOURCE_ORDER_BY_RELEVANCE,
}
# What the audit log keeps of a resource (never URLs or storage keys).
AUDITED = ("title", "category", "type", "featured", "tags", "file_name")


def resource_view(message: resources_pb2.Resource) -> ResourceView:
    return ResourceView(
        id=uuid.UUID(message.id),
        community_id=message.community_id,
        title=message.title,
        description=message.description,
        category=message.category,
        type=reply_name(RESOURCE_TYPES, message.type),  # type: ignore[arg-type]
        featured=message.featured,
        tags=list(message.tags),
        file_name=message.file_name,
        size_bytes=message.size_bytes,
        content_type=message.content_type,
        checksum_sha256=message.checksum_sha256,
        download_count=message.download_count,
        created_at=from_timestamp(message.created_at),
        updated_at=from_timestamp(message.updated_at),
    )


def resource_page(reply: resources_pb2.ListResourcesResponse) -> ResourcePage:
    return ResourcePage(
        resources=[resource_view(resource) for resource in reply.resources],
        next_cursor=reply.next_page_token or None,
        total_count=reply.total_count,
    )


def list_request(
    community_id: str, filters: ResourceFilters, limit: int, cursor: str | None
) -> resources_pb2.ListResourcesRequest:
    request = resources_pb2.ListResourcesRequest(
        community_id=community_id,
        category=filters.category or "",
        type=RESOURCE_TYPES.value(filters.type)
        if filters.type
        else resources_pb2.RESOURCE_TYPE_UNSPECIFIED,
        tag=filters.tag or "",
        query=filters.q or "",
        order_by=SORTS[filters.sort],
        page_size=limit,
        page_token=cursor or "",
    )
    if filters.featured is not None:
        request.featured = filters.featured
    return request


def audited(message: resources_pb2.Resource) -> dict[str, Any]:
    """A resource as the audit log keeps it."""
    state: dict[str, Any] = {name: getattr(message, name) for name in AUDITED}
    state["type"] = RESOURCE_TYPES.name_or_none(message.type) or "unknown"
    state["tags"] = list(message.tags)
    return state


def create_request(
    community_id: str, body: ResourceCreate, created_by: str
) -> resources_pb2.CreateResourceRequest:
    return resources_pb2.CreateResourceRequest(
        community_id=community_id,
        storage_key=body.storage_key,
        title=body.title,
        description=body.description,
        category=body.category,
        type=RESOURCE_TYPES.value(body.type),
        featured=body.featured,
        tags=body.tags,
        file_name=body.file_name or "",
        checksum_sha256=body.checksum_sha256 or "",
        created_by=created_by,
    )


def update_request(
    community_id: str, resource_id: uuid.UUID, body: ResourcePatch
) -> resources_pb2.UpdateResourceRequest:
    """Only the fields sent change (the update mask names them); nothing sent is a 400."""
    changes = {
        name: value
        for name in body.__struct_fields__
        if (value := getattr(body, name)) is not msgspec.UNSET
    }
    if not changes:
        raise ProblemError("send at least one field to change")
    message = resources_pb2.Resource(id=str(resource_id))
    for name, value in changes.items():
        if name == "type":
            message.type = RESOURCE_TYPES.value(value)
        elif name == "tags":
            message.tags.extend(value)
        else:
            setattr(message, name, value)
    return resources_pb2.UpdateResourceRequest(
        community_id=community_id, resource=message, update_mask=FieldMask(paths=sorted(changes))
    )


def audited_update(
    reply: resources_pb2.UpdateResourceResponse, paths: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The audited fields an update changed: (before, after)."""
    old, new = audited(reply.previous), audited(reply.resource)
    return (
        {name: old[name] for name in paths if name in old},
        {name: new[name] for name in paths if name in new},
    )


def upload_request(
    community_id: str, body: UploadRequest, created_by: str
) -> resources_pb2.CreateUploadUrlRequest:
    return resources_pb2.CreateUploadUrlRequest(
        community_id=community_id,
        file_name=body.file_name,
        content_type=body.content_type,
        max_size_bytes=body.size_bytes,
        created_by=created_by,
    )


def upload_grant(reply: resources_pb2.CreateUploadUrlResponse, size_bytes: int) -> UploadGrant:
    return UploadGrant(
        url=reply.url,
        method=reply.method,
        headers=dict(reply.headers),
        storage_key=reply.storage_key,
        expires_at=from_timestamp(reply.expires_at),
        max_size_bytes=size_bytes,
    )


def download_link(reply: resources_pb2.CreateDownloadUrlResponse) -> DownloadLink:
    return DownloadLink(
        url=reply.url,
        method="GET",
        expires_at=from_timestamp(reply.expires_at),
        counted=reply.counted,
        first_by_member=reply.first_by_member,
    )


def resource_stats(
    community_id: str,
    window: tuple[datetime | None, datetime | None],
    reply: resources_pb2.GetResourceStatsResponse,
) -> ResourceStats:
    since, until = window
    return ResourceStats(
        community_id=community_id,
        since=since,
        until=until,
        total_downloads=reply.total_downloads,
        unique_downloaders=reply.unique_downloaders,
        per_day=[
            DailyDownloads(day=date.fromisoformat(day.date), downloads=day.count)
            for day in reply.downloads_per_day
        ],
        top_resources=[
            TopResource(
                resource_id=uuid.UUID(top_resource.resource_id),
                title=top_resource.title,
                downloads=top_resource.count,
            )
            for top_resource in reply.top_resources
        ],
        downloads=[
            DownloadEntry(
                resource_id=uuid.UUID(entry.resource_id),
                user_id=entry.user_id,
                downloaded_at=from_timestamp(entry.downloaded_at),
            )
            for entry in reply.recent_downloads
        ],
        next_cursor=reply.next_page_token or None,
    )


def settings_view(message: resources_pb2.LibrarySettings) -> LibrarySettingsView:
    return LibrarySettingsView(
        community_id=message.community_id,
        enabled=message.enabled,
        categories=list(message.categories),
    )


def settings_update(
    community_id: str, body: LibrarySettingsPatch | LibrarySettingsIn
) -> resources_pb2.UpdateLibrarySettingsRequest:
    """Only the settings sent change (a PUT sends them all), each in its own column, so two
    admins changing different settings at once both win; nothing sent is a 400."""
    settings = resources_pb2.LibrarySettings(community_id=community_id)
    paths = []
    if body.enabled is not msgspec.UNSET:
        settings.enabled = body.enabled
        paths.append("enabled")
    if body.categories is not msgspec.UNSET:
        settings.categories.extend(body.categories)
        paths.append("categories")
    if not paths:
        raise ProblemError("send enabled and/or categories")
    return resources_pb2.UpdateLibrarySettingsRequest(
        settings=settings, update_mask=FieldMask(paths=paths)
    )
