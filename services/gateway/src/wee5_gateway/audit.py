"""The audit log: every admin and owner action, with who, what, when, where, before and after.

Written in the same transaction as the change it records (when the change is the gateway's
own), so the log never claims what did not happen.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_gateway.access import Principal
from wee5_gateway.models import AuditEntry
from wee5_kit.grpc import request_id_var


async def record_audit(
    session: AsyncSession,
    actor: Principal,
    *,
    community_id: str | None,
    action: str,
    target: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Adds one entry, e.g. action="role.changed", target="account:<id>"."""
    session.add(
        AuditEntry(
            community_id=community_id,
            actor_account_id=actor.account_id,
            actor_api_key_id=actor.api_key_id,
            action=action,
            target=target,
            before=before,
            after=after,
            request_id=request_id_var.get(),
        )
    )
    await session.flush()


async def audit_page(
    session: AsyncSession, community_id: str, *, before_id: int | None, limit: int
) -> list[AuditEntry]:
    """Newest first; `before_id` is the cursor (the last id of the previous page)."""
    query = select(AuditEntry).where(AuditEntry.community_id == community_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(await session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))
