"""The audit log: every admin and owner action, with who, what, when, where, before and after.

A change the gateway makes itself is recorded in the same transaction (`Auditor.record`). A
change another service makes over gRPC is recorded in two steps (`Auditor.change`): a `pending`
entry with the intent, committed before the call, then completed with the outcome after the
service answered. A crash between the service's commit and the completion leaves a visible
pending entry, never none; a call that certainly changed nothing drops the entry again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_gateway.core.access import Access, Principal, provide_access
from wee5_gateway.core.problems import ProblemError
from wee5_gateway.db.models import AUDIT_PENDING, AuditEntry
from wee5_gateway.db.repository import AuditRepository
from wee5_kit.grpc import request_id_var

# Downstream answers after which the change may or may not have been committed: the pending
# entry stays, saying so.
_OUTCOME_UNKNOWN = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DATA_LOSS,
    }
)


@dataclass
class AuditedChange:
    """What the handler learned from the service: `done(...)` with the state before and after,
    or `unchanged()` when the service changed nothing (e.g. the badge was held already)."""

    target: str | None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    changed: bool = field(default=True)

    def done(
        self,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        target: str | None = None,
    ) -> None:
        self.before, self.after = before, after
        if target is not None:
            self.target = target

    def unchanged(self) -> None:
        self.changed = False


class Auditor:
    """Writes the audit entries of one caller in one community."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], access: Access) -> None:
        self.sessionmaker = sessionmaker
        self.actor = access.principal
        self.community_id = access.community_id

    async def record(
        self,
        session: AsyncSession,
        *,
        action: str,
        target: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Adds a `done` entry in `session`: the transaction of the gateway's own change."""
        await record_audit(
            session,
            self.actor,
            community_id=self.community_id,
            action=action,
            target=target,
            before=before,
            after=after,
        )

    @asynccontextmanager
    async def change(
        self,
        action: str,
        *,
        target: str | None = None,
        intent: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        before: dict[str, Any] | None = None,
    ) -> AsyncIterator[AuditedChange]:
        """Around one downstream write: `async with audit.change(...) as change:` call the
        service, then `change.done(before=..., after=...)`.

        `before` is the state read before the call, kept on the pending entry: it stands when
        the handler cannot learn the state before from the answer (`done(before=None)`), as
        when a retry is answered as a duplicate after the first attempt's crash."""
        async with self.sessionmaker.begin() as session:
            entry = await AuditRepository(session).add(
                self._entry(action, target, intent, idempotency_key, before)
            )
        change = AuditedChange(target=target, after=intent)
        try:
            yield change
        except BaseException as error:
            if _changed_nothing(error):
                async with self.sessionmaker.begin() as session:
                    await AuditRepository(session).discard(entry.id)
            raise
        await complete_audit_entry(self.sessionmaker, entry, change)

    def _entry(
        self,
        action: str,
        target: str | None,
        intent: dict[str, Any] | None,
        idempotency_key: str | None,
        before: dict[str, Any] | None,
    ) -> AuditEntry:
        return AuditEntry(
            community_id=self.community_id,
            actor_account_id=self.actor.account_id,
            actor_api_key_id=self.actor.api_key_id,
            actor_whop_user_id=self.actor.whop_user_id,
            actor_discord_user_id=self.actor.discord_user_id,
            action=action,
            target=target,
            before=before,
            after=intent,
            request_id=request_id_var.get(),
            status=AUDIT_PENDING,
            idempotency_key=idempotency_key,
        )


async def complete_audit_entry(
    sessionmaker: async_sessionmaker[AsyncSession], entry: AuditEntry, change: AuditedChange
) -> None:
    """The second step: the pending entry gets the outcome. A retry of a change already
    recorded (same idempotency key) completes the earlier entry if it is still pending and
    drops its own, so one change is one entry; the state before is the answer's, else the one
    the completed entry was recorded with (read before its call)."""
    async with sessionmaker.begin() as session:
        audit = AuditRepository(session)
        earlier = (
            await audit.earlier_entry(
                entry.community_id, entry.action, entry.idempotency_key, newer_than=entry.id
            )
            if entry.idempotency_key is not None
            else None
        )
        if earlier is not None or not change.changed:
            await audit.discard(entry.id)
        if earlier is not None and earlier.status == AUDIT_PENDING:
            entry = earlier
        elif earlier is not None or not change.changed:
            return
        before = change.before if change.before is not None else entry.before
        await audit.complete(entry.id, target=change.target, before=before, after=change.after)


def _changed_nothing(error: BaseException) -> bool:
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code() not in _OUTCOME_UNKNOWN
    # The gateway's own refusals (validation, plan gates) happen before or instead of a call.
    return isinstance(error, ProblemError)


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
    """Adds one `done` entry, e.g. action="role.changed", target="account:<id>"."""
    await AuditRepository(session).add(
        AuditEntry(
            community_id=community_id,
            actor_account_id=actor.account_id,
            actor_api_key_id=actor.api_key_id,
            actor_whop_user_id=actor.whop_user_id,
            actor_discord_user_id=actor.discord_user_id,
            action=action,
            target=target,
            before=before,
            after=after,
            request_id=request_id_var.get(),
        )
    )


def provide_auditor(
    request: Request[Any, Any, Any], sessionmaker: NamedDependency[async_sessionmaker[AsyncSession]]
) -> Auditor:
    return Auditor(sessionmaker, provide_access(request))
