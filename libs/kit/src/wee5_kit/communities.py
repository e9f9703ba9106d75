"""What a community id may be, in one place: checked at every edge (HTTP path, gRPC request,
event) with one message.

A community is a Whop experience (`exp_…`), a Discord guild (a snowflake) or another
source's id. Ids go into Redis keys (`:`-separated), NATS subjects (`.`-separated) and
Postgres text columns (no NUL), so only letters, digits, `_` and `-` are allowed.

A member's id (a Whop user id, a Discord user id, another source's) has a looser rule: 1-64
characters (the width of the `user_id` columns) and no control characters (Postgres refuses
NUL in text).
"""

from __future__ import annotations

import re

from wee5_kit.errors import InvalidArgument

MAX_COMMUNITY_ID_LENGTH = 64
COMMUNITY_ID_PATTERN = rf"[A-Za-z0-9_-]{{1,{MAX_COMMUNITY_ID_LENGTH}}}"
COMMUNITY_ID_RULE = (
    f"a community id is 1-{MAX_COMMUNITY_ID_LENGTH} letters, digits, '_' or '-' "
    "(a Whop experience id such as exp_8RkJqV2Lm or a Discord server id)"
)
_COMMUNITY_ID = re.compile(COMMUNITY_ID_PATTERN)


class InvalidCommunityId(InvalidArgument):
    def __init__(self) -> None:
        super().__init__(COMMUNITY_ID_RULE)


def is_community_id(value: object) -> bool:
    return isinstance(value, str) and _COMMUNITY_ID.fullmatch(value) is not None


def validate_community_id(value: str) -> str:
    """`value` if it is a valid community id, else `InvalidCommunityId` (INVALID_ARGUMENT)."""
    if not is_community_id(value):
        raise InvalidCommunityId()
    return value


MAX_MEMBER_ID_LENGTH = 64
MEMBER_ID_RULE = (
    f"a member id is 1-{MAX_MEMBER_ID_LENGTH} characters without control characters "
    "(a Whop user id such as user_4dF9kLm2 or a Discord user id)"
)
_MEMBER_ID = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_MEMBER_ID_LENGTH}}}")


class InvalidMemberId(InvalidArgument):
    def __init__(self) -> None:
        super().__init__(MEMBER_ID_RULE)


def is_member_id(value: object) -> bool:
    return isinstance(value, str) and _MEMBER_ID.fullmatch(value) is not None


def validate_member_id(value: str) -> str:
    """`value` if it is a valid member id, else `InvalidMemberId` (INVALID_ARGUMENT)."""
    if not is_member_id(value):
        raise InvalidMemberId()
    return value
