"""Applying rewards through Whop, exactly once.

Each free-days or discount-code reward is a small state machine:

    pending ─claim→ applying ─→ granted
                       │
                       ├─→ failed ─(backoff)→ applying …  ─(budget spent)→ dead ─(admin)→ pending
                       ├─→ waiting             (no Whop key, or Whop refused the key)
                       └─→ waiting_membership  (xp knows no membership yet; asked again later)

A worker claims due rewards with `SELECT … FOR UPDATE SKIP LOCKED` and marks them `applying`
with a lease (token + expiry), then calls Whop outside any transaction, then records the result
only if its lease is still the current one. A worker that dies mid-apply leaves the reward
`applying`; once the lease expires another worker claims it again.

Before every write to Whop an attempt row is committed. An attempt whose outcome never came
back (a timeout, a 5xx, or a crash) stays `unknown`/NULL, and the next attempt checks with Whop
before writing again: for free days it compares the membership's `renewal_period_end` with the
value the unknown attempt read before its call; for a discount code it looks the reward's
deterministic code up. So a call that timed out after Whop applied it is not applied twice.
The same `Idempotency-Key` (one per reward) goes with every write, for Whop to de-duplicate
where it supports that.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.events.v1 import events_pb2
from wee5_kit.events import Outbox, new_meta
from wee5_kit.logging import bound_contextvars, get_logger
from wee5_rewards.announcement_queue import Announcer
from wee5_rewards.memberships import KnownMembership, Memberships, MembershipUnavailable
from wee5_rewards.models import Reward, RewardAttempt
from wee5_rewards.repository import DeliveryRepository, Finish
from wee5_rewards.whop import (
    PromoCodeSpec,
    WhopClient,
    WhopError,
    WhopNotApplied,
    WhopOutcomeUnknown,
    WhopRejected,
    WhopUnauthorized,
)

log = get_logger("wee5.rewards.delivery")

NO_KEY = "WEE5_WHOP_API_KEY is not set: the reward waits until it is"
# Free days count as applied when the period end moved by at least this much less than the days.
_PERIOD_SLACK = timedelta(hours=1)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    lease_seconds: float = 120.0
    membership_recheck_seconds: float = 600.0
    # How often the worker looks for due work when nothing woke it.
    poll_seconds: float = 2.0

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after `attempts` failed ones: exponential, capped,
        with jitter (a random 50-100 %) so rewards that failed together do not retry together."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return float(ceiling * random.uniform(0.5, 1.0))


def promo_code_for(community_id: str, user_id: str, level: int) -> str:
    """The reward's code: the same on every attempt (so a retry can look it up first), and not
    guessable from the member's ids."""
    digest = hashlib.sha256(f"wee5:{community_id}:{user_id}:{level}".encode()).digest()
    return f"LVL{level}-" + base64.b32encode(digest).decode()[:10]


async def work_when_due(
    deliver_due: Callable[[], Awaitable[int]], wake: asyncio.Event, batch: int, poll: float
) -> None:
    """A worker's loop: a full batch is followed at once by the next; otherwise it waits for
    a wake-up (a commit that made work due) or `poll` seconds, whichever comes first."""
    while True:
        if await deliver_due() < batch:
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=poll)
            except TimeoutError:
                pass


def idempotency_key(reward_id: int) -> str:
    return f"wee5-reward-{reward_id}"


@dataclass
class Outcome:
    """What one attempt concluded."""

    result: str  # granted | already_applied | failed | unknown | rejected | unauthorized
    error: str | None = None
    http_status: int | None = None
    retry_after: float | None = None
    provider_ref: str | None = None
    expires_at: datetime | None = None
    before_period_end: datetime | None = None


class RewardDelivery:
    """The worker loop of the rewards process (several replicas may run it at once)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        events: Outbox,
        memberships: Memberships,
        whop: WhopClient | None,
        policy: RetryPolicy,
        *,
        company_id: str | None = None,
        batch: int = 10,
        announcer: Announcer | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.events = events
        self.announcer = announcer or Announcer(events=events)
        self.memberships = memberships
        self.whop = whop
        self.policy = policy
        self.company_id = company_id
        self.batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        if self.whop is not None:
            async with self.sessionmaker.begin() as session:
                resumed = await DeliveryRepository(session).resume_waiting()
            if resumed:
                log.info("rewards resumed now that a Whop key is set", count=resumed)
        else:
            log.warning("WEE5_WHOP_API_KEY is not set: free days and codes wait until it is")
        await work_when_due(self.deliver_due, self._wake, self.batch, self.policy.poll_seconds)

    async def deliver_due(self) -> int:
        """Claims up to `batch` due rewards and works on them concurrently; returns how many."""
        async with self.sessionmaker.begin() as session:
            claims = await DeliveryRepository(session).claim_due(
                self.batch, timedelta(seconds=self.policy.lease_seconds)
            )
        await asyncio.gather(*(self._deliver(reward) for reward in claims))
        return len(claims)

    async def _deliver(self, reward: Reward) -> None:
        with bound_contextvars(
            community_id=reward.community_id, reward_id=reward.id, user_id=reward.user_id
        ):
            try:
                await self._deliver_claimed(reward)
            except Exception:
                # The lease lapses and the reward is claimed again; its attempt stays unknown.
                log.exception("reward delivery crashed")

    async def _deliver_claimed(self, reward: Reward) -> None:
        token = reward.lease_token
        assert token is not None
        if self.whop is None:
            await self._finish(reward, Finish(status="waiting", error=NO_KEY))
            return
        membership = None
        if reward.kind == "free_days" or not (self.company_id or reward.company_id):
            try:
                membership = await self.memberships.of(reward.community_id, reward.user_id)
            except MembershipUnavailable as error:
                delay = self.policy.backoff(reward.budget_used + 1)
                await self._finish(
                    reward, Finish(status=_resting(reward), error=str(error), delay=delay)
                )
                return
            if membership is None:
                await self._finish(
                    reward,
                    Finish(
                        status="waiting_membership",
                        error="xp knows no Whop membership of this member yet",
                        delay=self.policy.membership_recheck_seconds,
                    ),
                )
                return
        async with self.sessionmaker() as session:
            history = await DeliveryRepository(session).attempts_of(reward.id)
        outcome = await self._attempt(reward, membership, history, token)
        if outcome is None:
            return
        await self._record(reward, outcome)

    async def _attempt(
        self,
        reward: Reward,
        membership: KnownMembership | None,
        history: list[RewardAttempt],
        token: uuid.UUID,
    ) -> Outcome | None:
        assert self.whop is not None
        unresolved = [a for a in history if a.outcome in (None, "unknown")]
        attempts_before = reward.attempts
        try:
            try:
                if reward.kind == "free_days":
                    assert membership is not None
                    return await self._free_days(reward, membership, unresolved, token)
                return await self._discount_code(reward, membership, history, unresolved, token)
            except WhopError:
                if reward.attempts == attempts_before:
                    # It failed on a read before the write: still an attempt, counted.
                    await self._start_attempt(reward, token, membership, None, None, {})
                raise
        except _LeaseLost:
            log.warning("lease lost before calling Whop; another worker has the reward")
            return None
        except WhopUnauthorized as error:
            return Outcome("unauthorized", error.message, error.http_status)
        except WhopRejected as error:
            return Outcome("rejected", error.message, error.http_status)
        except WhopOutcomeUnknown as error:
            return Outcome("unknown", error.message, error.http_status)
        except WhopNotApplied as error:
            return Outcome("failed", error.message, error.http_status, error.retry_after)

    async def _start_attempt(
        self,
        reward: Reward,
        token: uuid.UUID,
        membership: KnownMembership | None,
        before_period_end: datetime | None,
        company_id: str | None,
        settled: dict[int, str],
    ) -> None:
        """Commits the attempt row (and settles earlier unknown attempts) before Whop is
        written to, under the lease; `_LeaseLost` when another worker took the reward over."""
        async with self.sessionmaker.begin() as session:
            number = await DeliveryRepository(session).start_attempt(
                reward.id,
                token,
                settled=settled,
                membership_id=membership.membership_id if membership else None,
                company_id=company_id,
                code=reward.code,
                before_period_end=before_period_end,
            )
        if number is None:
            raise _LeaseLost()
        reward.attempts = number
        reward.budget_used += 1

    async def _free_days(
        self,
        reward: Reward,
        membership: KnownMembership,
        unresolved: list[RewardAttempt],
        token: uuid.UUID,
    ) -> Outcome:
        assert self.whop is not None
        assert reward.free_days is not None
        current = await self.whop.get_membership(membership.membership_id)
        end = current.renewal_period_end
        days = timedelta(days=reward.free_days)
        for attempt in unresolved:
            before = attempt.before_period_end
            if before is not None and end is not None and end >= before + days - _PERIOD_SLACK:
                # That attempt reached Whop and was applied: record it, do not add again.
                await self._start_attempt(
                    reward, token, membership, before, None, {attempt.id: "applied"}
                )
                return Outcome(
                    "already_applied",
                    provider_ref=membership.membership_id,
                    before_period_end=before,
                )
        if unresolved and end is None:
            # Nothing to compare with: adding again could double the reward. A person decides.
            await self._start_attempt(reward, token, membership, None, None, {})
            return Outcome(
                "rejected",
                "an earlier attempt may have been applied and the membership has no "
                "renewal_period_end to check it against; check it in Whop, then retry",
            )
        # The unknown attempts did not apply (the period end did not move): settled as such.
        await self._start_attempt(
            reward, token, membership, end, None, {a.id: "not_applied" for a in unresolved}
        )
        await self.whop.add_free_days(
            membership.membership_id, reward.free_days, idempotency_key=idempotency_key(reward.id)
        )
        return Outcome("granted", provider_ref=membership.membership_id, before_period_end=end)

    async def _discount_code(
        self,
        reward: Reward,
        membership: KnownMembership | None,
        history: list[RewardAttempt],
        unresolved: list[RewardAttempt],
        token: uuid.UUID,
    ) -> Outcome:
        assert self.whop is not None
        company_id = self.company_id or reward.company_id or (membership and membership.company_id)
        if not company_id:
            return Outcome("rejected", "no Whop company to create the code in")
        code = reward.code or promo_code_for(reward.community_id, reward.user_id, reward.level)
        reward.code = code
        since = (history[0].started_at if history else datetime.now(UTC)) - timedelta(days=1)
        if unresolved:
            found = await self.whop.find_promo_code(company_id, code, created_after=since)
            if found is not None:
                await self._start_attempt(
                    reward,
                    token,
                    membership,
                    None,
                    company_id,
                    {a.id: "applied" for a in unresolved},
                )
                return Outcome("already_applied", provider_ref=found.id)
        await self._start_attempt(
            reward, token, membership, None, company_id, {a.id: "not_applied" for a in unresolved}
        )
        expires_at = None
        if reward.expires_in_days:
            expires_at = datetime.now(UTC) + timedelta(days=reward.expires_in_days)
        percent = reward.discount_type != "flat"
        spec = PromoCodeSpec(
            code=code,
            company_id=company_id,
            promo_type="percentage" if percent else "flat_amount",
            amount_off=float(reward.discount_percent or 0)
            if percent
            else (reward.amount_off_minor or 0) / 100,
            base_currency=(reward.currency or "usd").lower(),
            promo_duration_months=reward.duration_months or 1,
            expires_at=expires_at,
        )
        try:
            promo = await self.whop.create_promo_code(
                spec, idempotency_key=idempotency_key(reward.id)
            )
        except WhopRejected:
            # "Code taken" after an earlier attempt got through unnoticed: it is ours.
            found = await self.whop.find_promo_code(company_id, code, created_after=since)
            if found is None:
                raise
            return Outcome("already_applied", provider_ref=found.id)
        return Outcome("granted", provider_ref=promo.id, expires_at=expires_at)

    async def _record(self, reward: Reward, outcome: Outcome) -> None:
        if outcome.result in ("granted", "already_applied"):
            finish = Finish(
                status="granted",
                outcome=outcome.result,
                provider_ref=outcome.provider_ref,
                expires_at=outcome.expires_at,
                code=reward.code,
            )
        elif outcome.result == "unauthorized":
            finish = Finish(
                status="waiting",
                outcome="rejected",
                error=f"{outcome.error} (fix WEE5_WHOP_API_KEY, then retry)",
                http_status=outcome.http_status,
            )
        elif outcome.result == "rejected" or reward.budget_used >= self.policy.max_attempts:
            finish = Finish(
                status="dead",
                outcome=outcome.result,
                error=outcome.error,
                http_status=outcome.http_status,
            )
        else:
            delay = max(self.policy.backoff(reward.budget_used), outcome.retry_after or 0.0)
            finish = Finish(
                status="failed",
                outcome=outcome.result,
                error=outcome.error,
                http_status=outcome.http_status,
                delay=delay,
            )
        await self._finish(reward, finish)
        log_method = log.info if finish.status == "granted" else log.warning
        log_method(
            "reward attempt finished",
            status=finish.status,
            outcome=outcome.result,
            attempt=reward.attempts,
            error=outcome.error,
        )

    async def _finish(self, reward: Reward, finish: Finish) -> None:
        assert reward.lease_token is not None
        async with self.sessionmaker.begin() as session:
            applied = await DeliveryRepository(session).finish(
                reward.id, reward.lease_token, finish
            )
            if applied and finish.status == "granted":
                event = events_pb2.RewardGranted(
                    meta=new_meta(reward.community_id),
                    user_id=reward.user_id,
                    reward_id=str(reward.id),
                    level=reward.level,
                    kind=reward.kind,
                )
                await self.events.add(session, "rewards.granted", event)
                await self.announcer.reward(session, reward)
        if not applied:
            log.warning("lease lost; another worker recorded this reward", status=finish.status)


class _LeaseLost(Exception):
    pass


def _resting(reward: Reward) -> str:
    """The state a reward goes back to when nothing was attempted."""
    return "failed" if reward.budget_used else "pending"
