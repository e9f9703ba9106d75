"""Every SQL statement of the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wee5_gateway.models import WebhookReceipt


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
