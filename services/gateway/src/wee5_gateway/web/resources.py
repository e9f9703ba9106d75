"""Resources pages. Members browse the library (category, type and tag filters, search that
updates as they type), open a resource and download it: the page asks for the signed URL
exactly as the JSON route does (active membership, counted once) and sends the browser
there. Admins upload from the browser straight to storage (static/upload.js), publish, edit,
delete and see download stats. Every call is the JSON routes' own
(`api/resources/operations.py`)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

import grpc
import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from wee5_gateway.api.resources import operations
from wee5_gateway.api.resources.schemas import (
    ResourceCreate,
    ResourceFilters,
    ResourcePatch,
    ResourceType,
    ResourceView,
)
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import Access, Action, requires
from wee5_gateway.core.deps import AccessDep, AuditorDep, DownstreamDep, SettingsDep
from wee5_gateway.core.problems import Forbidden
from wee5_gateway.core.protection.headers import PAGE_CSP
from wee5_gateway.web.dashboard import admin_context
from wee5_gateway.web.experience import member_view
from wee5_gateway.web.forms import FieldErrors, parse_form, refused_fields
from wee5_gateway.web.page import Page

AnyRequest = Request[Any, Any, Any]
PAGE_SIZE = 24
RESOURCE_TYPES: tuple[ResourceType, ...] = ("template", "sop", "playbook", "course", "video")
TYPE_LABELS = {
    "template": "Template",
    "sop": "SOP",
    "playbook": "Playbook",
    "course": "Course",
    "video": "Video",
}
# What the upload form accepts (the API's content types).
ACCEPT = ".pdf,.docx,.xlsx,.mp4,.zip"


def size_text(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


def _filters(query: dict[str, str]) -> ResourceFilters:
    """The browse form's query as the API's filters; refusals name the field."""
    q = (query.get("q") or "").strip()
    return parse_form(
        {
            "category": query.get("category") or None,
            "type": query.get("type") or None,
            "tag": (query.get("tag") or "").strip() or None,
            "q": q or None,
            "featured": None,
            "sort": "relevance" if q else "newest",
        },
        ResourceFilters,
    )


def _tags(raw: str) -> list[str]:
    return [tag.strip() for tag in raw.split(",") if tag.strip()]


def _resource_form(form: FormMultiDict) -> dict[str, Any]:
    """The create/edit form's fields as the API's body takes them."""
    values: dict[str, Any] = {
        name: str(form.get(name) or "").strip()
        for name in ("title", "description", "category", "type", "file_name")
    }
    values["tags"] = _tags(str(form.get("tags") or ""))
    values["featured"] = form.get("featured") == "true"
    return values


def _storage_csp(settings: GatewaySettings, page: Page, *, upload: bool) -> dict[str, str]:
    """The page's policy, also letting the browser reach storage's origin: the download form
    is answered with a redirect there (form-action), the upload script sends the file there
    (connect-src)."""
    parts = urlsplit(settings.resources_public_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    ancestors = settings.whop_frame_ancestors if page.in_whop else "'none'"
    policy = PAGE_CSP.format(frame_ancestors=ancestors)
    if upload:
        policy += f"; connect-src 'self' {origin}"
    else:
        policy = policy.replace("form-action 'self'", f"form-action 'self' {origin}")
    return {"Content-Security-Policy": policy}


class ResourcePages(Controller):
    """A member's library: `/experiences/{id}/resources`."""

    path = "/experiences/{community_id:str}/resources"

    @get("/", opt=requires(Action.READ_RESOURCES), name="resources:member")
    async def browse(
        self,
        community_id: FromPath[str],
        request: AnyRequest,
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        query = {key: str(value) for key, value in request.query_params.items()}
        settings = await operations.library_settings(downstream, community_id)
        errors: dict[str, str] = {}
        try:
            filters = _filters(query)
            listing = await refused_fields(
                operations.list_resources(downstream, community_id, filters, PAGE_SIZE, cursor)
            )
        except FieldErrors as refused:
            errors, listing = refused.errors, None
        more = None
        if listing is not None and listing.next_cursor:
            kept = {k: v for k, v in query.items() if v and k != "cursor"}
            more = page.member_url(
                community_id, "/resources?" + urlencode({**kept, "cursor": listing.next_cursor})
            )
        template = "resources/_results.html" if page.htmx else "resources/index.html"
        return page.render(
            template,
            status_code=422 if errors else 200,
            **await member_view(page, access, "resources"),
            query=query,
            categories=settings.categories,
            enabled=settings.enabled,
            types=RESOURCE_TYPES,
            type_labels=TYPE_LABELS,
            listing=listing,
            errors=errors,
            more=more,
            size_text=size_text,
        )

    @get("/{resource_id:uuid}", opt=requires(Action.READ_RESOURCES), name="resources:detail")
    async def detail(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        page: NamedDependency[Page],
        settings: SettingsDep,
        access: AccessDep,
        downstream: DownstreamDep,
    ) -> Template:
        return await _detail(page, settings, access, downstream, resource_id)

    @post(
        "/{resource_id:uuid}/download",
        opt=requires(Action.DOWNLOAD_RESOURCES),
        status_code=HTTP_303_SEE_OTHER,
    )
    async def download(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        request: AnyRequest,
        page: NamedDependency[Page],
        settings: SettingsDep,
        access: AccessDep,
        downstream: DownstreamDep,
    ) -> Template | Redirect:
        """To the signed URL; when the rules refuse (no active membership, no member id),
        the resource's page again, saying why."""
        form = await request.form()
        key = str(form.get("idempotency_key") or "")[:200] or None
        try:
            link = await operations.download(downstream, access, community_id, resource_id, key)
        except Forbidden as refused:
            reason = refused.detail or "you may not download this"
        except grpc.aio.AioRpcError as refused:
            if refused.code() != grpc.StatusCode.PERMISSION_DENIED:
                raise
            reason = refused.details() or "you may not download this"
        else:
            return Redirect(link.url, status_code=HTTP_303_SEE_OTHER)
        return await _detail(page, settings, access, downstream, resource_id, reason)


async def _detail(
    page: Page,
    settings: GatewaySettings,
    access: Access,
    downstream: DownstreamDep,
    resource_id: uuid.UUID,
    refused: str | None = None,
) -> Template:
    resource = await operations.get_resource(downstream, access.community_id, resource_id)
    template = page.render(
        "resources/detail.html",
        status_code=403 if refused else 200,
        **await member_view(page, access, "resources"),
        resource=resource,
        type_labels=TYPE_LABELS,
        size_text=size_text,
        refused=refused,
        # One key per page view: a double click counts one download.
        idempotency_key=uuid.uuid4().hex,
    )
    template.headers.update(_storage_csp(settings, page, upload=False))
    return template


class ResourceAdminPages(Controller):
    """Admins: `/{id}/resources` under the dashboard — upload, publish, edit, delete, stats."""

    path = "/{community_id:str}/resources"

    async def _manage(
        self,
        page: Page,
        access: AccessDep,
        settings: GatewaySettings,
        downstream: DownstreamDep,
        community_id: str,
        form: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> Template:
        library = await operations.library_settings(downstream, community_id)
        listing = await operations.list_resources(
            downstream,
            community_id,
            ResourceFilters(None, None, None, None, None, "newest"),
            limit=100,
        )
        template = page.render(
            "resources/manage.html",
            status_code=422 if errors else 200,
            **admin_context(access, "resources"),
            community_id=community_id,
            library=library,
            listing=listing,
            types=RESOURCE_TYPES,
            type_labels=TYPE_LABELS,
            form=form or {},
            errors=errors or {},
            accept=ACCEPT,
            size_text=size_text,
            published=page.request.query_params.get("published"),
            deleted=page.request.query_params.get("deleted"),
        )
        template.headers.update(_storage_csp(settings, page, upload=True))
        return template

    @get("/", opt=requires(Action.MANAGE_RESOURCES), name="resources:manage")
    async def manage(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        settings: SettingsDep,
        downstream: DownstreamDep,
    ) -> Template:
        return await self._manage(page, access, settings, downstream, community_id)

    @post("/", opt=requires(Action.MANAGE_RESOURCES), status_code=HTTP_303_SEE_OTHER)
    async def publish(
        self,
        community_id: FromPath[str],
        request: AnyRequest,
        page: NamedDependency[Page],
        settings: SettingsDep,
        access: AccessDep,
        audit: AuditorDep,
        downstream: DownstreamDep,
    ) -> Template | Redirect:
        form = await request.form()
        values = _resource_form(form)
        values["storage_key"] = str(form.get("storage_key") or "")
        values["checksum_sha256"] = str(form.get("checksum_sha256") or "")
        try:
            if not values["storage_key"]:
                raise FieldErrors({"file": "choose a file: it is uploaded before publishing"})
            body = parse_form(values, ResourceCreate)
            created = await refused_fields(
                operations.create_resource(downstream, access, audit, community_id, body)
            )
        except FieldErrors as refused:
            return await self._manage(
                page, access, settings, downstream, community_id, values, refused.errors
            )
        return Redirect(
            page.admin_url(community_id, f"/resources?published={created.id}"),
            status_code=HTTP_303_SEE_OTHER,
        )

    @get("/stats", opt=requires(Action.READ_RESOURCE_STATS), name="resources:stats")
    async def stats(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
    ) -> Template:
        numbers = await operations.stats(downstream, community_id, top=10, limit=50)
        listing = await operations.list_resources(
            downstream, community_id, ResourceFilters(None, None, None, None, None, "newest"), 100
        )
        return page.render(
            "resources/stats.html",
            **admin_context(access, "resources"),
            community_id=community_id,
            stats=numbers,
            most=max((day.downloads for day in numbers.per_day), default=0) or 1,
            titles={r.id: r.title for r in listing.resources},
        )

    async def _edit(
        self,
        page: Page,
        access: AccessDep,
        community_id: str,
        resource: ResourceView,
        library_categories: list[str],
        errors: dict[str, str] | None = None,
        form: dict[str, Any] | None = None,
    ) -> Template:
        return page.render(
            "resources/edit.html",
            status_code=422 if errors else 200,
            **admin_context(access, "resources"),
            community_id=community_id,
            resource=resource,
            categories=library_categories,
            types=RESOURCE_TYPES,
            type_labels=TYPE_LABELS,
            form=form or msgspec.to_builtins(resource),
            errors=errors or {},
        )

    @get("/{resource_id:uuid}/edit", opt=requires(Action.MANAGE_RESOURCES))
    async def edit_form(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
    ) -> Template:
        resource = await operations.get_resource(downstream, community_id, resource_id)
        library = await operations.library_settings(downstream, community_id)
        return await self._edit(page, access, community_id, resource, library.categories)

    @post(
        "/{resource_id:uuid}/edit",
        opt=requires(Action.MANAGE_RESOURCES),
        status_code=HTTP_303_SEE_OTHER,
    )
    async def edit(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        request: AnyRequest,
        page: NamedDependency[Page],
        access: AccessDep,
        audit: AuditorDep,
        downstream: DownstreamDep,
    ) -> Template | Redirect:
        values = _resource_form(await request.form())
        try:
            body = parse_form(values, ResourcePatch)
            await refused_fields(
                operations.update_resource(downstream, audit, community_id, resource_id, body)
            )
        except FieldErrors as refused:
            resource = await operations.get_resource(downstream, community_id, resource_id)
            library = await operations.library_settings(downstream, community_id)
            return await self._edit(
                page, access, community_id, resource, library.categories, refused.errors, values
            )
        return Redirect(page.admin_url(community_id, "/resources"), status_code=HTTP_303_SEE_OTHER)

    @post(
        "/{resource_id:uuid}/delete",
        opt=requires(Action.MANAGE_RESOURCES),
        status_code=HTTP_303_SEE_OTHER,
    )
    async def delete(
        self,
        community_id: FromPath[str],
        resource_id: FromPath[uuid.UUID],
        page: NamedDependency[Page],
        audit: AuditorDep,
        downstream: DownstreamDep,
    ) -> Redirect:
        await operations.delete_resource(downstream, audit, community_id, resource_id)
        return Redirect(
            page.admin_url(community_id, "/resources?deleted=1"), status_code=HTTP_303_SEE_OTHER
        )
