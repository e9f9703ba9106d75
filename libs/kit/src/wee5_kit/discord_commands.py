"""The slash commands WEE5 offers on Discord, defined once: the bot (wee5_discord) registers
them in every guild bound to a community, and the gateway answers them (its interactions
route reads the names, option names and bounds from here). Shaped as Discord's application
commands (type 1, CHAT_INPUT)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

# Permission bits of a member (`member.permissions`, `default_member_permissions`).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5

# xp's bound on one adjustment (either way); the API's route takes the same.
MAX_XP_ADJUSTMENT = 10_000_000
# The longest reason an adjustment keeps.
MAX_REASON_LENGTH = 180
PERIODS = ("all", "month", "week", "day")


class OptionType(IntEnum):
    STRING = 3
    INTEGER = 4
    USER = 6


@dataclass(frozen=True)
class Option:
    name: str
    description: str
    type: OptionType
    required: bool = False
    choices: tuple[str, ...] = ()
    min_value: int | None = None
    max_value: int | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class SlashCommand:
    name: str
    description: str
    options: tuple[Option, ...] = ()
    # The permission bits a member needs to see and use the command, until the server's
    # admins change it in the server's Integrations settings; None: everyone.
    default_member_permissions: int | None = None


RANK = SlashCommand(
    "rank",
    "Your rank card, or another member's",
    (Option("member", "Whose rank card (you, when left out)", OptionType.USER),),
)
TOP = SlashCommand(
    "top",
    "The leaderboard's first ten",
    (
        Option(
            "period",
            "All time (the default), this month, week or day",
            OptionType.STRING,
            choices=PERIODS,
        ),
    ),
)
GIVE_XP = SlashCommand(
    "give-xp",
    "Give a member XP, or take some away (admins)",
    (
        Option("member", "Who gets the XP", OptionType.USER, required=True),
        Option(
            "amount",
            "XP to give; negative to take away",
            OptionType.INTEGER,
            required=True,
            min_value=-MAX_XP_ADJUSTMENT,
            max_value=MAX_XP_ADJUSTMENT,
        ),
        Option(
            "reason",
            "Why (kept in the audit log and the member's history)",
            OptionType.STRING,
            required=True,
            max_length=MAX_REASON_LENGTH,
        ),
    ),
    default_member_permissions=MANAGE_GUILD,
)
REWARDS = SlashCommand("rewards", "The rewards for reaching each level, and the ones you have")

COMMANDS = (RANK, TOP, GIVE_XP, REWARDS)
