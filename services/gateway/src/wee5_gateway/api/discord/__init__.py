"""The Discord context: binding a Discord server to a community (the bot's install flow, or a
platform admin), served by rewards, which keeps the binding."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.discord.controller import DiscordGuildController, DiscordInstallController

ROUTES: list[ControllerRouterHandler] = [DiscordGuildController, DiscordInstallController]
