"""Welcomes: when a member joins a bound guild (GUILD_MEMBER_ADD), a message in the
community's welcome channel and, when it has a template for it, an onboarding DM. Rendered
by wee5_kit.templates (as announcements are), sent fire-and-forget: each in a task of its own,
tried again on Discord's 5xx, 429s and network errors with backoff, given up on a 4xx (no
access to the channel, DMs closed) — never holding up XP. A GUILD_MEMBER_ADD Discord sends
again (after a RESUME) within `remember_seconds` welcomes nobody twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial

import aiohttp
import hikari

from wee5_discord.metrics import WELCOMES
from wee5_kit import templates
from wee5_kit.logging import get_logger

log = get_logger("wee5.discord.welcomes")

# Discord answers these when trying again cannot help (forbidden, unknown channel, bad body).
_FINAL = (hikari.ForbiddenError, hikari.NotFoundError, hikari.BadRequestError)
_TRANSIENT = (hikari.InternalServerError, hikari.RateLimitTooLongError, aiohttp.ClientError)


def welcome_texts(
    template: str, dm_template: str, *, user_id: str, display_name: str
) -> tuple[str, str]:
    """The channel message and the DM ("" for none) for a member."""
    values = {"member": display_name, "mention": templates.discord_mention(user_id, display_name)}
    channel = templates.render(template, values, markdown=True) if template else ""
    dm = templates.render(dm_template, values, markdown=True) if dm_template else ""
    return channel, dm


class Welcomer:
    def __init__(
        self,
        rest: hikari.api.RESTClient,
        *,
        attempts: int = 5,
        backoff: float = 1.0,
        remember_seconds: float = 3600.0,
    ) -> None:
        self.rest = rest
        self.attempts = attempts
        self.backoff = backoff
        self.remember_seconds = remember_seconds
        self.sending: set[asyncio.Task[None]] = set()
        self._welcomed: OrderedDict[tuple[int, int], float] = OrderedDict()

    def first_time(self, guild_id: int, user_id: int) -> bool:
        """False when this member of this guild was welcomed within `remember_seconds`."""
        now = time.monotonic()
        while self._welcomed and next(iter(self._welcomed.values())) < now:
            self._welcomed.popitem(last=False)
        if (guild_id, user_id) in self._welcomed:
            return False
        self._welcomed[(guild_id, user_id)] = now + self.remember_seconds
        return True

    def welcome(self, user_id: int, channel_text: str, channel_id: str, dm_text: str) -> None:
        """Starts sending (never waits for it)."""
        if channel_text and channel_id:
            self._start(partial(self._post, int(channel_id), channel_text, user_id), "welcome")
        if dm_text:
            self._start(partial(self._dm, user_id, dm_text), "dm")

    def _start(self, send: Callable[[], Awaitable[None]], what: str) -> None:
        task = asyncio.create_task(self._tried(send, what))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _post(self, channel_id: int, text: str, user_id: int) -> None:
        await self.rest.create_message(
            channel_id,
            text,
            mentions_everyone=False,
            user_mentions=[user_id],
            role_mentions=False,
        )

    async def _dm(self, user_id: int, text: str) -> None:
        channel = await self.rest.create_dm_channel(user_id)
        await self.rest.create_message(channel, text, mentions_everyone=False, role_mentions=False)

    async def _tried(self, send: Callable[[], Awaitable[None]], what: str) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                await send()
            except _FINAL as error:
                WELCOMES.labels(what, "refused").inc()
                log.warning("refused by Discord; not sent", what=what, status=int(error.status))
                return
            except _TRANSIENT as error:
                if attempt == self.attempts:
                    WELCOMES.labels(what, "failed").inc()
                    log.error("not sent", what=what, attempts=attempt, error=type(error).__name__)
                    return
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            else:
                WELCOMES.labels(what, "sent").inc()
                log.info("sent", what=what)
                return

    async def close(self, within: float) -> None:
        """Waits (for at most `within` seconds) for the welcomes being sent."""
        if self.sending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(set(self.sending), timeout=within)
