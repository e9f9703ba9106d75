"""API keys and the audit log of a community, as the JSON routes and the dashboard pages both
use them: each change and its audit entry are one transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_gateway.api.communities.mappers import audit_cursor_before, audit_page, key_view
from wee5_gateway.api.communities.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyView, AuditPage
from wee5_gateway.core.access import Access
from wee5_gateway.core.access_cache import AccessCache
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.problems import NotFoundProblem
from wee5_gateway.core.security import API_KEY_DISPLAY_CHARS, new_api_key, token_hash
from wee5_gateway.db.models import ApiKey
from wee5_gateway.db.repository import ApiKeysRepository, AuditRepository

Sessions = async_sessionmaker[AsyncSession]


async def create_api_key(
    community_id: str, data: ApiKeyCreate, *, access: Access, sessionmaker: Sessions, audit: Auditor
) -> ApiKeyCreated:
    """A new key; the secret is in the answer only (the hash is kept)."""
    secret = new_api_key()
    async with sessionmaker.begin() as session:
        key = await ApiKeysRepository(session).add(
            ApiKey(
                community_id=community_id,
                name=data.name,
                prefix=secret[:API_KEY_DISPLAY_CHARS],
                key_hash=token_hash(secret),
                scopes=sorted(set(data.scopes)),
                created_by=access.principal.account_id,
                expires_at=datetime.now(UTC) + timedelta(days=data.expires_in_days)
                if data.expires_in_days
                else None,
            )
        )
        await audit.record(
            session,
            action="api_key.created",
            target=f"api_key:{key.id}",
            after={
                "name": key.name,
                "scopes": list(key.scopes),
                "prefix": key.prefix,
                "expires_at": key.expires_at.isoformat() if key.expires_at else None,
            },
        )
    view = key_view(key)
    return ApiKeyCreated(**{f: getattr(view, f) for f in view.__struct_fields__}, key=secret)


async def list_api_keys(community_id: str, sessionmaker: Sessions) -> list[ApiKeyView]:
    async with sessionmaker() as session:
        return [key_view(key) for key in await ApiKeysRepository(session).list(community_id)]


async def revoke_api_key(
    community_id: str,
    key_id: uuid.UUID,
    *,
    sessionmaker: Sessions,
    audit: Auditor,
    cache: AccessCache,
) -> None:
    """Revokes the key (it stops working at once); 404 when the community has no such key."""
    async with sessionmaker.begin() as session:
        key = await ApiKeysRepository(session).revoke(community_id, key_id)
        if key is None:
            raise NotFoundProblem(f"no API key {key_id} in this community")
        await audit.record(
            session,
            action="api_key.revoked",
            target=f"api_key:{key.id}",
            before={"name": key.name, "scopes": list(key.scopes)},
        )
    cache.forget_key(key.key_hash)


async def audit_log_page(
    community_id: str, sessionmaker: Sessions, *, limit: int, cursor: str | None
) -> AuditPage:
    """A page of the audit log, newest first; a forged cursor is a 400."""
    before_id = audit_cursor_before(cursor)
    async with sessionmaker() as session:
        rows = await AuditRepository(session).page(
            community_id, before_id=before_id, limit=limit + 1
        )
    return audit_page(rows, limit)
