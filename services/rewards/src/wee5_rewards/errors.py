"""Failures of the rewards service that a caller can act on, each with its gRPC status."""

from wee5_kit.errors import InvalidArgument


class InvalidRequest(InvalidArgument):
    pass


class CommunityRequired(InvalidRequest):
    def __init__(self) -> None:
        super().__init__("community_id is required")


class InvalidPageToken(InvalidRequest):
    def __init__(self) -> None:
        super().__init__("page_token is not one this list returned")


class InvalidLevelUp(InvalidArgument):
    """A level-up event that names no community or member: no reward can ever come of it."""
