"""Protobuf <-> the resource library's domain: what the servicer reads from requests and writes
into responses. Enum names come from the enums' descriptors (`wee5_kit.proto.EnumCodec`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.message import Message

from wee5.resources.v1 import resources_pb2
from wee5_kit.proto import EnumCodec, timestamp_field, to_timestamp
from wee5_resources.errors import InvalidResource
from wee5_resources.models import Resource
from wee5_resources.repository import ResourceFilter
from wee5_resources.service import (
    LibraryConfig,
    ResourceChanges,
    ResourceDraft,
    Stats,
    plain_text,
)

RESOURCE_TYPES = EnumCodec(resources_pb2.ResourceType)
RESOURCE_ORDERS = EnumCodec(resources_pb2.ResourceOrderBy, what="order_by")
# Fields an update mask may name that are copied from the message as they are.
_PLAIN_FIELDS = ("title", "description", "category", "featured", "file_name")


def type_from_proto(value: int, *, required: bool) -> str | None:
    if value == resources_pb2.RESOURCE_TYPE_UNSPECIFIED and not required:
        return None
    name = RESOURCE_TYPES.name_or_none(value)
    if name is None:
        *others, last = RESOURCE_TYPES.names
        raise InvalidResource(f"type must be {', '.join(others)} or {last}")
    return name


def order_from_proto(value: int) -> str:
    """The column ListResources sorts by. The enum's names add the direction
    (`CREATED_AT_DESC`), which is fixed per column, so it is dropped; unset is newest first."""
    if value == resources_pb2.RESOURCE_ORDER_BY_UNSPECIFIED:
        return "created_at"
    name = RESOURCE_ORDERS.name_or_none(value)
    if name is None:
        raise InvalidResource("order_by is not a known order")
    return name.removesuffix("_desc").removesuffix("_asc")


def time_field(message: Message, name: str) -> datetime | None:
    try:
        return timestamp_field(message, name)
    except (OverflowError, ValueError):
        raise InvalidResource(f"{name} must fall in the years 1 to 9999") from None


def resource_message(resource: Resource) -> resources_pb2.Resource:
    return resources_pb2.Resource(
        id=str(resource.id),
        community_id=resource.community_id,
        title=resource.title,
        description=resource.description,
        category=resource.category,
        type=RESOURCE_TYPES.value(resource.type),
        featured=resource.featured,
        tags=list(resource.tags),
        file_name=resource.file_name,
        size_bytes=resource.size_bytes,
        content_type=resource.content_type,
        checksum_sha256=resource.checksum_sha256,
        download_count=resource.download_count,
        created_at=to_timestamp(resource.created_at),
        updated_at=to_timestamp(resource.updated_at),
        storage_key=resource.storage_key,
        created_by=resource.created_by,
    )


def previous_message(resource: Resource, before: dict[str, Any]) -> resources_pb2.Resource:
    """The resource as it was before an update changed the fields in `before`."""
    previous = resource_message(resource)
    for name, value in before.items():
        if name == "type":
            previous.type = RESOURCE_TYPES.value(value)
        elif name == "tags":
            del previous.tags[:]
            previous.tags.extend(value)
        else:
            setattr(previous, name, value)
    return previous


def library_message(library: LibraryConfig) -> resources_pb2.LibrarySettings:
    return resources_pb2.LibrarySettings(
        community_id=library.community_id,
        enabled=library.enabled,
        categories=list(library.categories),
    )


def resource_draft(request: resources_pb2.CreateResourceRequest) -> ResourceDraft:
    return ResourceDraft(
        community_id=request.community_id,
        storage_key=request.storage_key,
        title=request.title,
        description=request.description,
        category=request.category,
        type=type_from_proto(request.type, required=True) or "",
        featured=request.featured,
        tags=list(request.tags),
        file_name=request.file_name,
        content_type=request.content_type,
        checksum_sha256=request.checksum_sha256,
        created_by=request.created_by,
    )


def resource_filter(request: resources_pb2.ListResourcesRequest) -> ResourceFilter:
    return ResourceFilter(
        community_id=request.community_id,
        category=plain_text(request.category, "category") or None,
        type=type_from_proto(request.type, required=False),
        featured=request.featured if request.HasField("featured") else None,
        tag=" ".join(plain_text(request.tag, "tag").lower().split()) or None,
        query=plain_text(request.query, "query").strip() or None,
    )


def resource_changes(request: resources_pb2.UpdateResourceRequest) -> ResourceChanges:
    message = request.resource
    changes = ResourceChanges()
    for path in request.update_mask.paths:
        if path == "type":
            changes.fields[path] = type_from_proto(message.type, required=True)
        elif path == "tags":
            changes.fields[path] = list(message.tags)
        elif path in _PLAIN_FIELDS:
            changes.fields[path] = getattr(message, path)
        else:
            changes.fields[path] = None  # refused by the service, naming the field
    return changes


def stats_message(stats: Stats) -> resources_pb2.GetResourceStatsResponse:
    return resources_pb2.GetResourceStatsResponse(
        downloads_per_day=[
            resources_pb2.DailyDownloads(date=day.day.isoformat(), count=day.count)
            for day in stats.days
        ],
        top_resources=[
            resources_pb2.ResourceDownloadCount(
                resource_id=str(top.resource_id), title=top.title, count=top.count
            )
            for top in stats.top
        ],
        recent_downloads=[
            resources_pb2.DownloadRecord(
                resource_id=str(row.resource_id),
                user_id=row.user_id,
                downloaded_at=to_timestamp(row.downloaded_at),
            )
            for row in stats.recent
        ],
        next_page_token=stats.next_token,
        total_downloads=stats.total,
        unique_downloaders=stats.unique,
    )
