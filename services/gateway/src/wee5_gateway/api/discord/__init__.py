"""The Discord context: binding a Discord server to a community (the bot's install flow, or a
platform admin), and a Whop member's Discord account linked for their roles; served by rewards,
which keeps both."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.discord.controller import (
    DiscordGuildController,
    DiscordInstallController,
    DiscordLinkCallbackController,
    DiscordLinkController,
    DiscordRolesController,
)

ROUTES: list[ControllerRouterHandler] = [
    DiscordGuildController,
    DiscordInstallController,
    DiscordLinkController,
    DiscordLinkCallbackController,
    DiscordRolesController,
]
