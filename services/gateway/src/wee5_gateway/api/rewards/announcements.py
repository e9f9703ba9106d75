"""Announcement settings: whether, where and how often a community announces level-ups,
rewards and badges, with what text (served by rewards, which renders and checks templates)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post, put
from litestar.params import FromPath, FromQuery, PathParameter, QueryParameter

from wee5.rewards.v1 import rewards_pb2
from wee5_gateway.api.rewards.mappers import (
    ANNOUNCEMENT_KINDS,
    ANNOUNCEMENT_TARGETS,
    announcement_page,
    announcement_view,
    announcements_request,
    announcements_view,
)
from wee5_gateway.api.rewards.schemas import (
    AnnouncementPage,
    AnnouncementPreview,
    AnnouncementPreviewBody,
    AnnouncementSettingsBody,
    AnnouncementSettingsView,
    AnnouncementStatus,
    AnnouncementView,
)
from wee5_gateway.core.access import Action, requires
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.deps import (
    ACCOUNTS_OR_KEYS,
    COMMUNITY,
    AuditorDep,
    DownstreamDep,
    EntitlementsDep,
)
from wee5_gateway.core.entitlements import Feature
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import problem_responses

_TEMPLATES = ("level_up_template", "reward_template", "badge_template")
Limit = Annotated[int, QueryParameter(ge=1, le=200)]
# An announcement id in a path: what a protobuf int64 holds (larger is a 400, not a 500).
AnnouncementId = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]


class AnnouncementSettingsController(Controller):
    path = f"{COMMUNITY}/announcement-settings"
    tags = ["rewards"]
    security = ACCOUNTS_OR_KEYS

    @get(
        "/",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="getAnnouncementSettings",
        summary="Whether, where and how often level-ups, rewards and badges are announced (admins)",
        description="The settings, the three templates (defaults where none is set) and the "
        "variables templates may use.",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_settings(
        self, community_id: FromPath[str], downstream: DownstreamDep
    ) -> AnnouncementSettingsView:
        return await _read(downstream, community_id)

    @put(
        "/",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="updateAnnouncementSettings",
        summary="Set whether, where and how often announcements go out, and their texts "
        "(admins; audited; changing a text needs premium)",
        description="Replaces the settings (left out: the default). A template may use only "
        "the variables listed by GET, in braces (`{{` and `}}` for literal braces); an "
        "unknown one is a 422 naming it. Values are escaped for the target: a display name "
        "cannot add markdown or mention anyone. `whop_channel` needs `channel_id` "
        "`chat_feed_…`, `discord_channel` a channel snowflake; the other targets take none. "
        "`every_levels: 5` announces levels 5, 10, 15…; with `every_level_from: 20` every "
        "level from 20 on as well.",
        responses=problem_responses(400, 401, 402, 403, 422, 503, 504),
    )
    async def update_settings(
        self,
        community_id: FromPath[str],
        data: Annotated[
            AnnouncementSettingsBody,
            body_example(
                {
                    "enabled": True,
                    "target": "activity_channel",
                    "every_levels": 5,
                    "every_level_from": 20,
                    "level_up_template": "GG {mention}, level {level}! {reward}",
                }
            ),
        ],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> AnnouncementSettingsView:
        current = await _read(downstream, community_id)
        changed = [
            name
            for name in _TEMPLATES
            if getattr(data, name) and getattr(data, name) != getattr(current, name)
        ]
        if changed:
            await entitlements.require_feature(community_id, Feature.ANNOUNCEMENT_TEMPLATES)
        async with audit.change(
            "announcement_settings.changed", target=f"community:{community_id}"
        ) as change:
            reply = await downstream.rewards.UpdateAnnouncementSettings(
                announcements_request(community_id, data)
            )
            view = announcements_view(reply.settings)
            change.done(
                before={"enabled": current.enabled, "target": current.target},
                after={"enabled": view.enabled, "target": view.target, "templates": changed},
            )
        return view

    @post(
        "/preview",
        status_code=200,
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="previewAnnouncement",
        summary="Render a template with sample values, as the target would show it (admins)",
        description="`template` left out: the community's template of `kind`. An unknown "
        "variable is a 422 naming it.",
        responses=problem_responses(400, 401, 403, 422, 503, 504),
    )
    async def preview(
        self,
        community_id: FromPath[str],
        data: Annotated[
            AnnouncementPreviewBody,
            body_example({"kind": "level_up", "template": "{member} reached level {level}!"}),
        ],
        downstream: DownstreamDep,
    ) -> AnnouncementPreview:
        reply = await downstream.rewards.PreviewAnnouncement(
            rewards_pb2.PreviewAnnouncementRequest(
                community_id=community_id,
                kind=ANNOUNCEMENT_KINDS.value(data.kind),
                template=data.template,
                target=(
                    ANNOUNCEMENT_TARGETS.value(data.target)
                    if data.target
                    else rewards_pb2.ANNOUNCEMENT_TARGET_UNSPECIFIED
                ),
            )
        )
        return AnnouncementPreview(text=reply.text)


class AnnouncementsController(Controller):
    path = f"{COMMUNITY}/announcements"
    tags = ["rewards"]
    security = ACCOUNTS_OR_KEYS

    @get(
        "/",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="listAnnouncements",
        summary="Announcements sent or to send, newest first, with every attempt (admins)",
        description="One per member, event and target. `status=dead` lists those that failed "
        "every attempt (retry them with `POST …/announcements/{id}/retry`); `waiting` ones "
        "wait for an operator (the Whop key, the Discord bot). Paged with `cursor`.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def list_announcements(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
        status: FromQuery[AnnouncementStatus | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> AnnouncementPage:
        reply = await downstream.rewards.ListAnnouncements(
            rewards_pb2.ListAnnouncementsRequest(
                community_id=community_id,
                status=status or "",
                page_size=limit,
                page_token=cursor or "",
            )
        )
        return announcement_page(reply)

    @post(
        "/{announcement_id:int}/retry",
        status_code=200,
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="retryAnnouncement",
        summary="Send a dead or waiting announcement again, with a new attempt budget "
        "(admins; audited)",
        description="It is sent at most once more (an earlier attempt whose outcome never came "
        "back is checked first). 409 for one that is not dead or waiting.",
        responses=problem_responses(400, 401, 403, 404, 409, 503, 504),
    )
    async def retry(
        self,
        community_id: FromPath[str],
        announcement_id: AnnouncementId,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> AnnouncementView:
        async with audit.change(
            "announcement.retried", target=f"announcement:{announcement_id}"
        ) as change:
            reply = await downstream.rewards.RetryAnnouncement(
                rewards_pb2.RetryAnnouncementRequest(
                    community_id=community_id, announcement_id=announcement_id
                )
            )
            change.done(after={"status": "pending"})
        return announcement_view(reply.announcement)


async def _read(downstream: Downstream, community_id: str) -> AnnouncementSettingsView:
    reply = await downstream.rewards.GetAnnouncementSettings(
        rewards_pb2.GetAnnouncementSettingsRequest(community_id=community_id)
    )
    return announcements_view(reply.settings)
