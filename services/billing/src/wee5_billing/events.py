"""What billing consumes: `xp.community_company`, xp's word (from Whop's signed webhook
envelopes) on which Whop company a community belongs to. Handled once per event id."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.events.v1 import events_pb2
from wee5_billing.companies import Companies
from wee5_billing.models import processed_events
from wee5_kit.events import Consumer, EventBus, occurred_at

COMMUNITY_COMPANY = "xp.community_company"


def community_company_consumer(
    bus: EventBus, sessionmaker: async_sessionmaker[AsyncSession], companies: Companies
) -> Consumer[events_pb2.CommunityCompany]:
    async def on_event(session: AsyncSession, event: events_pb2.CommunityCompany) -> None:
        await companies.learn_whop_company(
            session,
            event.meta.community_id,
            event.company_id,
            occurred_at(event.meta),
            datetime.now(UTC),
        )

    return Consumer(
        bus=bus,
        sessionmaker=sessionmaker,
        processed=processed_events,
        name="billing-community-company",
        subject=COMMUNITY_COMPANY,
        message_type=events_pb2.CommunityCompany,
        handler=on_event,
    )
