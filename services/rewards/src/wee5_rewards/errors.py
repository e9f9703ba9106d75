"""Failures of the rewards service that a caller can act on, each with its gRPC status."""

from wee5_kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)


class InvalidRequest(InvalidArgument):
    pass


class InvalidLevelUp(InvalidArgument):
    """A level-up event that names no community or member: no reward can ever come of it."""


class RuleNotFound(NotFound):
    def __init__(self, which: str) -> None:
        super().__init__(f"no reward rule {which} in this community")


class RewardNotFound(NotFound):
    def __init__(self, reward_id: str) -> None:
        super().__init__(f"no reward {reward_id} in this community")


class RewardNotRetryable(FailedPrecondition):
    def __init__(self, status: str) -> None:
        super().__init__(
            f"the reward is {status}; only dead, failed or waiting rewards can be retried"
        )


class BadgeNotFound(NotFound):
    def __init__(self, badge_id: str) -> None:
        super().__init__(f"no badge {badge_id} in this community")


class BadgeNameTaken(AlreadyExists):
    def __init__(self, name: str) -> None:
        super().__init__(f"the community already has a badge named {name!r}")


class XpRequired(Unavailable):
    def __init__(self) -> None:
        super().__init__("xp is not reachable from this rewards process")


class BadgeInUse(FailedPrecondition):
    def __init__(self, badge_id: int, levels: list[int]) -> None:
        super().__init__(
            f"badge {badge_id} is the reward of level {', '.join(map(str, levels))}; "
            "change or delete that rule first"
        )


# Where a community's admins bind their Discord server (the bot's OAuth2 install flow).
GUILD_INSTALL_FLOW = "/api/v1/communities/{community_id}/discord-guild/install"


class GuildNeedsProof(PermissionDenied):
    def __init__(self) -> None:
        super().__init__(
            "discord_guild_id cannot be set in the reward settings: a Discord server is bound "
            f"by installing the bot in it (POST {GUILD_INSTALL_FLOW}, as someone who may manage "
            "that server) or by a platform admin (PUT /api/v1/communities/{community_id}/"
            "discord-guild)"
        )


class GuildBoundElsewhere(AlreadyExists):
    def __init__(self, guild_id: str) -> None:
        super().__init__(f"Discord guild {guild_id} is already bound to another community")


class GuildNotBound(NotFound):
    def __init__(self, guild_id: str) -> None:
        super().__init__(f"Discord guild {guild_id} is bound to no community")


class AnnouncementNotFound(NotFound):
    def __init__(self, announcement_id: int) -> None:
        super().__init__(f"no announcement {announcement_id} in this community")


class AnnouncementNotRetryable(FailedPrecondition):
    def __init__(self, status: str) -> None:
        super().__init__(f"the announcement is {status}: only a dead or waiting one can be retried")
