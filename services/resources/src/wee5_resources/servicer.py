"""ResourcesService over gRPC: protobuf in, the rules in service.py, protobuf out. Commits here."""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.resources.v1 import resources_pb2, resources_pb2_grpc
from wee5_kit.logging import bound_contextvars
from wee5_kit.proto import to_timestamp
from wee5_kit.uow import unit_of_work
from wee5_resources.errors import InvalidResource
from wee5_resources.mappers import (
    library_message,
    order_from_proto,
    previous_message,
    resource_changes,
    resource_draft,
    resource_filter,
    resource_message,
    stats_message,
    time_field,
)
from wee5_resources.membership import Memberships
from wee5_resources.service import ResourcesService
from wee5_resources.storage import Downloader

Context = grpc.aio.ServicerContext[Any, Any]


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
        return resources_pb2.GetLibrarySettingsResponse(settings=library_message(library))

    async def UpdateLibrarySettings(
        self, request: resources_pb2.UpdateLibrarySettingsRequest, context: Context
    ) -> resources_pb2.UpdateLibrarySettingsResponse:
        paths = set(request.update_mask.paths)
        unknown = paths - {"enabled", "categories"}
        if not paths or unknown:
            raise InvalidResource("update_mask must name enabled and/or categories")
        settings = request.settings
        with bound_contextvars(community_id=settings.community_id):
            async with unit_of_work(self.sessionmaker) as uow:
                before, after = await self.service.update_library(
                    uow.session,
                    settings.community_id,
                    enabled=settings.enabled if "enabled" in paths else None,
                    categories=list(settings.categories) if "categories" in paths else None,
                )
        return resources_pb2.UpdateLibrarySettingsResponse(
            settings=library_message(after), previous=library_message(before)
        )

    async def CreateUploadUrl(
        self, request: resources_pb2.CreateUploadUrlRequest, context: Context
    ) -> resources_pb2.CreateUploadUrlResponse:
        with bound_contextvars(community_id=request.community_id):
            async with unit_of_work(self.sessionmaker) as uow:
                key, signed = await self.service.create_upload(
                    uow.session,
                    request.community_id,
                    file_name=request.file_name,
                    content_type=request.content_type,
                    max_size=request.max_size_bytes,
                    created_by=request.created_by,
                )
        return resources_pb2.CreateUploadUrlResponse(
            url=signed.url,
            storage_key=key,
            expires_at=to_timestamp(signed.expires_at),
            method=signed.method,
            headers=signed.headers,
        )

    async def CreateResource(
        self, request: resources_pb2.CreateResourceRequest, context: Context
    ) -> resources_pb2.CreateResourceResponse:
        draft = resource_draft(request)
        with bound_contextvars(community_id=request.community_id):
            async with unit_of_work(self.sessionmaker) as uow:
                resource = await self.service.create_resource(uow.session, draft)
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
        order = order_from_proto(request.order_by)
        where = resource_filter(request)
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
        changes = resource_changes(request)
        with bound_contextvars(community_id=request.community_id):
            async with unit_of_work(self.sessionmaker) as uow:
                resource, before = await self.service.update(
                    uow.session, request.community_id, request.resource.id, changes
                )
                previous = previous_message(resource, before)
        return resources_pb2.UpdateResourceResponse(
            resource=resource_message(resource), previous=previous
        )

    async def DeleteResource(
        self, request: resources_pb2.DeleteResourceRequest, context: Context
    ) -> resources_pb2.DeleteResourceResponse:
        with bound_contextvars(community_id=request.community_id):
            async with unit_of_work(self.sessionmaker) as uow:
                resource = await self.service.delete(
                    uow.session, request.community_id, request.resource_id
                )
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
                async with unit_of_work(self.sessionmaker) as uow:
                    outcome = await self.service.record_download(
                        uow.session, resource, request.user_id, request.idempotency_key
                    )
                counted, first = outcome.counted, outcome.first_by_member
            signed = await self.service.download_url(
                resource, Downloader(request.community_id, request.user_id, request.is_admin)
            )
        return resources_pb2.CreateDownloadUrlResponse(
            url=signed.url,
            expires_at=to_timestamp(signed.expires_at),
            counted=counted,
            first_by_member=first,
        )

    async def GetResourceStats(
        self, request: resources_pb2.GetResourceStatsRequest, context: Context
    ) -> resources_pb2.GetResourceStatsResponse:
        start, end = time_field(request, "start_time"), time_field(request, "end_time")
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
        return stats_message(stats)
