"""WEE5's slash commands (`wee5_kit.discord_commands`, answered by the gateway's interactions
route) registered in each guild bound to a community, with Discord's bulk overwrite (`PUT
/applications/{application_id}/guilds/{guild_id}/commands`: the set replaces whatever the
guild had, so registering again changes nothing). Once per guild and process: when the guild
becomes available or joins (GUILD_CREATE), or when the bot first sees activity in a guild
bound after that."""

from __future__ import annotations

import asyncio
import time

import hikari

from wee5_kit.discord_commands import COMMANDS, SlashCommand
from wee5_kit.logging import get_logger

log = get_logger("wee5.discord.commands")

# After a failed registration the guild is not tried again for this long: a guild's
# messages would otherwise each ask Discord again.
RETRY_AFTER_SECONDS = 600.0


def command_builder(
    rest: hikari.api.RESTClient, command: SlashCommand
) -> hikari.api.CommandBuilder:
    builder = rest.slash_command_builder(command.name, command.description)
    if command.default_member_permissions is not None:
        builder.set_default_member_permissions(command.default_member_permissions)
    for option in command.options:
        builder.add_option(
            hikari.CommandOption(
                type=hikari.OptionType(option.type),
                name=option.name,
                description=option.description,
                is_required=option.required,
                choices=[hikari.CommandChoice(name=c, value=c) for c in option.choices] or None,
                min_value=option.min_value,
                max_value=option.max_value,
                max_length=option.max_length,
            )
        )
    return builder


class CommandRegistrar:
    """Registers the command set in a guild once per process (again a while after a
    failure)."""

    def __init__(self, rest: hikari.api.RESTClient) -> None:
        self.rest = rest
        # From READY; nothing is registered before it is known.
        self.application_id: hikari.Snowflake | None = None
        self._registered: set[int] = set()
        self._registering: dict[int, asyncio.Task[None]] = {}
        self._failed_until: dict[int, float] = {}

    def ensure(self, guild_id: int) -> None:
        """Registers the commands in `guild_id` in the background, unless done already."""
        if self.application_id is None:
            return
        if guild_id in self._registered or guild_id in self._registering:
            return
        if self._failed_until.get(guild_id, 0.0) > time.monotonic():
            return
        task = asyncio.create_task(self._register(self.application_id, guild_id))
        self._registering[guild_id] = task
        task.add_done_callback(lambda _: self._registering.pop(guild_id, None))

    async def _register(self, application_id: hikari.Snowflake, guild_id: int) -> None:
        commands = [command_builder(self.rest, command) for command in COMMANDS]
        try:
            await self.rest.set_application_commands(application_id, commands, guild_id)
        except hikari.HikariError as error:
            self._failed_until[guild_id] = time.monotonic() + RETRY_AFTER_SECONDS
            log.error(
                "slash commands not registered", guild_id=str(guild_id), error=type(error).__name__
            )
            return
        self._registered.add(guild_id)
        log.info("slash commands registered", guild_id=str(guild_id), commands=len(commands))

    async def close(self) -> None:
        """Stops registrations still in flight (the next start does them)."""
        for task in list(self._registering.values()):
            task.cancel()
        if self._registering:
            await asyncio.wait(set(self._registering.values()))
