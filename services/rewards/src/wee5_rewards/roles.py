"""Discord roles for rewards, badges and subscriptions, assigned off the award path.

Awarding a badge or a role reward only queues a row in `role_assignments` (in the award's
transaction); a Whop membership's change queues the community's subscription role with the
action `add` (membership active) or `remove` (it ended), one row per (community, member,
role) carrying the latest change (`RoleRepository.state_role`). This worker claims due rows
with `FOR UPDATE SKIP LOCKED` and calls Discord's `PUT` or `DELETE
/guilds/{guild}/members/{user}/roles/{role}` (`Authorization: Bot <token>`, through
`wee5_kit.discord_rest`), both idempotent, so a retry after an unknown outcome is harmless.

The guild is the one bound to the community (through the bot's install flow or by a platform
admin), else the community's own id when it is a guild nobody bound elsewhere. The member is
their member id when it is a Discord user id (a Discord community), else the Discord account
they linked to their Whop user id (`discord_links`); a Whop member who linked none waits
(`waiting`, the reason in `last_error`) until they link one, any other id is final. Before
giving or taking a role the worker asks Discord for the guild's roles (`GET
/guilds/{guild}/roles`): a role id that is not one of them (another server's role,
`@everyone`) is final (`dead`, with the reason), never sent. A 429 waits Discord's
`retry_after`; 5xx and network errors back off exponentially with jitter; 4xx (missing
permission, unknown member or role) is final (`dead`). Without a bot token or a guild the row
waits (`waiting`) and is resumed when the process starts with a token.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_kit.discord_rest import DiscordClient, DiscordRejected, DiscordRetryable
from wee5_kit.logging import bound_contextvars, get_logger
from wee5_kit.provider_ids import is_snowflake
from wee5_rewards.errors import GUILD_INSTALL_FLOW
from wee5_rewards.models import RoleAssignment
from wee5_rewards.repository import RoleRepository

log = get_logger("wee5.rewards.roles")

# A Whop user id: such a member gets Discord roles once they link their Discord account.
_WHOP_USER = re.compile(r"user_[A-Za-z0-9]{1,59}")
# Where a member links their Discord account (the gateway's page).
LINK_FLOW = "POST /api/v1/communities/{community_id}/members/me/discord-link"


@dataclass(frozen=True)
class RolePolicy:
    max_attempts: int = 8
    base_seconds: float = 5.0
    max_seconds: float = 3600.0
    poll_seconds: float = 2.0

    def backoff(self, attempts: int) -> float:
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return float(ceiling * random.uniform(0.5, 1.0))


class RoleDelivery:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        discord: DiscordClient | None,
        policy: RolePolicy,
        *,
        batch: int = 20,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.discord = discord
        self.policy = policy
        self.batch = batch

    async def run(self) -> None:
        if self.discord is not None:
            async with self.sessionmaker.begin() as session:
                await RoleRepository(session).resume_waiting()
        else:
            log.warning("WEE5_DISCORD_BOT_TOKEN is not set: Discord roles wait until it is")
        while True:
            if await self.deliver_due() < self.batch:
                await asyncio.sleep(self.policy.poll_seconds)

    async def deliver_due(self) -> int:
        """One transaction: claim due rows, call Discord for each, record the results. The
        rows stay locked meanwhile (the calls have deadlines and PUT and DELETE are
        idempotent); a newer change of a row waits for the lock and makes it due again."""
        async with self.sessionmaker.begin() as session:
            repository = RoleRepository(session)
            rows = await repository.claim_due(self.batch)
            # The roles of each guild, asked once per batch.
            roles: dict[str, set[str]] = {}
            for row in rows:
                with bound_contextvars(community_id=row.community_id, role_assignment=row.id):
                    guild = await repository.guild_of(row.community_id)
                    member = await _discord_user(repository, row.user_id)
                    await self._carry_out(row, guild, member, roles)
        return len(rows)

    async def _carry_out(
        self,
        row: RoleAssignment,
        guild_id: str | None,
        member: str | None,
        roles: dict[str, set[str]],
    ) -> None:
        if self.discord is None:
            row.status, row.last_error = "waiting", "WEE5_DISCORD_BOT_TOKEN is not set"
            return
        if guild_id is None:
            row.status = "waiting"
            row.last_error = (
                f"the community has no Discord guild: install the bot ({GUILD_INSTALL_FLOW})"
            )
            return
        if member is None:
            if _WHOP_USER.fullmatch(row.user_id):
                row.status = "waiting"
                row.last_error = (
                    f"member {row.user_id} has linked no Discord account ({LINK_FLOW}); "
                    "the role follows once they do"
                )
                log.info("Discord role waits for the member's Discord account")
                return
            row.status = "dead"
            row.last_error = f"member {row.user_id!r} has no Discord user id (a snowflake)"
            log.error("Discord role refused: not a Discord user id")
            return
        row.attempts += 1
        try:
            if guild_id not in roles:
                roles[guild_id] = await self.discord.guild_roles(guild_id)
            if row.role_id == guild_id or row.role_id not in roles[guild_id]:
                row.status = "dead"
                row.last_error = (
                    f"role {row.role_id} is not a role of the community's Discord guild {guild_id}"
                )
                log.error("Discord role refused: not a role of the guild", role_id=row.role_id)
                return
            if row.action == "remove":
                await self.discord.remove_role(guild_id, member, row.role_id)
            else:
                await self.discord.add_role(guild_id, member, row.role_id)
        except DiscordRetryable as error:
            if row.attempts >= self.policy.max_attempts:
                row.status, row.last_error = "dead", str(error)
                log.error("Discord role dead-lettered", error=str(error))
                return
            delay = max(self.policy.backoff(row.attempts), error.retry_after or 0.0)
            row.last_error = str(error)
            row.next_attempt_at = _in_seconds(delay)
            log.warning("Discord role will be retried", error=str(error), delay=round(delay, 2))
            return
        except DiscordRejected as error:
            row.status, row.last_error = "dead", str(error)
            log.error("Discord refused the role", error=str(error))
            return
        row.status = "removed" if row.action == "remove" else "assigned"
        row.last_error = None
        log.info(f"Discord role {row.status}", role_id=row.role_id)


async def _discord_user(repository: RoleRepository, user_id: str) -> str | None:
    """The member's Discord user id: their member id in a Discord community, else the Discord
    account they linked to their Whop user id."""
    if is_snowflake(user_id):
        return user_id
    return await repository.discord_user_of(user_id)


def _in_seconds(delay: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=delay)
