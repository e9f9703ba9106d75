"""The rewards process's own metrics: rewards by status (read at scrape time) and the latency
and outcome of every call to Whop's API."""

from __future__ import annotations

from prometheus_client import Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_kit.metrics import LATENCY_BUCKETS, Probe, Reading
from wee5_rewards.models import REWARD_STATUSES
from wee5_rewards.repository import RewardsRepository

WHOP_CALLS = Histogram(
    "wee5_whop_call_seconds",
    "Calls to Whop's API by operation and outcome (ok, rate_limited, unreachable, no_answer, "
    "server_error, unauthorized, rejected); the _count of an outcome other than ok is errors.",
    ["operation", "outcome"],
    buckets=LATENCY_BUCKETS,
)

# Granted is where rewards end; the count that matters to an operator is the rest.
OPEN_STATUSES = tuple(status for status in REWARD_STATUSES if status != "granted")


def rewards_by_status_probe(sessionmaker: async_sessionmaker[AsyncSession]) -> Probe:
    """Rewards not granted (yet), by status: 0 for a status no reward is in, so an alert on
    `dead` sees the series from the start."""

    async def read() -> list[Reading]:
        async with sessionmaker() as session:
            counts = await RewardsRepository(session).open_rewards_by_status()
        return [
            Reading(
                "wee5_rewards",
                "Rewards not granted, by status (dead: the last attempt failed; waiting: no "
                "Whop key or Whop refused it; waiting_membership: no Whop membership known).",
                {"status": status},
                counts.get(status, 0),
            )
            for status in OPEN_STATUSES
        ]

    return read
