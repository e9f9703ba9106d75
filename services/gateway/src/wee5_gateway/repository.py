"""Every SQL statement of the gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from wee5_gateway.models import ApiKey, CommunityRole, WebhookReceipt


class ReceiptRepository:
    """Webhook deliveries already acknowledged, per provider and delivery id.

    Each method is one statement, run in autocommit: no BEGIN/COMMIT round trips on the
    webhook hot path, and a single statement is atomic on its own."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    @classmethod
    @asynccontextmanager
    async def open(cls, engine: AsyncEngine) -> AsyncIterator[ReceiptRepository]:
        async with engine.connect() as connection:
            yield cls(await connection.execution_options(isolation_level="AUTOCOMMIT"))

    async def exists(self, provider: str, webhook_id: str) -> bool:
        found = await self.connection.scalar(
            select(WebhookReceipt.webhook_id).where(
                WebhookReceipt.provider == provider, WebhookReceipt.webhook_id == webhook_id
            )
        )
        return found is not None

    async def record(self, provider: str, webhook_id: str, event_type: str, outcome: str) -> None:
        """Keeps the first receipt of a delivery; a concurrent duplicate changes nothing."""
        await self.connection.execute(
            insert(WebhookReceipt)
            .values(
                provider=provider, webhook_id=webhook_id, event_type=event_type, outcome=outcome
            )
            .on_conflict_do_nothing(
                index_elements=[WebhookReceipt.provider, WebhookReceipt.webhook_id]
            )
        )


class AccessRepository:
    """Roles and API keys, as the access checks read them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def role_of(
        self, community_id: str, account_id: uuid.UUID | None
    ) -> CommunityRole | None:
        if account_id is None:
            return None
        role: CommunityRole | None = await self.session.get(
            CommunityRole, (community_id, account_id)
        )
        return role

    async def use_api_key(self, key_hash: str) -> ApiKey | None:
        """The live key with this hash. Its last use is stamped at most once a minute, so a
        busy key costs one read per request, not a write."""
        key: ApiKey | None = await self.session.scalar(
            select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        )
        if key is not None and (
            key.last_used_at is None or key.last_used_at < datetime.now(UTC) - timedelta(minutes=1)
        ):
            await self.session.execute(
                update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=func.now())
            )
        return key
