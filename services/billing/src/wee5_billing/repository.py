"""Every SQL statement of the billing service."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_billing.models import CommunityPlan


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
