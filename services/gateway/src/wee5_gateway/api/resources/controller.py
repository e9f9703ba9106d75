"""Routes of the resource library. Members read and download; admins upload, edit, delete and
see stats (every admin write is audited). Uploads and downloads go straight between the
client and storage over signed URLs: the gateway hands out URLs, never bytes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from wee5.resources.v1 import resources_pb2
from wee5_gateway.api.resources.schemas import (
    DailyDownloads,
    DownloadEntry,
    DownloadLink,
    LibrarySettingsPatch,
    LibrarySettingsView,
    ResourceCreate,
    ResourcePage,
    ResourcePatch,
    ResourceStats,
    ResourceType,
    ResourceView,
    Sort,
    TopResource,
    UploadGrant,
    UploadRequest,
)
from wee5_gateway.core.access import Access, Action, Principal, Role, requires
from wee5_gateway.core.deps import (
    ACCOUNTS,
    COMMUNITY,
    AccessDep,
    AuditorDep,
    DownstreamDep,
)
from wee5_gateway.core.problems import Forbidden, ProblemError, problem_responses

TYPES: dict[str, resources_pb2.ResourceType.ValueType] = {
    "template": resources_pb2.RESOURCE_TYPE_TEMPLATE,
    "sop": resources_pb2.RESOURCE_TYPE_SOP,
    "playbook": resources_pb2.RESOURCE_TYPE_PLAYBOOK,
    "course": resources_pb2.RESOURCE_TYPE_COURSE,
    "video": resources_pb2.RESOURCE_TYPE_VIDEO,
}
TYPE_NAMES = {value: name for name, value in TYPES.items()}
SORTS: dict[str, resources_pb2.ResourceOrderBy.ValueType] = {
    "newest": resources_pb2.RESOURCE_ORDER_BY_CREATED_AT_DESC,
    "updated": resources_pb2.RESOURCE_ORDER_BY_UPDATED_AT_DESC,
    "downloads": resources_pb2.RESOURCE_ORDER_BY_DOWNLOAD_COUNT_DESC,
    "title": resources_pb2.RESOURCE_ORDER_BY_TITLE_ASC,
    "relevance": resources_pb2.RESOURCE_ORDER_BY_RELEVANCE,
}
# Creating a resource reads the whole stored file (its SHA-256): allow far more than the
# default deadline, so a large video is not cut off (a retry returns the same resource).
VERIFY_DEADLINE_SECONDS = 300.0
# What the audit log keeps of a resource (never URLs or storage keys).
AUDITED = ("title", "category", "type", "featured", "tags", "file_name")


def _datetime(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _timestamp(value: datetime, name: str) -> Timestamp:
    stamp = Timestamp()
    try:
        stamp.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    except (OverflowError, ValueError):
        raise ProblemError(f"{name} must be a time between the years 1 and 9999") from None
    return stamp


def resource_view(message: resources_pb2.Resource) -> ResourceView:
    return ResourceView(
        id=uuid.UUID(message.id),
        community_id=message.community_id,
        title=message.title,
        description=message.description,
        category=message.category,
        type=TYPE_NAMES[message.type],  # type: ignore[arg-type]
        featured=message.featured,
        tags=list(message.tags),
        file_name=message.file_name,
        size_bytes=message.size_bytes,
        content_type=message.content_type,
        checksum_sha256=message.checksum_sha256,
        download_count=message.download_count,
        created_at=_datetime(message.created_at),
        updated_at=_datetime(message.updated_at),
    )


def _audited(message: resources_pb2.Resource) -> dict[str, Any]:
    state: dict[str, Any] = {name: getattr(message, name) for name in AUDITED}
    state["type"] = TYPE_NAMES.get(message.type, "unknown")
    state["tags"] = list(message.tags)
    return state


def _actor(principal: Principal) -> str:
    return f"account:{principal.account_id}"


class ResourcesController(Controller):
    path = f"{COMMUNITY}/resources"
    tags = ["resources"]
    security = ACCOUNTS

    @get(
        "/",
        opt=requires(Action.READ_RESOURCES),
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
        category: Annotated[str | None, QueryParameter(max_length=64)] = None,
        type: FromQuery[ResourceType | None] = None,
        featured: FromQuery[bool | None] = None,
        tag: Annotated[str | None, QueryParameter(max_length=40)] = None,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        sort: FromQuery[Sort] = "newest",
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
    ) -> ResourcePage:
        request = resources_pb2.ListResourcesRequest(
            community_id=community_id,
            category=category or "",
            type=TYPES[type] if type else resources_pb2.RESOURCE_TYPE_UNSPECIFIED,
            tag=tag or "",
            query=q or "",
            order_by=SORTS[sort],
            page_size=limit,
            page_token=cursor or "",
        )
        if featured is not None:
            request.featured = featured
        reply = await downstream.resources.ListResources(request)
        return ResourcePage(
            resources=[resource_view(resource) for resource in reply.resources],
            next_cursor=reply.next_page_token or None,
            total_count=reply.total_count,
        )

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
        data: JSONBody[UploadRequest],
        principal: NamedDependency[Principal],
        downstream: DownstreamDep,
    ) -> UploadGrant:
        reply = await downstream.resources.CreateUploadUrl(
            resources_pb2.CreateUploadUrlRequest(
                community_id=community_id,
                file_name=data.file_name,
                content_type=data.content_type,
                max_size_bytes=data.size_bytes,
                created_by=_actor(principal),
            )
        )
        return UploadGrant(
            url=reply.url,
            method=reply.method,
            headers=dict(reply.headers),
            storage_key=reply.storage_key,
            expires_at=_datetime(reply.expires_at),
            max_size_bytes=data.size_bytes,
        )

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
        data: JSONBody[ResourceCreate],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> ResourceView:
        async with audit.change("resource.created") as change:
            reply = await downstream.resources.CreateResource(
                resources_pb2.CreateResourceRequest(
                    community_id=community_id,
                    storage_key=data.storage_key,
                    title=data.title,
                    description=data.description,
                    category=data.category,
                    type=TYPES[data.type],
                    featured=data.featured,
                    tags=data.tags,
                    file_name=data.file_name or "",
                    checksum_sha256=data.checksum_sha256 or "",
                    created_by=_actor(access.principal),
                ),
                timeout=VERIFY_DEADLINE_SECONDS,
            )
            change.done(after=_audited(reply.resource), target=f"resource:{reply.resource.id}")
        return resource_view(reply.resource)

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
        request = resources_pb2.GetResourceStatsRequest(
            community_id=community_id,
            resource_id=str(resource_id) if resource_id else "",
            top_n=top,
            page_size=limit,
            page_token=cursor or "",
        )
        if since is not None:
            request.start_time.CopyFrom(_timestamp(since, "since"))
        if until is not None:
            request.end_time.CopyFrom(_timestamp(until, "until"))
        reply = await downstream.resources.GetResourceStats(request)
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
                    downloaded_at=_datetime(entry.downloaded_at),
                )
                for entry in reply.recent_downloads
            ],
            next_cursor=reply.next_page_token or None,
        )

    @get(
        "/{resource_id:uuid}",
        opt=requires(Action.READ_RESOURCES),
        operation_id="getResource",
        summary="One resource",
        responses=problem_responses(401, 403, 404, 409, 503, 504),
    )
    async def get_resource(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        downstream: DownstreamDep,
    ) -> ResourceView:
        reply = await downstream.resources.GetResource(
            resources_pb2.GetResourceRequest(
                community_id=community_id, resource_id=str(resource_id)
            )
        )
        return resource_view(reply.resource)

    @patch(
        "/{resource_id:uuid}",
        opt=requires(Action.MANAGE_RESOURCES),
        operation_id="updateResource",
        summary="Change a resource's details; only the fields sent change (admins; audited)",
        responses=problem_responses(400, 401, 403, 404, 409, 503, 504),
    )
    async def update_resource(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        data: JSONBody[ResourcePatch],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> ResourceView:
        changes = {
            name: value
            for name in data.__struct_fields__
            if (value := getattr(data, name)) is not msgspec.UNSET
        }
        if not changes:
            raise ProblemError("send at least one field to change")
        message = resources_pb2.Resource(id=str(resource_id))
        for name, value in changes.items():
            if name == "type":
                message.type = TYPES[value]
            elif name == "tags":
                message.tags.extend(value)
            else:
                setattr(message, name, value)
        async with audit.change("resource.updated", target=f"resource:{resource_id}") as change:
            reply = await downstream.resources.UpdateResource(
                resources_pb2.UpdateResourceRequest(
                    community_id=community_id,
                    resource=message,
                    update_mask=FieldMask(paths=sorted(changes)),
                )
            )
            old, new = _audited(reply.previous), _audited(reply.resource)
            change.done(
                before={name: old[name] for name in changes if name in old},
                after={name: new[name] for name in changes if name in new},
            )
        return resource_view(reply.resource)

    @delete(
        "/{resource_id:uuid}",
        opt=requires(Action.MANAGE_RESOURCES),
        operation_id="deleteResource",
        summary="Delete a resource and its stored file (admins; audited)",
        responses=problem_responses(401, 403, 404, 409, 503, 504),
    )
    async def delete_resource(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> None:
        async with audit.change("resource.deleted", target=f"resource:{resource_id}") as change:
            reply = await downstream.resources.DeleteResource(
                resources_pb2.DeleteResourceRequest(
                    community_id=community_id, resource_id=str(resource_id)
                )
            )
            change.done(before=_audited(reply.resource))

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
        is_admin = access.role is not None and access.role >= Role.ADMIN
        reply = await downstream.resources.CreateDownloadUrl(
            resources_pb2.CreateDownloadUrlRequest(
                community_id=community_id,
                resource_id=str(resource_id),
                user_id=_downloader(access, is_admin),
                is_admin=is_admin,
                idempotency_key=idempotency_key or "",
            )
        )
        return DownloadLink(
            url=reply.url,
            method="GET",
            expires_at=_datetime(reply.expires_at),
            counted=reply.counted,
            first_by_member=reply.first_by_member,
        )


def _downloader(access: Access, is_admin: bool) -> str:
    """The member id downloads are counted (and points earned) under."""
    if access.member_user_id:
        return access.member_user_id
    if is_admin:
        return _actor(access.principal)
    raise Forbidden(
        "your account is not linked to a member id in this community yet; ask an admin to "
        "link it before downloading"
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
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_settings(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
    ) -> LibrarySettingsView:
        reply = await downstream.resources.GetLibrarySettings(
            resources_pb2.GetLibrarySettingsRequest(community_id=community_id)
        )
        return _settings_view(reply.settings)

    @patch(
        "/",
        opt=requires(Action.MANAGE_RESOURCES),
        operation_id="updateResourceSettings",
        summary="Turn the library on or off and set its categories (admins; audited)",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def update_settings(
        self,
        community_id: FromPath[str],
        data: JSONBody[LibrarySettingsPatch],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> LibrarySettingsView:
        settings = resources_pb2.LibrarySettings(community_id=community_id)
        paths = []
        if data.enabled is not msgspec.UNSET:
            settings.enabled = data.enabled
            paths.append("enabled")
        if data.categories is not msgspec.UNSET:
            settings.categories.extend(data.categories)
            paths.append("categories")
        if not paths:
            raise ProblemError("send enabled and/or categories")
        async with audit.change(
            "resource_settings.changed", target=f"community:{community_id}"
        ) as change:
            reply = await downstream.resources.UpdateLibrarySettings(
                resources_pb2.UpdateLibrarySettingsRequest(
                    settings=settings, update_mask=FieldMask(paths=paths)
                )
            )
            change.done(
                before=msgspec.to_builtins(_settings_view(reply.previous)),
                after=msgspec.to_builtins(_settings_view(reply.settings)),
            )
        return _settings_view(reply.settings)


def _settings_view(message: resources_pb2.LibrarySettings) -> LibrarySettingsView:
    return LibrarySettingsView(
        community_id=message.community_id,
        enabled=message.enabled,
        categories=list(message.categories),
    )
