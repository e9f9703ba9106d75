"""Bodies of binding a Discord server (guild) to a community."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

# Discord ids are snowflakes: decimal digits (17-20 today).
GuildId = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{17,20}$")]


class GuildBinding(msgspec.Struct, forbid_unknown_fields=True):
    guild_id: GuildId


class GuildBound(msgspec.Struct):
    community_id: str
    # null: no server is bound (roles go to the community's own id when it is a server id).
    discord_guild_id: str | None
    # Who proved it: "install:<actor>", "platform_admin:<account>", "legacy" (set before
    # bindings needed proof).
    bound_by: str | None


class InstallStarted(msgspec.Struct):
    # Send the admin's browser here: Discord asks them to add the bot to a server they manage,
    # then comes back to the callback, which binds that server to the community.
    authorize_url: str
    expires_at: datetime


class LinkStarted(msgspec.Struct):
    # Open this in a window of its own: Discord asks the member to let WEE5 know their Discord
    # account (identify), then comes back to the callback, which links it.
    authorize_url: str
    expires_at: datetime


class DiscordLinked(msgspec.Struct):
    community_id: str
    # The member's Whop user id and the Discord account it is linked to now.
    user_id: str
    discord_user_id: str
    # How many of the member's Discord roles waited for the link and are on their way.
    roles_resumed: int


class RoleAssignmentView(msgspec.Struct):
    """A Discord role to give a member or take from them, and where that stands."""

    user_id: str
    role_id: str
    # "reward:<id>", "badge:<id>" or "subscription"
    source: str
    # add | remove
    action: str
    # pending | assigned | removed | waiting (no bot token, no server bound, or a Whop member
    # who linked no Discord account yet) | dead (refused)
    status: str
    attempts: int
    # Why it waits or died; null when done.
    last_error: str | None
    updated_at: datetime
