"""Routes of who may do what in a community: roles, API keys and the audit log. These are the
gateway's own tables: each change and its audit entry are one transaction."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, QueryParameter

from wee5_gateway.api.communities.mappers import (
    role_state,
    role_view,
)
from wee5_gateway.api.communities.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyView,
    AuditPage,
    RoleGrant,
    RoleView,
)
from wee5_gateway.api.communities.service import (
    audit_log_page,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from wee5_gateway.core.access import Access, Action, Role, permit, requires
from wee5_gateway.core.deps import (
    ACCOUNTS,
    COMMUNITY,
    AccessCacheDep,
    AccessDep,
    AuditorDep,
    SessionsDep,
)
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import Conflict, NotFoundProblem, problem_responses
from wee5_gateway.db.models import CommunityRole
from wee5_gateway.db.repository import RolesRepository


class RolesController(Controller):
    path = f"{COMMUNITY}/roles"
    tags = ["roles"]
    security = ACCOUNTS

    @get(
        "/",
        opt=requires(Action.MANAGE_MEMBERS),
        operation_id="listRoles",
        summary="Accounts with a role in the community",
        description="Every account with a role here: account id, role, the member id it is linked "
        "to and since when (admins).",
        responses=problem_responses(401, 403),
    )
    async def list_roles(
        self, community_id: FromPath[str], sessionmaker: SessionsDep
    ) -> list[RoleView]:
        async with sessionmaker() as session:
            return [role_view(role) for role in await RolesRepository(session).list(community_id)]

    @put(
        "/{account_id:uuid}",
        opt=requires(Action.MANAGE_MEMBERS),
        operation_id="grantRole",
        summary="Give an account a role (admins grant member; owners grant admin and owner)",
        description="Sets the account's role in this community (member, admin or owner), replacing"
        " the role it had. Admins may grant `member`; `admin` and `owner` need an "
        "owner. `member_user_id` links the account to its member id here: one already linked "
        "to another account, or another account's own id, is a 409. A member's benchmark "
        "answers stay with the account that wrote them whatever is linked later. Audited "
        "(`role.changed`, with the role and the linked member id before and after). 404 for "
        "an unknown account.",
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def grant_role(
        self,
        community_id: FromPath[str],
        account_id: FromPath[uuid.UUID],
        data: Annotated[
            RoleGrant, body_example({"role": "admin", "member_user_id": "user_abc123"})
        ],
        access: AccessDep,
        sessionmaker: SessionsDep,
        audit: AuditorDep,
        access_cache: AccessCacheDep,
    ) -> RoleView:
        granted_by = access.principal.account_id
        async with sessionmaker.begin() as session:
            roles = RolesRepository(session)
            current = await roles.get_for_update(community_id, account_id)
            _permit_role_change(access, current, Role[data.role.upper()])
            if current is None and not await roles.account_exists(account_id):
                raise NotFoundProblem(f"no account {account_id}")
            member_user_id = data.member_user_id or (current.member_user_id if current else None)
            linked_before = current.member_user_id if current else None
            if member_user_id and member_user_id != linked_before:
                await _refuse_colliding_link(roles, community_id, member_user_id, account_id)
            if current and current.role == "owner" and data.role != "owner":
                await _keep_an_owner(roles, community_id)
            before = role_state(current)
            if current is None:
                current = CommunityRole(
                    community_id=community_id,
                    account_id=account_id,
                    role=data.role,
                    member_user_id=member_user_id,
                    granted_by=granted_by,
                )
                session.add(current)
            else:
                current.role = data.role
                current.member_user_id = member_user_id
                current.granted_by = granted_by
            await session.flush()
            await session.refresh(current)
            await audit.record(
                session,
                action="role.changed",
                target=f"account:{account_id}",
                before=before,
                after=role_state(current),
            )
            view = role_view(current)
        # Postgres announces it to every replica too; this one's next request must see it.
        access_cache.forget_role(community_id, account_id)
        return view

    @delete(
        "/{account_id:uuid}",
        opt=requires(Action.MANAGE_MEMBERS),
        operation_id="revokeRole",
        summary="Remove an account's role; the last owner cannot be removed",
        description="The account loses every right in this community at once (cached roles are "
        "dropped on every gateway replica). Removing the last owner is a 409. Audited.",
        responses=problem_responses(401, 403, 404, 409),
    )
    async def revoke_role(
        self,
        community_id: FromPath[str],
        account_id: FromPath[uuid.UUID],
        access: AccessDep,
        sessionmaker: SessionsDep,
        audit: AuditorDep,
        access_cache: AccessCacheDep,
    ) -> None:
        async with sessionmaker.begin() as session:
            roles = RolesRepository(session)
            current = await roles.get_for_update(community_id, account_id)
            _permit_role_change(access, current, None)
            if current is None:
                raise NotFoundProblem(f"account {account_id} has no role here")
            if current.role == "owner":
                await _keep_an_owner(roles, community_id)
            await audit.record(
                session,
                action="role.revoked",
                target=f"account:{account_id}",
                before=role_state(current),
            )
            await roles.delete(current)
        access_cache.forget_role(community_id, account_id)


def _permit_role_change(
    access: Access, current: CommunityRole | None, new_role: Role | None
) -> None:
    """Admins manage members (the route's guard checked that); anything touching the admin or
    owner role is the owners'."""
    touches_admins = (new_role is not None and new_role >= Role.ADMIN) or (
        current is not None and current.role in ("admin", "owner")
    )
    if touches_admins:
        permit(access, Action.MANAGE_ADMINS)


async def _refuse_colliding_link(
    roles: RolesRepository, community_id: str, member_user_id: str, account_id: uuid.UUID
) -> None:
    """A member id names one identity: not one linked to another account here, and not
    another account's own id (what an unlinked account's private data is kept under)."""
    if await roles.member_id_taken(community_id, member_user_id, account_id):
        raise Conflict(f"member {member_user_id} is linked to another account")
    try:
        named = uuid.UUID(member_user_id)
    except ValueError:
        return
    if named != account_id and await roles.account_exists(named):
        raise Conflict(f"member id {member_user_id} is another account's id")


async def _keep_an_owner(roles: RolesRepository, community_id: str) -> None:
    if await roles.count_owners(community_id) <= 1:
        raise Conflict("a community keeps at least one owner; make another owner first")


class ApiKeysController(Controller):
    path = f"{COMMUNITY}/api-keys"
    tags = ["api keys"]
    security = ACCOUNTS

    @post(
        "/",
        opt=requires(Action.MANAGE_API_KEYS),
        operation_id="createApiKey",
        summary="Create an API key for servers and automation; the key is shown only here",
        description="Returns the new key (`wee5_sk_…`) once; store it, it cannot be shown again. "
        "Its scopes limit what it may do (`xp:read`, `xp:admin`, `activities:write`); "
        "`expires_in_days` makes it stop working by itself. Send it as `X-API-Key`. Owners; "
        "audited.",
        responses=problem_responses(400, 401, 403),
    )
    async def create_key(
        self,
        community_id: FromPath[str],
        data: Annotated[
            ApiKeyCreate,
            body_example({"name": "discord-bot", "scopes": ["activities:write", "xp:read"]}),
        ],
        access: AccessDep,
        sessionmaker: SessionsDep,
        audit: AuditorDep,
    ) -> ApiKeyCreated:
        return await create_api_key(
            community_id, data, access=access, sessionmaker=sessionmaker, audit=audit
        )

    @get(
        "/",
        opt=requires(Action.MANAGE_API_KEYS),
        operation_id="listApiKeys",
        summary="The community's API keys (never the keys themselves)",
        description="Name, prefix, scopes, creation, last use and expiry of each key (owners). "
        "The secret itself is never stored, only its hash.",
        responses=problem_responses(401, 403),
    )
    async def list_keys(
        self, community_id: FromPath[str], sessionmaker: SessionsDep
    ) -> list[ApiKeyView]:
        return await list_api_keys(community_id, sessionmaker)

    @delete(
        "/{key_id:uuid}",
        opt=requires(Action.MANAGE_API_KEYS),
        operation_id="revokeApiKey",
        summary="Revoke an API key; it stops working at once",
        description="The key is refused from the next request on, on every gateway replica. "
        "Owners; audited.",
        responses=problem_responses(401, 403, 404),
    )
    async def revoke_key(
        self,
        community_id: FromPath[str],
        key_id: FromPath[uuid.UUID],
        sessionmaker: SessionsDep,
        audit: AuditorDep,
        access_cache: AccessCacheDep,
    ) -> None:
        await revoke_api_key(
            community_id, key_id, sessionmaker=sessionmaker, audit=audit, cache=access_cache
        )


class AuditLogController(Controller):
    path = f"{COMMUNITY}/audit-log"
    tags = ["audit log"]
    security = ACCOUNTS

    @get(
        "/",
        opt=requires(Action.READ_AUDIT_LOG),
        operation_id="listAuditLog",
        summary="Admin and owner actions in the community, newest first",
        description="Who changed what and when (roles, keys, XP rules, adjustments, rewards, "
        "plans…), each with the state before and after where it has one. Owners; paged"
        " with `cursor`.",
        responses=problem_responses(400, 401, 403),
    )
    async def audit_log(
        self,
        community_id: FromPath[str],
        sessionmaker: SessionsDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> AuditPage:
        return await audit_log_page(community_id, sessionmaker, limit=limit, cursor=cursor)
