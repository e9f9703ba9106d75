"""Routes of the resource library. Members read and download; admins upload, edit, delete and
see stats (every admin write is audited). Uploads and downloads go straight between the
client and storage over signed URLs: the gateway hands out URLs, never bytes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, HeaderParameter, QueryParameter

from wee5.resources.v1 import resources_pb2
from wee5_gateway.api.resources import operations
from wee5_gateway.api.resources.mappers import settings_update, settings_view
from wee5_gateway.api.resources.schemas import (
    DownloadLink,
    LibrarySettingsIn,
    LibrarySettingsPatch,
    LibrarySettingsView,
    ResourceCreate,
    ResourceFilters,
    ResourcePage,
    ResourcePatch,
    ResourceStats,
    ResourceType,
    ResourceView,
    Sort,
    UploadGrant,
    UploadRequest,
)
from wee5_gateway.core.access import Action, Principal, requires
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.deps import (
    ACCOUNTS,
    COMMUNITY,
    AccessDep,
    AuditorDep,
    DownstreamDep,
)
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import problem_responses


def _filters(
    category: Annotated[str | None, QueryParameter(max_length=64)] = None,
    type: FromQuery[ResourceType | None] = None,
    featured: FromQuery[bool | None] = None,
    tag: Annotated[str | None, QueryParameter(max_length=40)] = None,
    q: Annotated[str | None, QueryParameter(max_length=200)] = None,
    sort: FromQuery[Sort] = "newest",
) -> ResourceFilters:
    """The list's filter and order query parameters, read as one."""
    return ResourceFilters(category, type, featured, tag, q, sort)


class ResourcesController(Controller):
    path = f"{COMMUNITY}/resources"
    tags = ["resources"]
    security = ACCOUNTS

    @get(
        "/",
        opt=requires(Action.READ_RESOURCES),
        dependencies={"filters": Provide(_filters, sync_to_thread=False)},
        operation_id="listResources",
        summary="The community's resources, filtered, searched and sorted, a page at a time",
        description=(
            '`q` searches titles and descriptions (English full-text: stems, `"phrases"`, '
            "`-exclusions`). `sort=relevance` needs `q`; without it the newest come first."
        ),
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def list_resources(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
        filters: NamedDependency[ResourceFilters],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    ) -> ResourcePage:
        return await operations.list_resources(downstream, community_id, filters, limit, cursor)

    @post(
        "/uploads",
        opt=requires(Action.MANAGE_RESOURCES),
        operation_id="createResourceUpload",
        summary="A signed URL to upload a file straight to storage (admins), valid one hour",
        description=(
            "Send the file with the returned method and headers to the returned URL, then "
            "create the resource with the storage key. The URL accepts only the declared "
            "content type, and nothing larger than size_bytes."
        ),
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def create_upload(
        self,
        community_id: FromPath[str],
        data: Annotated[
            UploadRequest,
            body_example(
                {
                    "file_name": "cold-email-sop.pdf",
                    "content_type": "application/pdf",
                    "size_bytes": 120000,
                }
            ),
        ],
        principal: NamedDependency[Principal],
        downstream: DownstreamDep,
    ) -> UploadGrant:
        return await operations.create_upload(downstream, principal, community_id, data)

    @post(
        "/",
        opt=requires(Action.MANAGE_RESOURCES),
        operation_id="createResource",
        summary="Publish an uploaded file as a resource (admins; audited)",
        description=(
            "The stored file is checked first: its size within the limit of the upload, its "
            "real type (by content) the declared one, never an executable, and its SHA-256 "
            "the given checksum. A file failing a check is deleted and the answer says why. "
            "Creating again with the same storage key returns the resource already created."
        ),
        responses=problem_responses(400, 401, 403, 404, 409, 503, 504),
    )
    async def create_resource(
        self,
        community_id: FromPath[str],
        data: Annotated[
            ResourceCreate,
            body_example(
                {
                    "storage_key": "<from the upload grant>",
                    "title": "Cold email SOP",
                    "category": "Cold email",
                    "type": "sop",
                    "tags": ["outreach"],
                }
            ),
        ],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> ResourceView:
        return await operations.create_resource(downstream, access, audit, community_id, data)

    @get(
        "/stats",
        opt=requires(Action.READ_RESOURCE_STATS),
        operation_id="getResourceStats",
        summary="Downloads per day, top resources and who downloaded what (admins)",
        description=(
            "The window is [since, until): until defaults to now, since to 30 days before; it "
            "spans at most 366 days. Times without a zone are UTC."
        ),
        responses=problem_responses(400, 401, 403, 404, 409, 503, 504),
    )
    async def stats(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        resource_id: FromQuery[uuid.UUID | None] = None,
        top: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    ) -> ResourceStats:
        return await operations.stats(
            downstream,
            community_id,
            since=since,
            until=until,
            resource_id=resource_id,
            top=top,
            limit=limit,
            cursor=cursor,
        )

    @get(
        "/{resource_id:uuid}",
        opt=requires(Action.READ_RESOURCES),
        operation_id="getResource",
        summary="One resource",
        description="Title, description, category, type, tags, featured flag, file name, size, "
        "content type and checksum, and download count. 409 (`not-possible-now`) while"
        " the library is turned off.",
        responses=problem_responses(401, 403, 404, 409, 503, 504),
    )
    async def get_resource(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        downstream: DownstreamDep,
    ) -> ResourceView:
        return await operations.get_resource(downstream, community_id, resource_id)

    @patch(
        "/{resource_id:uuid}",
        opt=requires(Action.MANAGE_RESOURCES),
        operation_id="updateResource",
        summary="Change a resource's details; only the fields sent change (admins; audited)",
        description="Title, description, category, type, featured flag, tags or file name; fields "
        "left out keep their value. Audited.",
        responses=problem_responses(400, 401, 403, 404, 409, 503, 504),
    )
    async def update_resource(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        data: Annotated[ResourcePatch, body_example({"featured": True})],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> ResourceView:
        return await operations.update_resource(downstream, audit, community_id, resource_id, data)

    @delete(
        "/{resource_id:uuid}",
        opt=requires(Action.MANAGE_RESOURCES),
        operation_id="deleteResource",
        summary="Delete a resource and its stored file (admins; audited)",
        description="The resource disappears from the library and its stored file is deleted. "
        "Audited.",
        responses=problem_responses(401, 403, 404, 409, 503, 504),
    )
    async def delete_resource(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> None:
        await operations.delete_resource(downstream, audit, community_id, resource_id)

    @post(
        "/{resource_id:uuid}/download",
        opt=requires(Action.DOWNLOAD_RESOURCES),
        status_code=200,
        operation_id="downloadResource",
        summary="A signed download URL valid one hour; counts the download (members with an "
        "active membership; admins always, uncounted)",
        description=(
            "Send an `Idempotency-Key` header to retry safely: a repeated key gets a fresh URL "
            "but is counted once. A member's first download of a resource earns points."
        ),
        responses=problem_responses(401, 403, 404, 409, 503, 504),
    )
    async def download(
        self,
        community_id: FromPath[str],
        access: AccessDep,
        resource_id: FromPath[uuid.UUID],
        downstream: DownstreamDep,
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", max_length=200)
        ] = None,
    ) -> DownloadLink:
        return await operations.download(
            downstream, access, community_id, resource_id, idempotency_key
        )


class ResourceSettingsController(Controller):
    path = f"{COMMUNITY}/resource-settings"
    tags = ["resources"]
    security = ACCOUNTS

    @get(
        "/",
        opt=requires(Action.READ_RESOURCES),
        operation_id="getResourceSettings",
        summary="Whether the library is on and its categories",
        description="`enabled` and the categories resources may be filed under (members).",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_settings(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
    ) -> LibrarySettingsView:
        return await operations.library_settings(downstream, community_id)

    @put(
        "/",
        opt=requires(Action.MANAGE_RESOURCES),
        operation_id="replaceResourceSettings",
        summary="Set whether the library is on and its categories (admins; audited)",
        description="Replaces both settings; `PATCH` changes only those it sends.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def replace_settings(
        self,
        community_id: FromPath[str],
        data: Annotated[
            LibrarySettingsIn,
            body_example({"enabled": True, "categories": ["Cold email", "Operations"]}),
        ],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> LibrarySettingsView:
        return await _write_settings(downstream, audit, settings_update(community_id, data))

    @patch(
        "/",
        opt=requires(Action.MANAGE_RESOURCES),
        operation_id="updateResourceSettings",
        summary="Turn the library on or off or set its categories, keeping what is not sent "
        "(admins; audited)",
        description="A JSON merge patch (RFC 7396) of the body `PUT` takes: settings left out "
        "keep their value. Each setting is written on its own, so two admins changing "
        "different settings at the same time both win.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def update_settings(
        self,
        community_id: FromPath[str],
        data: Annotated[LibrarySettingsPatch, body_example({"enabled": False})],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> LibrarySettingsView:
        return await _write_settings(downstream, audit, settings_update(community_id, data))


async def _write_settings(
    downstream: Downstream, audit: Auditor, request: resources_pb2.UpdateLibrarySettingsRequest
) -> LibrarySettingsView:
    async with audit.change(
        "resource_settings.changed", target=f"community:{request.settings.community_id}"
    ) as change:
        reply = await downstream.resources.UpdateLibrarySettings(request)
        change.done(
            before=msgspec.to_builtins(settings_view(reply.previous)),
            after=msgspec.to_builtins(settings_view(reply.settings)),
        )
    return settings_view(reply.settings)
