"""Announcements: what a community says when a member levels up, earns a reward or a badge,
where it says it, and how often.

A template is plain text or markdown with variables in braces (`{member}`, `{level}`, …;
`{{` and `}}` for literal braces). It is parsed, never `str.format`ted: only the variables
below exist, a name outside them is refused with the name in the message, and a value goes
in escaped for where the text is sent, so a display name cannot format the text, mention
`@everyone` or ping anyone but the member it names.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from wee5_kit.errors import InvalidField

MAX_TEMPLATE = 1000
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
_VARIABLES = frozenset(VARIABLES)


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
_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
# Characters markdown (Whop chat, Discord) gives meaning to; escaped in values.
_MARKDOWN = re.compile(r"([\\`*_~|>#\[\]()<:!-])")
_ZERO_WIDTH_SPACE = "\u200b"


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
    if len(template) > MAX_TEMPLATE:
        raise InvalidField(field, f"{field} is longer than {MAX_TEMPLATE} characters")
    for _, name, spec, conversion in _parse(field, template):
        if name is None:
            continue
        if name not in _VARIABLES:
            known = ", ".join(f"{{{v}}}" for v in VARIABLES)
            raise InvalidField(
                field,
                f"{field} uses {{{name}}}, which is not a variable; use {known}, "
                "or {{ and }} for literal braces",
            )
        if spec or conversion:
            raise InvalidField(
                field, f"{field}: write {{{name}}} without a format (':' or '!' inside braces)"
            )
    return template


def check_channel(target: Target, channel_id: str) -> str:
    """The channel a target needs (a fixed Whop or Discord channel), or "" for the others."""
    if target is Target.WHOP_CHANNEL:
        if not _WHOP_CHANNEL.fullmatch(channel_id):
            raise InvalidField("channel_id", "a Whop chat channel id is chat_feed_ then its id")
        return channel_id
    if target is Target.DISCORD_CHANNEL:
        if not _SNOWFLAKE.fullmatch(channel_id):
            raise InvalidField("channel_id", "a Discord channel id is a snowflake (digits)")
        return channel_id
    if channel_id:
        raise InvalidField("channel_id", f"the target {target.value} takes no channel_id")
    return ""


def render(template: str, values: Mapping[str, str], target: Target) -> str:
    """The text sent to `target`: the template's literal text as written, each variable's
    value escaped for the target (`{mention}` is the one way to ping, and only the member)."""
    out: list[str] = []
    for literal, name, _, _ in _parse("template", template):
        out.append(literal)
        if name is not None:
            value = values.get(name, "")
            out.append(value if name == "mention" else escape(value, target))
    return "".join(out)


def mention(target: Target, *, user_id: str, username: str, display_name: str) -> str:
    """How `{mention}` names the member on `target`: `<@id>` on Discord, `@username` in Whop
    chat, the name in a push notification or the app. Never anything that pings someone else."""
    if target.discord:
        return f"<@{user_id}>" if _SNOWFLAKE.fullmatch(user_id) else escape(display_name, target)
    handle = re.sub(r"[^A-Za-z0-9_.]", "", username)
    if not target.markdown or not handle:
        return escape(display_name or handle, target)
    return f"@{handle}"


def escape(value: str, target: Target) -> str:
    """`value` as text on `target`: no markdown, no mentions (`@everyone`, `@here`, `@name`,
    Discord's `<@id>`), no control characters."""
    value = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    if target.markdown:
        value = _MARKDOWN.sub(r"\\\1", value)
    return value.replace("@", "@" + _ZERO_WIDTH_SPACE)


def _parse(field: str, template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(string.Formatter().parse(template))
    except ValueError as error:
        raise InvalidField(
            field, f"{field} does not parse ({error}); write {{{{ and }}}} for literal braces"
        ) from None


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
