"""Failures of the billing service that a caller can act on, each with its gRPC status."""

from wee5_kit.errors import InvalidArgument


class InvalidRequest(InvalidArgument):
    pass


class CommunityRequired(InvalidRequest):
    def __init__(self) -> None:
        super().__init__("community_id is required and at most 64 characters")


class UnknownPlan(InvalidRequest):
    def __init__(self) -> None:
        super().__init__("plan must be free, premium or enterprise")
