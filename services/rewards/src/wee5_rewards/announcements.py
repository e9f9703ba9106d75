"""Announcements: what a community says when a member levels up, earns a reward or a badge,
where it says it, and how often.

Templates are parsed, checked and rendered by `wee5_kit.templates` (shared with the Discord
bot's welcomes): only the variables below exist, and a value goes in escaped for where the
text is sent, so a display name cannot format the text, mention `@everyone` or ping anyone but
the member it names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from wee5_kit import templates
from wee5_kit.errors import InvalidField
from wee5_kit.templates import SNOWFLAKE

VARIABLES = (
    "member",
    "mention",
    "level",
    "old_level",
    "xp",
    "next_level_xp",
    "reward",
    "badge",
    "community",
    "rank",
)


class Kind(StrEnum):
    LEVEL_UP = "level_up"
    REWARD = "reward"
    BADGE = "badge"


class Target(StrEnum):
    """Where announcements go."""

    ACTIVITY_CHANNEL = "activity_channel"  # the Whop chat channel the activity happened in
    WHOP_CHANNEL = "whop_channel"  # one fixed Whop chat channel (chat_feed_…)
    WHOP_PUSH = "whop_push"  # a Whop push notification to the member
    DISCORD_CHANNEL = "discord_channel"  # one channel of the bound Discord server
    DISCORD_DM = "discord_dm"  # a direct message from the bot
    # The member's own toast in the app (a `rewards.announced` event), whatever the community
    # chose above; never a target of the settings (the contract's enum has no such value).
    IN_APP = "in_app"

    @property
    def markdown(self) -> bool:
        return self not in (Target.WHOP_PUSH, Target.IN_APP)

    @property
    def discord(self) -> bool:
        return self in (Target.DISCORD_CHANNEL, Target.DISCORD_DM)


# The Discord bot's welcome when a member joins (channel message and onboarding DM).
WELCOME_VARIABLES = ("member", "mention")
DEFAULT_WELCOME = "👋 Welcome {mention}!"


def check_welcome(field: str, template: str) -> str:
    return templates.check_template(field, template, WELCOME_VARIABLES)


DEFAULT_TEMPLATES = {
    Kind.LEVEL_UP: "🎉 {member} reached level {level}! {reward}",
    Kind.REWARD: "🎁 {member} earned {reward}!",
    Kind.BADGE: "🏅 {member} earned the {badge} badge!",
}
# Values a preview renders with.
SAMPLE = {
    "member": "Ada Lovelace",
    "mention": "@ada",
    "level": "5",
    "old_level": "4",
    "xp": "1250",
    "next_level_xp": "1600",
    "reward": "7 free days",
    "badge": "Early Bird",
    "community": "Analytical Engines",
    "rank": "3",
}

_WHOP_CHANNEL = re.compile(r"chat_feed_[A-Za-z0-9]{1,40}")


@dataclass(frozen=True)
class Cadence:
    """Which level-ups are announced: every `every` levels, and from level `every_from` on
    (0: never) every level, as Polaris does."""

    every: int = 1
    every_from: int = 0

    def announces(self, level: int) -> bool:
        if self.every_from and level >= self.every_from:
            return True
        return level % self.every == 0

    def check(self) -> Cadence:
        if not 1 <= self.every <= 1000:
            raise InvalidField("every_levels", "every_levels is 1 (every level) to 1000")
        if not 0 <= self.every_from <= 10_000:
            raise InvalidField(
                "every_level_from", "every_level_from is 0 (off) or a level up to 10000"
            )
        return self


def check_template(field: str, template: str) -> str:
    """`template` if it only uses known variables, else `InvalidField` naming `field` and the
    first unknown variable."""
    return templates.check_template(field, template, VARIABLES)


def check_channel(target: Target, channel_id: str) -> str:
    """The channel a target needs (a fixed Whop or Discord channel), or "" for the others."""
    if target is Target.WHOP_CHANNEL:
        if not _WHOP_CHANNEL.fullmatch(channel_id):
            raise InvalidField("channel_id", "a Whop chat channel id is chat_feed_ then its id")
        return channel_id
    if target is Target.DISCORD_CHANNEL:
        if not SNOWFLAKE.fullmatch(channel_id):
            raise InvalidField("channel_id", "a Discord channel id is a snowflake (digits)")
        return channel_id
    if channel_id:
        raise InvalidField("channel_id", f"the target {target.value} takes no channel_id")
    return ""


def render(template: str, values: Mapping[str, str], target: Target) -> str:
    """The text sent to `target`: the template's literal text as written, each variable's
    value escaped for the target (`{mention}` is the one way to ping, and only the member)."""
    return templates.render(template, values, markdown=target.markdown)


def mention(target: Target, *, user_id: str, username: str, display_name: str) -> str:
    """How `{mention}` names the member on `target`: `<@id>` on Discord, `@username` in Whop
    chat, the name in a push notification or the app. Never anything that pings someone else."""
    if target.discord:
        return templates.discord_mention(user_id, display_name)
    handle = re.sub(r"[^A-Za-z0-9_.]", "", username)
    if not target.markdown or not handle:
        return escape(display_name or handle, target)
    return f"@{handle}"


def escape(value: str, target: Target) -> str:
    """`value` as text on `target`: no markdown, no mentions, no control characters."""
    return templates.escape(value, markdown=target.markdown)


@dataclass(frozen=True)
class Announcements:
    """A community's announcement settings (stored on its `community_settings` row)."""

    enabled: bool = False
    target: Target = Target.ACTIVITY_CHANNEL
    channel_id: str = ""
    level_ups: bool = True
    rewards: bool = True
    badges: bool = True
    cadence: Cadence = Cadence()
    # Stored templates; None: the default of that kind.
    templates: Mapping[Kind, str | None] = field(default_factory=dict)

    def template(self, kind: Kind) -> str:
        return self.templates.get(kind) or DEFAULT_TEMPLATES[kind]

    def checked(self) -> Announcements:
        """These settings if they can work, else `InvalidField` naming what cannot."""
        self.cadence.check()
        check_channel(self.target, self.channel_id)
        for kind, template in self.templates.items():
            if template:
                check_template(f"{kind.value}_template", template)
        return self

    def preview(self, kind: Kind, template: str = "", target: Target | None = None) -> str:
        """`template` (else the stored one of `kind`) with sample values, as `target` (else
        the community's target) would show it."""
        text = check_template("template", template) if template else self.template(kind)
        shown_on = target or self.target
        sample = {**SAMPLE, "mention": mention(shown_on, **_SAMPLE_MEMBER)}
        return render(text, sample, shown_on)


_SAMPLE_MEMBER = {"user_id": "80351110224678912", "username": "ada", "display_name": "Ada"}
