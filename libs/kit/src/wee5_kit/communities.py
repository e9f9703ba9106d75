"""What a community id may be, in one place: checked at every edge (HTTP path, gRPC request,
event) with one message.

A community is a Whop experience (`exp_…`), a Discord guild (a snowflake) or another
source's id. Ids go into Redis keys (`:`-separated), NATS subjects (`.`-separated) and
Postgres text columns (no NUL), so only letters, digits, `_` and `-` are allowed.
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
