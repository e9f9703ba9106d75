"""The history of a community's subscription and the `billing.subscription.changed` event.

Every change of a subscription row (Stripe events, reconciliation, the lapse of a grace
period) is recorded in `billing.subscription_changes` with what it was before and after; what
the community gets changing (plan, status or period end) is announced in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_billing.coverage import coverage_of
from wee5_billing.models import ACTIVE, COMPANY, CommunityPlan, Subscription, SubscriptionChange
from wee5_billing.plans import Plan, effective_plan
from wee5_billing.repository import BillingRepository
from wee5_kit.events import Outbox, new_meta
from wee5_kit.proto import optional_timestamp

SUBSCRIPTION_CHANGED = "billing.subscription.changed"
MAX_REASON = 500
# What a subscriber sees change; history records any change, only these are announced.
_ANNOUNCED = ("effective_plan", "status", "current_period_end")


@dataclass(frozen=True)
class Cause:
    """Why a subscription row changed, as its history row records it."""

    source: str  # stripe_event | reconciliation | billing_checks
    stripe_event_id: str | None
    reason: str


@dataclass(frozen=True)
class Before:
    """A community's subscription as it stood before a change."""

    assignment: CommunityPlan | None
    state: dict[str, Any] | None

    @classmethod
    def of(cls, row: Subscription | None, assignment: CommunityPlan | None, at: datetime) -> Before:
        """The row and assignment as they stand, with the plan in effect at `at`."""
        return cls(assignment, subscription_state(row, effective_plan(assignment, row, at)))


def subscription_state(row: Subscription | None, effective: Plan) -> dict[str, Any] | None:
    """A subscription as history rows record it."""
    if row is None:
        return None
    return {
        "stripe_subscription_id": row.stripe_subscription_id,
        "plan": row.plan,
        "interval": row.interval,
        "status": row.status,
        "current_period_end": iso(row.current_period_end),
        "cancel_at_period_end": row.cancel_at_period_end,
        "grace_until": iso(row.grace_until),
        "lapsed": row.lapsed_at is not None,
        "effective_plan": effective.key,
    }


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class SubscriptionChanges:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def record(
        self,
        session: AsyncSession,
        row: Subscription,
        before: Before,
        cause: Cause,
        now: datetime,
    ) -> None:
        """History for any change of the row; `billing.subscription.changed` when what the
        community gets (plan, status or period end) changed."""
        effective = effective_plan(before.assignment, row, now)
        after = subscription_state(row, effective)
        assert after is not None
        if before.state == after:
            return
        await BillingRepository(session).add_change(
            SubscriptionChange(
                community_id=row.community_id,
                source=cause.source,
                stripe_event_id=cause.stripe_event_id,
                reason=cause.reason[:MAX_REASON],
                before=before.state,
                after=after,
            )
        )
        if before.state is None or any(before.state[key] != after[key] for key in _ANNOUNCED):
            await self.announce_holder(session, row, now)

    async def announce_holder(
        self, session: AsyncSession, row: Subscription, now: datetime
    ) -> None:
        """Announces the change of `row` to what it covers: its community, or every community
        of its company."""
        if row.holder != COMPANY:
            await self.announce(session, row.community_id, now)
            return
        for community_id in await BillingRepository(session).communities_of(row.community_id):
            await self.announce(session, community_id, now)

    async def announce(
        self, session: AsyncSession, community_id: str, now: datetime, left: str | None = None
    ) -> None:
        """Queues `billing.subscription.changed`: the plan in effect now for the community
        (its own or its company's, the dearer) and the status of the subscription giving it.
        Every gateway drops its cached entitlements of the community (and of its company, or
        of the company it `left`) on it."""
        coverage = await coverage_of(BillingRepository(session), community_id)
        row = coverage.paying(now)
        event = events_pb2.SubscriptionChanged(
            meta=new_meta(community_id),
            plan=coverage.plan(now).key,
            status=row.status if row else ACTIVE,
            current_period_end=optional_timestamp(row.current_period_end if row else None),
            company_id=left or coverage.company_id or "",
        )
        await self.outbox.add(session, SUBSCRIPTION_CHANGED, event)
