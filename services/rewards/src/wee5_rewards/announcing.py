"""Sending announcements, exactly once, never in the way of XP or rewards.

An announcement is created in the transaction of what it announces (the level-up event's, the
reward's grant), at most once per (community, member, event, target): a unique row, so a
level-up delivered twice, or two that overlap, announce once. Creating it reads nothing but
the community's settings; everything else (the member's name, rank, XP) is read when it is
sent, by the worker below, outside every transaction that awards or rewards.

The worker is the rewards' cycle again (see delivery.py): claim due rows under a lease, commit
an attempt row before calling the provider, record the outcome only while the lease holds,
back off with jitter, dead after `max_attempts`, an admin retry makes it due again. Whop's
`POST /messages` takes no idempotency key, so after an attempt whose outcome never came back
the next one first reads the channel's latest messages and counts the text as sent if it is
there. Push notifications cannot be looked up: an unknown outcome is retried (at most once
more than needed, never lost). Discord messages (a channel of the bound server, or a DM to the
member) carry the announcement's nonce with `enforce_nonce`: a retry within Discord's nonce
window (a few minutes) gets back the message the lost attempt created instead of a second one.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_kit.discord_rest import DiscordClient, DiscordRejected, DiscordRetryable
from wee5_kit.logging import bound_contextvars, get_logger
from wee5_kit.provider_ids import is_snowflake
from wee5_rewards.announcement_queue import (
    NO_DISCORD_BOT,
    OLD_NO_DISCORD_BOT,
    SUMMARY_KIND,
    member_of,
    template_values,
)
from wee5_rewards.announcements import Target, render
from wee5_rewards.delivery import NO_KEY, RetryPolicy, work_when_due
from wee5_rewards.models import Announcement, AnnouncementAttempt
from wee5_rewards.repository import AnnouncementRepository, Finish
from wee5_rewards.whop import (
    WhopClient,
    WhopError,
    WhopNotApplied,
    WhopOutcomeUnknown,
    WhopRejected,
    WhopUnauthorized,
)

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

log = get_logger("wee5.rewards.announcing")

PUSH_TITLE = "🎉 Level up"


class AnnouncementDelivery:
    """The announcement worker of the rewards process (replicas may run it at once)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        whop: WhopClient | None,
        xp: XpServiceAsyncStub,
        policy: RetryPolicy,
        *,
        discord: DiscordClient | None = None,
        batch: int = 10,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.whop = whop
        self.discord = discord
        self.xp = xp
        self.policy = policy
        self.batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        waited = [NO_KEY] if self.whop is not None else []
        if self.discord is not None:
            waited += [NO_DISCORD_BOT, OLD_NO_DISCORD_BOT]
        for reason in waited:
            async with self.sessionmaker.begin() as session:
                resumed = await AnnouncementRepository(session).resume_waiting(reason)
            if resumed:
                log.info("announcements resumed", count=resumed, waited_for=reason)
        await work_when_due(self.deliver_due, self._wake, self.batch, self.policy.poll_seconds)

    async def deliver_due(self) -> int:
        async with self.sessionmaker.begin() as session:
            claims = await AnnouncementRepository(session).claim_due(
                self.batch, timedelta(seconds=self.policy.lease_seconds)
            )
        await asyncio.gather(*(self._deliver(announcement) for announcement in claims))
        return len(claims)

    async def _deliver(self, announcement: Announcement) -> None:
        with bound_contextvars(
            community_id=announcement.community_id,
            announcement_id=announcement.id,
            user_id=announcement.user_id,
        ):
            try:
                await self._deliver_claimed(announcement)
            except Exception:
                # The lease lapses and the announcement is claimed again.
                log.exception("announcement delivery crashed")

    async def _deliver_claimed(self, announcement: Announcement) -> None:
        token = announcement.lease_token
        assert token is not None
        discord = Target(announcement.target).discord
        if discord and self.discord is None:
            await self._finish(announcement, "waiting", Finish("waiting", error=NO_DISCORD_BOT))
            return
        if not discord and self.whop is None:
            await self._finish(announcement, "waiting", Finish("waiting", error=NO_KEY))
            return
        try:
            text = announcement.text or await self._render(announcement)
        except grpc.aio.AioRpcError as error:
            delay = self.policy.backoff(announcement.budget_used + 1)
            status = "failed" if announcement.budget_used else "pending"
            await self._finish(
                announcement,
                status,
                Finish(status, error=f"xp unavailable: {error.code().name}", delay=delay),
            )
            return
        async with self.sessionmaker() as session:
            history = await AnnouncementRepository(session).attempts(announcement.id)
        unresolved = [a for a in history if a.outcome in (None, "unknown")]
        if discord:
            outcome = await self._attempt_discord(announcement, text, unresolved, token)
        else:
            outcome = await self._attempt(announcement, text, unresolved, token)
        if outcome is not None:
            await self._record(announcement, outcome)

    async def _render(self, announcement: Announcement) -> str:
        """The text from the template, the facts it was created with, and the member as xp
        knows them now (name, rank, XP to the next level)."""
        target = Target(announcement.target)
        facts = announcement.facts or {}
        if announcement.kind == SUMMARY_KIND:
            count = int(facts.get("count", 0))
            return render(announcement.template, {"count": f"{count:,}"}, target)
        facts = {"community": announcement.community_id, **facts}
        member = await member_of(self.xp, announcement.community_id, announcement.user_id)
        values = template_values(facts, member, announcement.user_id, target)
        return render(announcement.template, values, target).strip()

    async def _attempt(
        self,
        announcement: Announcement,
        text: str,
        unresolved: list[AnnouncementAttempt],
        token: uuid.UUID,
    ) -> Finish | None:
        """Sends (after checking that an attempt whose outcome never came back did not send
        it already); None when the lease was lost before anything was sent."""
        assert self.whop is not None
        target = Target(announcement.target)
        channel = announcement.channel_id or announcement.community_id
        attempts_before = announcement.attempts
        try:
            if unresolved and target is not Target.WHOP_PUSH:
                found = await self._already_posted(channel, text)
                if found:
                    if not await self._start(announcement, token, text, unresolved, "sent"):
                        return None
                    return Finish("sent", outcome="already_sent", provider_ref=found)
            if not await self._start(announcement, token, text, unresolved, "not_sent"):
                return None
            if target is Target.WHOP_PUSH:
                await self.whop.send_notification(channel, PUSH_TITLE, text, [announcement.user_id])
                return Finish("sent", outcome="sent")
            message_id = await self.whop.post_message(channel, text)
            return Finish("sent", outcome="sent", provider_ref=message_id or None)
        except WhopError as error:
            # Failed on the read before the send: still an attempt, counted.
            counted = announcement.attempts != attempts_before
            if not counted and not await self._start(announcement, token, text, [], ""):
                return None
            return _failure(error)

    async def _attempt_discord(
        self,
        announcement: Announcement,
        text: str,
        unresolved: list[AnnouncementAttempt],
        token: uuid.UUID,
    ) -> Finish | None:
        """Posts in the community's Discord channel, or in a DM to the member; the nonce makes
        a retry after a lost answer find the message instead of posting it again."""
        assert self.discord is not None
        # A retry repeats the nonce: what an unresolved attempt did, this one finds.
        if not await self._start(announcement, token, text, unresolved, "unknown"):
            return None
        member = announcement.user_id
        try:
            if Target(announcement.target) is Target.DISCORD_DM:
                if not is_snowflake(member):
                    return Finish(
                        "dead",
                        outcome="rejected",
                        error=f"{member} is not a Discord user: a DM needs the member's Discord id",
                    )
                channel = await self.discord.open_dm(member)
            else:
                channel = announcement.channel_id or ""
            message_id = await self.discord.post_message(
                channel,
                text,
                nonce=f"wee5-a{announcement.id}",
                mention=member if is_snowflake(member) else None,
            )
        except DiscordRejected as error:
            return Finish("dead", outcome="rejected", error=str(error))
        except DiscordRetryable as error:
            return Finish("failed", outcome="unknown", error=str(error), delay=error.retry_after)
        return Finish("sent", outcome="sent", provider_ref=message_id)

    async def _already_posted(self, channel: str, text: str) -> str | None:
        """The id of a message in the channel's latest ones with exactly this text."""
        assert self.whop is not None
        for message in await self.whop.recent_messages(channel):
            if message.get("content") == text:
                return str(message.get("id") or "") or "found"
        return None

    async def _start(
        self,
        announcement: Announcement,
        token: uuid.UUID,
        text: str,
        unresolved: list[AnnouncementAttempt],
        settle_as: str,
    ) -> bool:
        async with self.sessionmaker.begin() as session:
            number = await AnnouncementRepository(session).start_attempt(
                announcement.id, token, text, {a.id: settle_as for a in unresolved}
            )
        if number is None:
            log.warning("lease lost; another worker has the announcement")
            return False
        announcement.attempts = number
        announcement.budget_used += 1
        return True

    async def _record(self, announcement: Announcement, finish: Finish) -> None:
        status = finish.status
        if status == "failed":
            if announcement.budget_used >= self.policy.max_attempts:
                status = "dead"
            else:
                backoff = self.policy.backoff(announcement.budget_used)
                finish = replace(finish, delay=max(backoff, finish.delay or 0.0))
        await self._finish(announcement, status, finish)
        (log.info if status == "sent" else log.warning)(
            "announcement attempt finished",
            status=status,
            outcome=finish.outcome,
            attempt=announcement.attempts,
            error=finish.error,
        )

    async def _finish(self, announcement: Announcement, status: str, finish: Finish) -> None:
        assert announcement.lease_token is not None
        async with self.sessionmaker.begin() as session:
            recorded = await AnnouncementRepository(session).finish(
                announcement.id, announcement.lease_token, status, finish
            )
        if not recorded:
            log.warning("lease lost; another worker recorded this announcement")


def _failure(error: WhopError) -> Finish:
    """What a Whop error means for the announcement: wait for an operator (the key), dead
    (Whop will not do it), or retry (nothing sent, or maybe sent: checked next time)."""
    if isinstance(error, WhopUnauthorized):
        return Finish(
            "waiting",
            outcome="rejected",
            error=f"{error.message} (fix WEE5_WHOP_API_KEY, then retry)",
            http_status=error.http_status,
        )
    if isinstance(error, WhopRejected):
        return Finish(
            "dead", outcome="rejected", error=error.message, http_status=error.http_status
        )
    if isinstance(error, WhopOutcomeUnknown):
        return Finish(
            "failed", outcome="unknown", error=error.message, http_status=error.http_status
        )
    retry_after = error.retry_after if isinstance(error, WhopNotApplied) else None
    return Finish(
        "failed",
        outcome="failed",
        error=error.message,
        http_status=error.http_status,
        delay=retry_after,
    )
