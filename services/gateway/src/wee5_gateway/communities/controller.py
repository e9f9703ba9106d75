"""Routes of roles, API keys, the audit log and the API-key activity intake."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.xp.v1 import xp_pb2
from wee5_gateway.access import Action, Principal, Role, authorize
from wee5_gateway.audit import audit_page, record_audit
from wee5_gateway.clients import Downstream
from wee5_gateway.communities.repository import ApiKeysRepository, RolesRepository
from wee5_gateway.communities.schemas import (
    ActivityIn,
    ActivityRecorded,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyView,
    AuditEntryView,
    AuditPage,
    RoleGrant,
    RoleView,
)
from wee5_gateway.models import ApiKey, CommunityRole
from wee5_gateway.problems import Conflict, NotFoundProblem, ProblemError, problem_responses
from wee5_gateway.security import API_KEY_DISPLAY_CHARS, new_api_key, token_hash

Sessions = async_sessionmaker[AsyncSession]
COMMUNITY = "/api/v1/communities/{community_id:str}"
BEARER: list[dict[str, list[str]]] = [{"BearerAuth": []}]


def _role_view(role: CommunityRole) -> RoleView:
    return RoleView(
        community_id=role.community_id,
        account_id=role.account_id,
        role=role.role,  # type: ignore[arg-type]
        member_user_id=role.member_user_id,
        created_at=role.created_at,
    )


def _role_state(role: CommunityRole | None) -> dict[str, str | None] | None:
    if role is None:
        return None
    return {"role": role.role, "member_user_id": role.member_user_id}


class RolesController(Controller):
    path = f"{COMMUNITY}/roles"
    tags = ["roles"]
    security = BEARER

    @get(
        "/",
        operation_id="listRoles",
        summary="Accounts with a role in the community",
        responses=problem_responses(401, 403),
    )
    async def list_roles(
        self,
        community_id: FromPath[str],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
    ) -> list[RoleView]:
        await authorize(principal, community_id, Action.MANAGE_MEMBERS, sessionmaker)
        async with sessionmaker() as session:
            return [_role_view(role) for role in await RolesRepository(session).list(community_id)]

    @put(
        "/{account_id:uuid}",
        operation_id="grantRole",
        summary="Give an account a role (admins grant member; owners grant admin and owner)",
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def grant_role(
        self,
        community_id: FromPath[str],
        account_id: FromPath[uuid.UUID],
        data: JSONBody[RoleGrant],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
    ) -> RoleView:
        async with sessionmaker.begin() as session:
            roles = RolesRepository(session)
            current = await roles.get_for_update(community_id, account_id)
            await _authorize_role_change(
                principal, community_id, sessionmaker, current, Role[data.role.upper()]
            )
            if current is None and not await roles.account_exists(account_id):
                raise NotFoundProblem(f"no account {account_id}")
            member_user_id = data.member_user_id or (current.member_user_id if current else None)
            if member_user_id and await roles.member_id_taken(
                community_id, member_user_id, account_id
            ):
                raise Conflict(f"member {member_user_id} is linked to another account")
            if current and current.role == "owner" and data.role != "owner":
                await _keep_an_owner(roles, community_id)
            before = _role_state(current)
            if current is None:
                current = CommunityRole(
                    community_id=community_id,
                    account_id=account_id,
                    role=data.role,
                    member_user_id=member_user_id,
                    granted_by=principal.account_id,
                )
                session.add(current)
            else:
                current.role = data.role
                current.member_user_id = member_user_id
                current.granted_by = principal.account_id
            await session.flush()
            await session.refresh(current)
            await record_audit(
                session,
                principal,
                community_id=community_id,
                action="role.changed",
                target=f"account:{account_id}",
                before=before,
                after=_role_state(current),
            )
            return _role_view(current)

    @delete(
        "/{account_id:uuid}",
        operation_id="revokeRole",
        summary="Remove an account's role; the last owner cannot be removed",
        responses=problem_responses(401, 403, 404, 409),
    )
    async def revoke_role(
        self,
        community_id: FromPath[str],
        account_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
    ) -> None:
        async with sessionmaker.begin() as session:
            roles = RolesRepository(session)
            current = await roles.get_for_update(community_id, account_id)
            await _authorize_role_change(principal, community_id, sessionmaker, current, None)
            if current is None:
                raise NotFoundProblem(f"account {account_id} has no role here")
            if current.role == "owner":
                await _keep_an_owner(roles, community_id)
            await record_audit(
                session,
                principal,
                community_id=community_id,
                action="role.revoked",
                target=f"account:{account_id}",
                before=_role_state(current),
            )
            await roles.delete(current)


async def _authorize_role_change(
    principal: Principal,
    community_id: str,
    sessionmaker: Sessions,
    current: CommunityRole | None,
    new_role: Role | None,
) -> None:
    """Admins manage members; anything touching the admin or owner role is the owners'."""
    touches_admins = (new_role is not None and new_role >= Role.ADMIN) or (
        current is not None and current.role in ("admin", "owner")
    )
    action = Action.MANAGE_ADMINS if touches_admins else Action.MANAGE_MEMBERS
    await authorize(principal, community_id, action, sessionmaker)


async def _keep_an_owner(roles: RolesRepository, community_id: str) -> None:
    if await roles.count_owners(community_id) <= 1:
        raise Conflict("a community keeps at least one owner; make another owner first")


def _key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(
        id=key.id,
        community_id=key.community_id,
        name=key.name,
        scopes=list(key.scopes),
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


class ApiKeysController(Controller):
    path = f"{COMMUNITY}/api-keys"
    tags = ["api keys"]
    security = BEARER

    @post(
        "/",
        operation_id="createApiKey",
        summary="Create an API key for servers and automation; the key is shown only here",
        responses=problem_responses(400, 401, 403),
    )
    async def create_key(
        self,
        community_id: FromPath[str],
        data: JSONBody[ApiKeyCreate],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
    ) -> ApiKeyCreated:
        await authorize(principal, community_id, Action.MANAGE_API_KEYS, sessionmaker)
        secret = new_api_key()
        async with sessionmaker.begin() as session:
            key = await ApiKeysRepository(session).add(
                ApiKey(
                    community_id=community_id,
                    name=data.name,
                    prefix=secret[:API_KEY_DISPLAY_CHARS],
                    key_hash=token_hash(secret),
                    scopes=sorted(set(data.scopes)),
                    created_by=principal.account_id,
                )
            )
            await record_audit(
                session,
                principal,
                community_id=community_id,
                action="api_key.created",
                target=f"api_key:{key.id}",
                after={"name": key.name, "scopes": list(key.scopes), "prefix": key.prefix},
            )
        view = _key_view(key)
        return ApiKeyCreated(**{f: getattr(view, f) for f in view.__struct_fields__}, key=secret)

    @get(
        "/",
        operation_id="listApiKeys",
        summary="The community's API keys (never the keys themselves)",
        responses=problem_responses(401, 403),
    )
    async def list_keys(
        self,
        community_id: FromPath[str],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
    ) -> list[ApiKeyView]:
        await authorize(principal, community_id, Action.MANAGE_API_KEYS, sessionmaker)
        async with sessionmaker() as session:
            return [_key_view(key) for key in await ApiKeysRepository(session).list(community_id)]

    @delete(
        "/{key_id:uuid}",
        operation_id="revokeApiKey",
        summary="Revoke an API key; it stops working at once",
        responses=problem_responses(401, 403, 404),
    )
    async def revoke_key(
        self,
        community_id: FromPath[str],
        key_id: FromPath[uuid.UUID],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
    ) -> None:
        await authorize(principal, community_id, Action.MANAGE_API_KEYS, sessionmaker)
        async with sessionmaker.begin() as session:
            key = await ApiKeysRepository(session).revoke(community_id, key_id)
            if key is None:
                raise NotFoundProblem(f"no API key {key_id} in this community")
            await record_audit(
                session,
                principal,
                community_id=community_id,
                action="api_key.revoked",
                target=f"api_key:{key.id}",
                before={"name": key.name, "scopes": list(key.scopes)},
            )


class InvalidCursor(ProblemError):
    status = 400
    slug = "invalid-cursor"
    title = "Invalid cursor"


def _encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{entry_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if raw.startswith("a") and raw[1:].isdigit():
            return int(raw[1:])
    except ValueError:  # not base64 (or not ASCII), not UTF-8, not a number
        pass
    raise InvalidCursor("cursor is not one this audit log returned")


class AuditLogController(Controller):
    path = f"{COMMUNITY}/audit-log"
    tags = ["audit log"]
    security = BEARER

    @get(
        "/",
        operation_id="listAuditLog",
        summary="Admin and owner actions in the community, newest first",
        responses=problem_responses(400, 401, 403),
    )
    async def audit_log(
        self,
        community_id: FromPath[str],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> AuditPage:
        await authorize(principal, community_id, Action.READ_AUDIT_LOG, sessionmaker)
        before_id = _decode_cursor(cursor)
        async with sessionmaker() as session:
            rows = await audit_page(session, community_id, before_id=before_id, limit=limit + 1)
        entries = [
            AuditEntryView(
                id=row.id,
                community_id=row.community_id,
                actor_account_id=row.actor_account_id,
                actor_api_key_id=row.actor_api_key_id,
                action=row.action,
                target=row.target,
                before=row.before,
                after=row.after,
                request_id=row.request_id,
                created_at=row.created_at,
            )
            for row in rows[:limit]
        ]
        more = len(rows) > limit
        return AuditPage(entries, _encode_cursor(entries[-1].id) if more and entries else None)


_KINDS = {
    "message": xp_pb2.ACTIVITY_KIND_MESSAGE,
    "post": xp_pb2.ACTIVITY_KIND_POST,
    "reaction": xp_pb2.ACTIVITY_KIND_REACTION,
    "custom": xp_pb2.ACTIVITY_KIND_CUSTOM,
}


class ActivitiesController(Controller):
    path = f"{COMMUNITY}/activities"
    tags = ["activities"]
    security = [{"ApiKeyAuth": []}]

    @post(
        "/",
        status_code=200,
        operation_id="recordActivity",
        summary="Record one activity from another source (e.g. a Discord bot); needs an API "
        "key with activities:write. Idempotent on idempotency_key.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def record_activity(
        self,
        community_id: FromPath[str],
        data: JSONBody[ActivityIn],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        downstream: NamedDependency[Downstream],
    ) -> ActivityRecorded:
        await authorize(principal, community_id, Action.WRITE_ACTIVITIES, sessionmaker)
        activity = xp_pb2.Activity(
            community_id=community_id,
            user_id=data.user_id,
            kind=_KINDS[data.kind],
            custom_kind=data.custom_kind or "",
            source=xp_pb2.SOURCE_API,
            idempotency_key=data.idempotency_key,
            channel_id=data.channel_id or "",
            content_length=data.content_length,
            author_is_bot=data.author_is_bot,
        )
        if data.occurred_at is not None:
            activity.occurred_at.FromDatetime(data.occurred_at)
        reply = await downstream.xp.RecordActivity(xp_pb2.RecordActivityRequest(activity=activity))
        return ActivityRecorded(
            status=xp_pb2.ActivityOutcome.Name(reply.outcome)  # type: ignore[arg-type]
            .removeprefix("ACTIVITY_OUTCOME_")
            .lower(),
            skip_reason=xp_pb2.SkipReason.Name(reply.skip_reason)
            .removeprefix("SKIP_REASON_")
            .lower()
            if reply.skip_reason
            else None,
            xp_awarded=reply.xp_awarded,
            total_xp=reply.total_xp,
            level=reply.level,
            leveled_up=reply.leveled_up,
        )
