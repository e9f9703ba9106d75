"""ResourcesService over gRPC: protobuf in, the rules in service.py, protobuf out. Commits here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.resources.v1 import resources_pb2, resources_pb2_grpc
from wee5_kit.logging import bound_contextvars
from wee5_resources.errors import InvalidResource
from wee5_resources.membership import Memberships
from wee5_resources.models import Resource
from wee5_resources.repository import ResourceFilter
from wee5_resources.service import (
    LibraryConfig,
    ResourceChanges,
    ResourceDraft,
    ResourcesService,
    plain_text,
)

Context = grpc.aio.ServicerContext[Any, Any]

TYPES: dict[int, str] = {
    resources_pb2.RESOURCE_TYPE_TEMPLATE: "template",
    resources_pb2.RESOURCE_TYPE_SOP: "sop",
    resources_pb2.RESOURCE_TYPE_PLAYBOOK: "playbook",
    resources_pb2.RESOURCE_TYPE_COURSE: "course",
    resources_pb2.RESOURCE_TYPE_VIDEO: "video",
}
TYPE_ENUMS = {name: value for value, name in TYPES.items()}
ORDERS: dict[int, str] = {
    resources_pb2.RESOURCE_ORDER_BY_UNSPECIFIED: "created_at",
    resources_pb2.RESOURCE_ORDER_BY_CREATED_AT_DESC: "created_at",
    resources_pb2.RESOURCE_ORDER_BY_UPDATED_AT_DESC: "updated_at",
    resources_pb2.RESOURCE_ORDER_BY_DOWNLOAD_COUNT_DESC: "download_count",
    resources_pb2.RESOURCE_ORDER_BY_TITLE_ASC: "title",
    resources_pb2.RESOURCE_ORDER_BY_RELEVANCE: "relevance",
}


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _time(stamp: Timestamp, name: str) -> datetime:
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (OverflowError, ValueError):
        raise InvalidResource(f"{name} must fall in the years 1 to 9999") from None


def resource_message(resource: Resource) -> resources_pb2.Resource:
    return resources_pb2.Resource(
        id=str(resource.id),
        community_id=resource.community_id,
        title=resource.title,
        description=resource.description,
        category=resource.category,
        type=TYPE_ENUMS[resource.type],  # type: ignore[arg-type]
        featured=resource.featured,
        tags=list(resource.tags),
        file_name=resource.file_name,
        size_bytes=resource.size_bytes,
        content_type=resource.content_type,
        checksum_sha256=resource.checksum_sha256,
        download_count=resource.download_count,
        created_at=_timestamp(resource.created_at),
        updated_at=_timestamp(resource.updated_at),
        storage_key=resource.storage_key,
        created_by=resource.created_by,
    )


def _library_message(library: LibraryConfig) -> resources_pb2.LibrarySettings:
    return resources_pb2.LibrarySettings(
        community_id=library.community_id,
        enabled=library.enabled,
        categories=list(library.categories),
    )


def _type_name(value: int, *, required: bool) -> str | None:
    if value == resources_pb2.RESOURCE_TYPE_UNSPECIFIED and not required:
        return None
    name = TYPES.get(value)
    if name is None:
        raise InvalidResource("type must be template, sop, playbook, course or video")
    return name


class ResourcesServicer(resources_pb2_grpc.ResourcesServiceServicer):
    def __init__(
        self,
        service: ResourcesService,
        sessionmaker: async_sessionmaker[AsyncSession],
        memberships: Memberships,
    ) -> None:
        self.service = service
        self.sessionmaker = sessionmaker
        self.memberships = memberships

    async def GetLibrarySettings(
        self, request: resources_pb2.GetLibrarySettingsRequest, context: Context
    ) -> resources_pb2.GetLibrarySettingsResponse:
        async with self.sessionmaker() as session:
            library = await self.service.library(session, request.community_id)
        return resources_pb2.GetLibrarySettingsResponse(settings=_library_message(library))

    async def UpdateLibrarySettings(
        self, request: resources_pb2.UpdateLibrarySettingsRequest, context: Context
    ) -> resources_pb2.UpdateLibrarySettingsResponse:
        paths = set(request.update_mask.paths)
        unknown = paths - {"enabled", "categories"}
        if not paths or unknown:
            raise InvalidResource("update_mask must name enabled and/or categories")
        settings = request.settings
        with bound_contextvars(community_id=settings.community_id):
            async with self.sessionmaker.begin() as session:
                before, after = await self.service.update_library(
                    session,
                    settings.community_id,
                    enabled=settings.enabled if "enabled" in paths else None,
                    categories=list(settings.categories) if "categories" in paths else None,
                )
        return resources_pb2.UpdateLibrarySettingsResponse(
            settings=_library_message(after), previous=_library_message(before)
        )

    async def CreateUploadUrl(
        self, request: resources_pb2.CreateUploadUrlRequest, context: Context
    ) -> resources_pb2.CreateUploadUrlResponse:
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker.begin() as session:
                key, signed = await self.service.create_upload(
                    session,
                    request.community_id,
                    file_name=request.file_name,
                    content_type=request.content_type,
                    max_size=request.max_size_bytes,
                    created_by=request.created_by,
                )
        return resources_pb2.CreateUploadUrlResponse(
            url=signed.url,
            storage_key=key,
            expires_at=_timestamp(signed.expires_at),
            method=signed.method,
            headers=signed.headers,
        )

    async def CreateResource(
        self, request: resources_pb2.CreateResourceRequest, context: Context
    ) -> resources_pb2.CreateResourceResponse:
        draft = ResourceDraft(
            community_id=request.community_id,
            storage_key=request.storage_key,
            title=request.title,
            description=request.description,
            category=request.category,
            type=_type_name(request.type, required=True) or "",
            featured=request.featured,
            tags=list(request.tags),
            file_name=request.file_name,
            content_type=request.content_type,
            checksum_sha256=request.checksum_sha256,
            created_by=request.created_by,
        )
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker.begin() as session:
                resource = await self.service.create_resource(session, draft)
        return resources_pb2.CreateResourceResponse(resource=resource_message(resource))

    async def GetResource(
        self, request: resources_pb2.GetResourceRequest, context: Context
    ) -> resources_pb2.GetResourceResponse:
        async with self.sessionmaker() as session:
            resource = await self.service.get(session, request.community_id, request.resource_id)
        return resources_pb2.GetResourceResponse(resource=resource_message(resource))

    async def ListResources(
        self, request: resources_pb2.ListResourcesRequest, context: Context
    ) -> resources_pb2.ListResourcesResponse:
        order = ORDERS.get(request.order_by)
        if order is None:
            raise InvalidResource("order_by is not a known order")
        where = ResourceFilter(
            community_id=request.community_id,
            category=plain_text(request.category, "category") or None,
            type=_type_name(request.type, required=False),
            featured=request.featured if request.HasField("featured") else None,
            tag=" ".join(plain_text(request.tag, "tag").lower().split()) or None,
            query=plain_text(request.query, "query").strip() or None,
        )
        async with self.sessionmaker() as session:
            page = await self.service.list_resources(
                session,
                where,
                order=order,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        return resources_pb2.ListResourcesResponse(
            resources=[resource_message(resource) for resource in page.resources],
            next_page_token=page.next_token,
            total_count=page.total,
        )

    async def UpdateResource(
        self, request: resources_pb2.UpdateResourceRequest, context: Context
    ) -> resources_pb2.UpdateResourceResponse:
        message = request.resource
        changes = ResourceChanges()
        for path in request.update_mask.paths:
            if path == "type":
                changes.fields[path] = _type_name(message.type, required=True)
            elif path == "tags":
                changes.fields[path] = list(message.tags)
            elif path in ("title", "description", "category", "featured", "file_name"):
                changes.fields[path] = getattr(message, path)
            else:
                changes.fields[path] = None  # refused by the service, naming the field
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker.begin() as session:
                resource, before = await self.service.update(
                    session, request.community_id, message.id, changes
                )
                previous = resource_message(resource)
                for name, value in before.items():
                    if name == "type":
                        previous.type = TYPE_ENUMS[value]  # type: ignore[assignment]
                    elif name == "tags":
                        del previous.tags[:]
                        previous.tags.extend(value)
                    else:
                        setattr(previous, name, value)
        return resources_pb2.UpdateResourceResponse(
            resource=resource_message(resource), previous=previous
        )

    async def DeleteResource(
        self, request: resources_pb2.DeleteResourceRequest, context: Context
    ) -> resources_pb2.DeleteResourceResponse:
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker.begin() as session:
                resource = await self.service.delete(
                    session, request.community_id, request.resource_id
                )
            await self.service.delete_object(resource.storage_key)
        return resources_pb2.DeleteResourceResponse(resource=resource_message(resource))

    async def CreateDownloadUrl(
        self, request: resources_pb2.CreateDownloadUrlRequest, context: Context
    ) -> resources_pb2.CreateDownloadUrlResponse:
        if not request.user_id:
            raise InvalidResource("user_id is required")
        if len(request.idempotency_key) > 200:
            raise InvalidResource("idempotency_key has at most 200 characters")
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker() as session:
                resource = await self.service.get(
                    session, request.community_id, request.resource_id
                )
            counted = first = False
            if not request.is_admin:
                await self.memberships.require_active(request.community_id, request.user_id)
                async with self.sessionmaker.begin() as session:
                    outcome = await self.service.record_download(
                        session, resource, request.user_id, request.idempotency_key
                    )
                counted, first = outcome.counted, outcome.first_by_member
            signed = await self.service.download_url(resource)
        return resources_pb2.CreateDownloadUrlResponse(
            url=signed.url,
            expires_at=_timestamp(signed.expires_at),
            counted=counted,
            first_by_member=first,
        )

    async def GetResourceStats(
        self, request: resources_pb2.GetResourceStatsRequest, context: Context
    ) -> resources_pb2.GetResourceStatsResponse:
        start = _time(request.start_time, "start_time") if request.HasField("start_time") else None
        end = _time(request.end_time, "end_time") if request.HasField("end_time") else None
        async with self.sessionmaker() as session:
            stats = await self.service.stats(
                session,
                request.community_id,
                start=start,
                end=end,
                resource_id=request.resource_id,
                top_n=request.top_n,
                page_size=request.page_size,
                page_token=request.page_token,
            )
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
                    downloaded_at=_timestamp(row.downloaded_at),
                )
                for row in stats.recent
            ],
            next_page_token=stats.next_token,
            total_downloads=stats.total,
            unique_downloaders=stats.unique,
        )
