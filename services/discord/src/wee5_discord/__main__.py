"""`python -m wee5_discord`: the Discord bot, off (saying so) without WEE5_DISCORD_BOT_TOKEN."""

from __future__ import annotations

import asyncio
import sys

from wee5_discord.bot import DiscordBot
from wee5_discord.config import DiscordSettings
from wee5_kit import logging

log = logging.get_logger("wee5.discord")


async def serve(settings: DiscordSettings) -> int:
    # Built inside the loop: its gRPC channels belong to it.
    try:
        bot = DiscordBot(settings)
    except ValueError:
        log.error("WEE5_DISCORD_BOT_TOKEN is not a Discord bot token (copy it from the portal)")
        return 2
    return await bot.run()


def main() -> None:
    settings = DiscordSettings()
    logging.configure("discord", settings.log_level)
    if settings.discord_bot_token is None:
        log.warning("Discord bot off: set WEE5_DISCORD_BOT_TOKEN to run it")
        return
    sys.exit(asyncio.run(serve(settings)))


main()
