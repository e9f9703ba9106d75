"""Routes that bind a Discord server (guild) to a community, with proof, and that link a Whop
member's Discord account (link.py).

Roles are given with the platform's bot token in the bound server, so a server is bound only by
someone shown to control it: through the bot's OAuth2 install flow (the installer owns the
server or has Manage Server there; see install.py), or by a platform admin. A server belongs to
one community at most. The reward settings cannot change it. Every binding and unbinding is
audited.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, Parameter, QueryParameter

from wee5.rewards.v1 import rewards_pb2
from wee5_gateway.api.discord.install import (
    CALLBACK_PATH,
    InstallStates,
    PendingInstall,
    authorize_url,
    configured_client_id,
    proven_guild,
)
from wee5_gateway.api.discord.link import (
    LINK_CALLBACK_PATH,
    LinkStates,
    PendingLink,
    discord_user_id,
    is_whop_user,
    link_authorize_url,
)
from wee5_gateway.api.discord.schemas import (
    DiscordLinked,
    GuildBinding,
    GuildBound,
    InstallStarted,
    LinkStarted,
    RoleAssignmentView,
)
from wee5_gateway.core.access import Access, Action, Principal, requires
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.deps import (
    ACCOUNTS,
    COMMUNITY,
    AccessDep,
    AuditorDep,
    DownstreamDep,
    SessionsDep,
    SettingsDep,
)
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import Conflict, problem_responses
from wee5_kit.proto import from_timestamp
from wee5_kit.redis import Keys


class DiscordGuildController(Controller):
    path = f"{COMMUNITY}/discord-guild"
    tags = ["discord"]
    security = ACCOUNTS

    @put(
        "/",
        opt=requires(Action.BIND_DISCORD_GUILD),
        operation_id="bindDiscordGuild",
        summary="Bind a Discord server to the community without the install flow (platform "
        "admins only; audited)",
        description="For operators who checked ownership themselves. A server belongs to one "
        "community: one bound elsewhere is a 409. Community admins bind their server by "
        "installing the bot (`POST …/discord-guild/install`).",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def bind(
        self,
        community_id: FromPath[str],
        data: Annotated[GuildBinding, body_example({"guild_id": "1234567890123456789"})],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> GuildBound:
        bound_by = f"platform_admin:{access.principal.actor_id}"
        return await _bind(downstream, audit, community_id, data.guild_id, bound_by)

    @delete(
        "/",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="unbindDiscordGuild",
        summary="Unbind the community's Discord server: roles wait until one is bound again "
        "(admins; audited)",
        description="Role rewards and badge roles wait (`waiting`) until a server is bound "
        "again, through the install flow or by a platform admin.",
        status_code=200,
        responses=problem_responses(401, 403, 503, 504),
    )
    async def unbind(
        self, community_id: FromPath[str], downstream: DownstreamDep, audit: AuditorDep
    ) -> GuildBound:
        return await _bind(downstream, audit, community_id, "", "")

    @post(
        "/install",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="startDiscordInstall",
        summary="Start binding a Discord server: a link that installs the bot (admins)",
        description="Send the browser to `authorize_url`: Discord asks to add the bot to a "
        "server; whoever adds it must own that server or have Manage Server there. Discord "
        f"then sends the browser to `{CALLBACK_PATH}`, which binds the server. The link works "
        "once, for a few minutes.",
        responses=problem_responses(401, 403, 503),
    )
    async def start_install(
        self,
        community_id: FromPath[str],
        access: AccessDep,
        settings: SettingsDep,
        request: Request[Any, Any, Any],
    ) -> InstallStarted:
        principal = access.principal
        pending = PendingInstall(
            community_id=community_id,
            account_id=str(principal.account_id) if principal.account_id else None,
            api_key_id=str(principal.api_key_id) if principal.api_key_id else None,
            whop_user_id=principal.whop_user_id,
        )
        configured_client_id(settings)  # refuses before a state is stored
        state = await _states(request, settings).issue(pending)
        return InstallStarted(
            authorize_url=authorize_url(settings, state),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.discord_install_ttl_seconds),
        )


class DiscordInstallController(Controller):
    path = CALLBACK_PATH
    tags = ["discord"]
    security: list[dict[str, list[str]]] = []

    @get(
        "/",
        operation_id="finishDiscordInstall",
        summary="Where Discord sends the browser after the bot was installed: binds the server",
        description="Discord's redirect (`code`, `state`, `guild_id`). The code is exchanged "
        "at Discord and the installer's servers are read with it: the bot must be in "
        "`guild_id` and the installer must own it or have Manage Server there. The state is "
        "the one-time link an admin of the community started.",
        responses=problem_responses(400, 403, 409, 503, 504),
    )
    async def finish_install(
        self,
        settings: SettingsDep,
        downstream: DownstreamDep,
        sessionmaker: SessionsDep,
        request: Request[Any, Any, Any],
        code: FromQuery[str] = "",
        # `state` is a name Litestar reserves for the app state.
        install_state: Annotated[str, Parameter(query="state")] = "",
        guild_id: FromQuery[str] = "",
    ) -> GuildBound:
        pending = await _states(request, settings).redeem(install_state)
        await proven_guild(settings, code, guild_id)
        principal = Principal(
            account_id=uuid.UUID(pending.account_id) if pending.account_id else None,
            api_key_id=uuid.UUID(pending.api_key_id) if pending.api_key_id else None,
            whop_user_id=pending.whop_user_id,
        )
        audit = Auditor(sessionmaker, Access(principal, pending.community_id, None, None))
        return await _bind(
            downstream, audit, pending.community_id, guild_id, f"install:{pending.actor}"
        )


class DiscordLinkController(Controller):
    path = f"{COMMUNITY}/members/me/discord-link"
    tags = ["discord"]
    security = ACCOUNTS

    @post(
        "/",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="startDiscordLink",
        summary="Start linking your Discord account: a link to Discord (Whop members)",
        description="For a member known by their Whop user id: open `authorize_url` in a "
        "window of its own; Discord asks them to let WEE5 know their Discord account "
        f"(`identify`), then sends the browser to `{LINK_CALLBACK_PATH}`, which links it. "
        "From then on the Discord roles the member holds in the community's server (the "
        "subscription role, role rewards, badge roles) go to that account; roles that waited "
        "for the link follow. The link works once, for a few minutes. A caller whose member id "
        "here is not a Whop user id (a Discord member, an admin's account) gets a 409.",
        responses=problem_responses(401, 403, 409, 503),
    )
    async def start_link(
        self,
        community_id: FromPath[str],
        access: AccessDep,
        settings: SettingsDep,
        request: Request[Any, Any, Any],
    ) -> LinkStarted:
        user_id = access.member_user_id
        if not user_id or not is_whop_user(user_id):
            raise Conflict(
                "the caller is not a Whop member of this community: only a member known by "
                "their Whop user id links a Discord account"
            )
        configured_client_id(settings)  # refuses before a state is stored
        state = await _link_states(request, settings).issue(PendingLink(community_id, user_id))
        return LinkStarted(
            authorize_url=link_authorize_url(settings, state),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.discord_install_ttl_seconds),
        )


class DiscordLinkCallbackController(Controller):
    path = LINK_CALLBACK_PATH
    tags = ["discord"]
    security: list[dict[str, list[str]]] = []

    @get(
        "/",
        operation_id="finishDiscordLink",
        summary="Where Discord sends the browser after a member allowed the link: links it "
        "(audited)",
        description="Discord's redirect (`code`, `state`). The code is exchanged at Discord "
        "and `GET /users/@me` names the Discord account; the state is the one-time link the "
        "member started.",
        responses=problem_responses(400, 503, 504),
    )
    async def finish_link(
        self,
        settings: SettingsDep,
        downstream: DownstreamDep,
        sessionmaker: SessionsDep,
        request: Request[Any, Any, Any],
        code: FromQuery[str] = "",
        # `state` is a name Litestar reserves for the app state.
        link_state: Annotated[str, Parameter(query="state")] = "",
    ) -> DiscordLinked:
        pending = await _link_states(request, settings).redeem(link_state)
        discord_id = await discord_user_id(settings, code)
        principal = Principal(whop_user_id=pending.user_id)
        audit = Auditor(sessionmaker, Access(principal, pending.community_id, None, None))
        async with audit.change(
            "discord_account.linked", target=f"member:{pending.user_id}"
        ) as change:
            reply = await downstream.rewards.LinkDiscordAccount(
                rewards_pb2.LinkDiscordAccountRequest(
                    user_id=pending.user_id, discord_user_id=discord_id
                )
            )
            change.done(after={"discord_user_id": discord_id})
        return DiscordLinked(
            community_id=pending.community_id,
            user_id=pending.user_id,
            discord_user_id=discord_id,
            roles_resumed=reply.roles_resumed,
        )


class DiscordRolesController(Controller):
    path = f"{COMMUNITY}/discord-roles"
    tags = ["discord"]
    security = ACCOUNTS

    @get(
        "/",
        opt=requires(Action.READ_REWARDS),
        operation_id="listDiscordRoles",
        summary="The Discord roles given and taken, and why one waits or died (admins)",
        description="Role rewards, badge roles and the subscription role, most recently "
        "changed first (`user_id`: one member's). `last_error` says why a role waits (no bot "
        "token, no server bound, a Whop member who linked no Discord account) or is dead (a "
        "role not of the server, Discord's refusal, e.g. a role above the bot's).",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def list_roles(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
        user_id: Annotated[str, QueryParameter(max_length=64)] = "",
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    ) -> list[RoleAssignmentView]:
        reply = await downstream.rewards.ListRoleAssignments(
            rewards_pb2.ListRoleAssignmentsRequest(
                community_id=community_id, user_id=user_id, limit=limit
            )
        )
        return [
            RoleAssignmentView(
                user_id=row.user_id,
                role_id=row.role_id,
                source=row.source,
                action=row.action,
                status=row.status,
                attempts=row.attempts,
                last_error=row.last_error or None,
                updated_at=from_timestamp(row.updated_at),
            )
            for row in reply.assignments
        ]


def _link_states(request: Request[Any, Any, Any], settings: SettingsDep) -> LinkStates:
    return LinkStates(
        request.app.state.redis,
        Keys(settings.redis_prefix),
        settings.discord_install_ttl_seconds,
    )


def _states(request: Request[Any, Any, Any], settings: SettingsDep) -> InstallStates:
    return InstallStates(
        request.app.state.redis,
        Keys(settings.redis_prefix),
        settings.discord_install_ttl_seconds,
    )


async def _bind(
    downstream: Downstream, audit: Auditor, community_id: str, guild_id: str, bound_by: str
) -> GuildBound:
    action = "discord_guild.bound" if guild_id else "discord_guild.unbound"
    async with audit.change(
        action, target=f"community:{community_id}", intent={"guild": guild_id or None}
    ) as change:
        reply = await downstream.rewards.BindDiscordGuild(
            rewards_pb2.BindDiscordGuildRequest(
                community_id=community_id, guild_id=guild_id, bound_by=bound_by
            )
        )
        bound = reply.settings
        change.done(after={"guild": bound.discord_guild_id or None, "bound_by": bound_by or None})
    return GuildBound(
        community_id=community_id,
        discord_guild_id=bound.discord_guild_id or None,
        bound_by=bound.discord_guild_bound_by or None,
    )
