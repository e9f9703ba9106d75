"""Every SQL statement of the gateway."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_gateway.models import WebhookReceipt


class ReceiptRepository:
    """Webhook deliveries already acknowledged, per provider and delivery id."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, provider: str, webhook_id: str) -> bool:
        found = await self.session.scalar(
            select(WebhookReceipt.webhook_id).where(
                WebhookReceipt.provider == provider, WebhookReceipt.webhook_id == webhook_id
            )
        )
        return found is not None

    async def record(self, provider: str, webhook_id: str, event_type: str, outcome: str) -> None:
        """Keeps the first receipt of a delivery; a concurrent duplicate changes nothing."""
        await self.session.execute(
            insert(WebhookReceipt)
            .values(
                provider=provider, webhook_id=webhook_id, event_type=event_type, outcome=outcome
            )
            .on_conflict_do_nothing(
                index_elements=[WebhookReceipt.provider, WebhookReceipt.webhook_id]
            )
        )
