"""What the JSON routes and the pages both do with the resource library: each downstream call
with its request, the answer's mapping and, for admins' writes, the audit entry, once."""

from __future__ import annotations

import uuid
from datetime import datetime

from wee5.resources.v1 import resources_pb2
from wee5_gateway.api.resources.mappers import (
    audited,
    audited_update,
    create_request,
    download_link,
    list_request,
    resource_page,
    resource_stats,
    resource_view,
    settings_view,
    update_request,
    upload_grant,
    upload_request,
)
from wee5_gateway.api.resources.schemas import (
    DownloadLink,
    LibrarySettingsView,
    ResourceCreate,
    ResourceFilters,
    ResourcePage,
    ResourcePatch,
    ResourceStats,
    ResourceView,
    UploadGrant,
    UploadRequest,
)
from wee5_gateway.core.access import Access, Principal, Role
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.params import timestamp_param
from wee5_gateway.core.problems import Forbidden

# Creating a resource reads the whole stored file (its SHA-256): allow far more than the
# default deadline, so a large video is not cut off (a retry returns the same resource).
VERIFY_DEADLINE_SECONDS = 300.0


def actor(principal: Principal) -> str:
    if principal.whop_user_id is not None:
        return f"whop:{principal.whop_user_id}"
    return f"account:{principal.account_id}"


def downloader(access: Access, is_admin: bool) -> str:
    """The member id downloads are counted (and points earned) under."""
    if access.member_user_id:
        return access.member_user_id
    if is_admin:
        return actor(access.principal)
    raise Forbidden(
        "your account is not linked to a member id in this community yet; ask an admin to "
        "link it before downloading"
    )


async def list_resources(
    downstream: Downstream,
    community_id: str,
    filters: ResourceFilters,
    limit: int = 20,
    cursor: str | None = None,
) -> ResourcePage:
    request = list_request(community_id, filters, limit, cursor)
    return resource_page(await downstream.resources.ListResources(request))


async def get_resource(
    downstream: Downstream, community_id: str, resource_id: uuid.UUID
) -> ResourceView:
    reply = await downstream.resources.GetResource(
        resources_pb2.GetResourceRequest(community_id=community_id, resource_id=str(resource_id))
    )
    return resource_view(reply.resource)


async def library_settings(downstream: Downstream, community_id: str) -> LibrarySettingsView:
    reply = await downstream.resources.GetLibrarySettings(
        resources_pb2.GetLibrarySettingsRequest(community_id=community_id)
    )
    return settings_view(reply.settings)


async def create_upload(
    downstream: Downstream, principal: Principal, community_id: str, body: UploadRequest
) -> UploadGrant:
    reply = await downstream.resources.CreateUploadUrl(
        upload_request(community_id, body, actor(principal))
    )
    return upload_grant(reply, body.size_bytes)


async def create_resource(
    downstream: Downstream,
    access: Access,
    audit: Auditor,
    community_id: str,
    body: ResourceCreate,
) -> ResourceView:
    """Publish an uploaded file (checked by the service first), audited."""
    async with audit.change("resource.created") as change:
        reply = await downstream.resources.CreateResource(
            create_request(community_id, body, actor(access.principal)),
            timeout=VERIFY_DEADLINE_SECONDS,
        )
        change.done(after=audited(reply.resource), target=f"resource:{reply.resource.id}")
    return resource_view(reply.resource)


async def update_resource(
    downstream: Downstream,
    audit: Auditor,
    community_id: str,
    resource_id: uuid.UUID,
    body: ResourcePatch,
) -> ResourceView:
    request = update_request(community_id, resource_id, body)
    async with audit.change("resource.updated", target=f"resource:{resource_id}") as change:
        reply = await downstream.resources.UpdateResource(request)
        before, after = audited_update(reply, list(request.update_mask.paths))
        change.done(before=before, after=after)
    return resource_view(reply.resource)


async def delete_resource(
    downstream: Downstream, audit: Auditor, community_id: str, resource_id: uuid.UUID
) -> None:
    async with audit.change("resource.deleted", target=f"resource:{resource_id}") as change:
        reply = await downstream.resources.DeleteResource(
            resources_pb2.DeleteResourceRequest(
                community_id=community_id, resource_id=str(resource_id)
            )
        )
        change.done(before=audited(reply.resource))


async def download(
    downstream: Downstream,
    access: Access,
    community_id: str,
    resource_id: uuid.UUID,
    idempotency_key: str | None = None,
) -> DownloadLink:
    """A signed download URL: members need an active membership (the service asks xp) and are
    counted; admins always get one, uncounted."""
    is_admin = access.role is not None and access.role >= Role.ADMIN
    reply = await downstream.resources.CreateDownloadUrl(
        resources_pb2.CreateDownloadUrlRequest(
            community_id=community_id,
            resource_id=str(resource_id),
            user_id=downloader(access, is_admin),
            is_admin=is_admin,
            idempotency_key=idempotency_key or "",
        )
    )
    return download_link(reply)


async def stats(
    downstream: Downstream,
    community_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    resource_id: uuid.UUID | None = None,
    top: int = 10,
    limit: int = 50,
    cursor: str | None = None,
) -> ResourceStats:
    request = resources_pb2.GetResourceStatsRequest(
        community_id=community_id,
        resource_id=str(resource_id) if resource_id else "",
        top_n=top,
        page_size=limit,
        page_token=cursor or "",
    )
    if since is not None:
        request.start_time.CopyFrom(timestamp_param(since, "since"))
    if until is not None:
        request.end_time.CopyFrom(timestamp_param(until, "until"))
    reply = await downstream.resources.GetResourceStats(request)
    return resource_stats(community_id, (since, until), reply)
