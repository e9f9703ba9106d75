"""CronJob entry points of billing: `python -m wee5_billing.tasks <job>`.

`billing-checks` (daily): communities past due beyond their grace period drop to free (each
announced as `billing.subscription.changed` and recorded in `billing.subscription_changes`),
a community's own enterprise subscription moves to its company when the company holds none
(the migration of per-community enterprise subscriptions, for any link the moment of joining
missed), every community's WEE5 group is announced to xp again (`billing.community_group`), then every Stripe subscription is compared with the local state and drift is repaired. It
prints one JSON report of what it changed and exits non-zero on failure. Two runs at once are
safe: the second finds the advisory lock taken and exits 0 without doing anything.

Events are written to billing's outbox; the billing service's relay publishes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_billing.companies import Companies
from wee5_billing.config import BillingSettings
from wee5_billing.models import outbox
from wee5_billing.repository import BillingRepository
from wee5_billing.stripe_api import StripeApi
from wee5_billing.stripe_events import Repair, StripeEvents
from wee5_kit import logging, sentry
from wee5_kit.db import create_engine, create_sessionmaker, exclusive
from wee5_kit.events import Outbox
from wee5_kit.queries import advisory_lock_key

log = logging.get_logger("wee5.billing.tasks")

LOCK_ID = advisory_lock_key("wee5-billing-checks")


@dataclass
class ChecksReport:
    ran: bool = True
    # Communities dropped to free for being past due beyond their grace period.
    lapsed: list[str] = field(default_factory=list)
    # Whether the reconciliation ran (it needs WEE5_STRIPE_SECRET_KEY), what it saw and fixed.
    reconciled: bool = False
    stripe_subscriptions: int = 0
    repaired: list[dict[str, Any]] = field(default_factory=list)
    # Local subscriptions Stripe does not list at all (left as they are; worth a look).
    missing_in_stripe: list[str] = field(default_factory=list)
    # Communities' own enterprise subscriptions moved to their company (e.g. upgraded to
    # enterprise in the billing portal after their company became known).
    moved_to_companies: list[dict[str, str]] = field(default_factory=list)
    # Communities whose WEE5 group was announced to xp again (`billing.community_group`).
    groups_announced: int = 0


async def billing_checks(
    settings: BillingSettings,
    *,
    now: datetime | None = None,
    stripe: StripeApi | None = None,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> ChecksReport:
    """One run of the daily checks. `now` lets tests run it as of another day."""
    engine = create_engine(settings.database_url, pool_size=2)
    sessions = sessionmaker or create_sessionmaker(engine)
    own_stripe = stripe is None
    stripe = stripe or StripeApi(settings)
    service = StripeEvents(Outbox(outbox), settings, stripe)
    try:
        async with exclusive(engine, LOCK_ID) as held:
            if not held:
                log.info("billing checks already running elsewhere; nothing to do")
                return ChecksReport(ran=False)
            return await _run(service, sessions, stripe, now or datetime.now(UTC))
    finally:
        if own_stripe:
            await stripe.close()
        await engine.dispose()


async def _run(
    service: StripeEvents,
    sessions: async_sessionmaker[AsyncSession],
    stripe: StripeApi,
    now: datetime,
) -> ChecksReport:
    report = ChecksReport()
    async with sessions.begin() as session:
        report.lapsed = await service.lapse_overdue(session, now)
    async with sessions.begin() as session:
        report.moved_to_companies = await Companies(service.changes).move_all(session, now)
    async with sessions.begin() as session:
        report.groups_announced = await Companies(service.changes).announce_groups(session)
    for community_id in report.lapsed:
        log.info("community dropped to free: past due beyond grace", community_id=community_id)
    if not stripe.configured:
        log.warning("reconciliation skipped: WEE5_STRIPE_SECRET_KEY is unset")
        return report
    async with sessions() as session:
        local = await BillingRepository(session).stripe_subscription_ids()
    seen: set[str] = set()
    async for data in stripe.subscriptions():
        report.stripe_subscriptions += 1
        seen.add(data.id)
        # One transaction per subscription: a failure keeps the repairs made before it.
        async with sessions.begin() as session:
            repair: Repair | None = await service.reconcile_one(session, data, now)
        if repair is not None:
            log.info("subscription repaired from Stripe", community_id=repair.community_id)
            report.repaired.append(asdict(repair))
    report.missing_in_stripe = sorted(
        community for subscription_id, community in local.items() if subscription_id not in seen
    )
    report.reconciled = True
    return report


Job = Callable[[BillingSettings], Coroutine[Any, Any, ChecksReport]]
JOBS: dict[str, Job] = {
    "billing-checks": billing_checks,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wee5_billing.tasks")
    parser.add_argument("job", choices=sorted(JOBS))
    args = parser.parse_args(argv)
    settings = BillingSettings()
    logging.configure("billing-tasks", settings.log_level, extra=sentry.log_processors())
    try:
        report = asyncio.run(sentry.reporting_errors("billing-tasks", JOBS[args.job](settings)))
    except Exception:
        log.exception("task failed", job=args.job)
        return 1
    print(json.dumps({"job": args.job, **asdict(report)}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
