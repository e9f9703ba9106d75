"""Every SQL statement of the billing service."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_billing.models import (
    PAST_DUE_STATUSES,
    CommunityPlan,
    Company,
    CompanyCommunity,
    Customer,
    StripeEvent,
    Subscription,
    SubscriptionChange,
    outbox,
)


class BillingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_plan(self, community_id: str) -> CommunityPlan | None:
        plan: CommunityPlan | None = await self.session.scalar(
            select(CommunityPlan).where(CommunityPlan.community_id == community_id)
        )
        return plan

    async def lock_plan(self, community_id: str, default_plan: str, assigned_by: str) -> str:
        """The community's current plan, with its row locked until the transaction ends.

        A community without a row gets one on `default_plan` first, so that two concurrent
        first assignments queue on the same row lock instead of both reading "no plan yet"."""
        await self.session.execute(
            insert(CommunityPlan)
            .values(
                community_id=community_id, plan=default_plan, assigned_by=assigned_by, reason=""
            )
            .on_conflict_do_nothing(index_elements=[CommunityPlan.community_id])
        )
        current: str = (
            await self.session.execute(
                select(CommunityPlan.plan)
                .where(CommunityPlan.community_id == community_id)
                .with_for_update()
            )
        ).scalar_one()
        return current

    async def assign_plan(
        self, community_id: str, plan: str, assigned_by: str, reason: str
    ) -> CommunityPlan:
        assigned: CommunityPlan = (
            await self.session.scalars(
                update(CommunityPlan)
                .where(CommunityPlan.community_id == community_id)
                .values(plan=plan, assigned_by=assigned_by, reason=reason, updated_at=func.now())
                .returning(CommunityPlan),
                execution_options={"populate_existing": True},
            )
        ).one()
        return assigned

    # --- Stripe customers -------------------------------------------------------------

    async def customer_of(self, owner_account_id: str) -> str | None:
        customer_id: str | None = await self.session.scalar(
            select(Customer.stripe_customer_id).where(Customer.owner_account_id == owner_account_id)
        )
        return customer_id

    async def save_customer(self, owner_account_id: str, stripe_customer_id: str) -> str:
        """Keeps the first customer stored for the account (a concurrent checkout may have
        stored the same one: both used the same idempotency key) and returns it."""
        await self.session.execute(
            insert(Customer)
            .values(owner_account_id=owner_account_id, stripe_customer_id=stripe_customer_id)
            .on_conflict_do_nothing(index_elements=[Customer.owner_account_id])
        )
        stored = await self.customer_of(owner_account_id)
        assert stored is not None
        return stored

    # --- subscriptions ----------------------------------------------------------------

    async def subscription(self, community_id: str) -> Subscription | None:
        row: Subscription | None = await self.session.scalar(
            select(Subscription).where(Subscription.community_id == community_id)
        )
        return row

    async def lock_subscription(self, community_id: str) -> Subscription | None:
        """The community's subscription row, locked until the transaction ends. A community
        without one is locked too (advisory lock), so two first events queue instead of both
        inserting."""
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"billing:{community_id}", 0)))
        )
        row: Subscription | None = await self.session.scalar(
            select(Subscription)
            .where(Subscription.community_id == community_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return row

    async def lock_subscription_by_stripe_id(
        self, stripe_subscription_id: str
    ) -> Subscription | None:
        row: Subscription | None = await self.session.scalar(
            select(Subscription)
            .where(Subscription.stripe_subscription_id == stripe_subscription_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return row

    async def community_of_subscription(self, stripe_subscription_id: str) -> str | None:
        community_id: str | None = await self.session.scalar(
            select(Subscription.community_id).where(
                Subscription.stripe_subscription_id == stripe_subscription_id
            )
        )
        return community_id

    async def add_subscription(self, row: Subscription) -> None:
        self.session.add(row)
        await self.session.flush()

    async def drop_subscription(self, row: Subscription) -> None:
        """Removes a community's row so that a newer subscription can take its place."""
        await self.session.delete(row)
        await self.session.flush()

    async def lock_overdue(self, now: datetime) -> list[Subscription]:
        """Past-due subscriptions whose grace ended and that are not lapsed yet, locked
        (skipping rows another run holds)."""
        rows = await self.session.scalars(
            select(Subscription)
            .where(
                Subscription.status.in_(PAST_DUE_STATUSES),
                Subscription.lapsed_at.is_(None),
                Subscription.grace_until <= now,
            )
            .order_by(Subscription.community_id)
            .with_for_update(skip_locked=True)
        )
        return list(rows)

    async def stripe_subscription_ids(self) -> dict[str, str]:
        """stripe subscription id → community id, for every community with one."""
        rows = await self.session.execute(
            select(Subscription.stripe_subscription_id, Subscription.community_id)
        )
        return {row.stripe_subscription_id: row.community_id for row in rows}

    async def move_subscription(
        self, row: Subscription, holder_id: str, holder: str, owner_community_id: str | None
    ) -> None:
        """Makes `row` pay for `holder_id` (a company, when a community's own enterprise
        subscription becomes its company's). The caller holds both ids' locks."""
        row.community_id = holder_id
        row.holder = holder
        row.owner_community_id = owner_community_id
        await self.session.flush()

    # --- companies --------------------------------------------------------------------

    async def company(self, company_id: str) -> Company | None:
        found: Company | None = await self.session.scalar(
            select(Company).where(Company.company_id == company_id)
        )
        return found

    async def add_company(
        self, company_id: str, kind: str, owner_account_id: str, name: str
    ) -> None:
        """Records the company unless it is known (a Whop company is learned many times)."""
        await self.session.execute(
            insert(Company)
            .values(company_id=company_id, kind=kind, owner_account_id=owner_account_id, name=name)
            .on_conflict_do_nothing(index_elements=[Company.company_id])
        )

    async def company_of(self, community_id: str) -> str | None:
        company_id: str | None = await self.session.scalar(
            select(CompanyCommunity.company_id).where(CompanyCommunity.community_id == community_id)
        )
        return company_id

    async def company_link(self, community_id: str) -> CompanyCommunity | None:
        link: CompanyCommunity | None = await self.session.scalar(
            select(CompanyCommunity).where(CompanyCommunity.community_id == community_id)
        )
        return link

    async def link_company(
        self, community_id: str, company_id: str, learned_at: datetime | None
    ) -> None:
        statement = insert(CompanyCommunity).values(
            community_id=community_id, company_id=company_id, learned_at=learned_at
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[CompanyCommunity.community_id],
                set_={
                    "company_id": statement.excluded.company_id,
                    "learned_at": statement.excluded.learned_at,
                    "updated_at": func.now(),
                },
            )
        )

    async def unlink_company(self, community_id: str) -> None:
        await self.session.execute(
            delete(CompanyCommunity).where(CompanyCommunity.community_id == community_id)
        )

    async def communities_of(self, company_id: str) -> list[str]:
        rows = await self.session.scalars(
            select(CompanyCommunity.community_id)
            .where(CompanyCommunity.company_id == company_id)
            .order_by(CompanyCommunity.community_id)
        )
        return list(rows)

    async def company_links(self) -> list[tuple[str, str]]:
        """Every (community, company) pair, for the company-plans task."""
        rows = await self.session.execute(
            select(CompanyCommunity.community_id, CompanyCommunity.company_id).order_by(
                CompanyCommunity.community_id
            )
        )
        return [(row.community_id, row.company_id) for row in rows]

    # --- Stripe events and history ----------------------------------------------------

    async def claim_event(self, event_id: str, event_type: str, created: datetime) -> bool:
        """Records the event; False if it was recorded before (a redelivery). A concurrent
        delivery of the same event waits here for the first one's transaction to end."""
        claimed = await self.session.scalar(
            insert(StripeEvent)
            .values(
                event_id=event_id,
                type=event_type,
                stripe_created_at=created,
                outcome="received",
            )
            .on_conflict_do_nothing(index_elements=[StripeEvent.event_id])
            .returning(StripeEvent.event_id)
        )
        return claimed is not None

    async def finish_event(self, event_id: str, community_id: str | None, outcome: str) -> None:
        await self.session.execute(
            update(StripeEvent)
            .where(StripeEvent.event_id == event_id)
            .values(community_id=community_id, outcome=outcome)
        )

    async def event_queued(self, event_id: uuid.UUID) -> bool:
        """True if an event with this id is in the outbox (published or not, until pruned)."""
        found = await self.session.scalar(select(outbox.c.id).where(outbox.c.event_id == event_id))
        return found is not None

    async def add_change(self, change: SubscriptionChange) -> None:
        self.session.add(change)
        await self.session.flush()

    async def changes(self, community_id: str) -> list[SubscriptionChange]:
        rows = await self.session.scalars(
            select(SubscriptionChange)
            .where(SubscriptionChange.community_id == community_id)
            .order_by(SubscriptionChange.id)
        )
        return list(rows)
