"""Failures of the xp service that a caller can act on, each with its gRPC status."""

from wee5_kit.errors import InvalidArgument, NotFound


class MemberNotFound(NotFound):
    def __init__(self, community_id: str, user_id: str) -> None:
        super().__init__(f"member {user_id} has no XP in community {community_id}")


class InvalidActivity(InvalidArgument):
    pass


class InvalidCursor(InvalidArgument):
    def __init__(self) -> None:
        super().__init__("cursor is not one this leaderboard returned")


class InvalidAnalyticsRequest(InvalidArgument):
    pass
