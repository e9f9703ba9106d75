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
from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from wee5_kit.errors import InvalidArgument, InvalidField

MAX_COMMUNITY_ID_LENGTH = 64
COMMUNITY_ID_PATTERN = rf"[A-Za-z0-9_-]{{1,{MAX_COMMUNITY_ID_LENGTH}}}"
COMMUNITY_ID_RULE = (
    f"a community id is 1-{MAX_COMMUNITY_ID_LENGTH} letters, digits, '_' or '-' "
    "(a Whop experience id such as exp_8RkJqV2Lm or a Discord server id)"
)
_COMMUNITY_ID = re.compile(COMMUNITY_ID_PATTERN)
# A WEE5 group's id (billing makes them): a company of communities outside Whop. Whop's own
# company ids are `biz_…`.
GROUP_PREFIX = "grp_"


class InvalidCommunityId(InvalidArgument):
    def __init__(self) -> None:
        super().__init__(COMMUNITY_ID_RULE)


def is_community_id(value: object) -> bool:
    return isinstance(value, str) and _COMMUNITY_ID.fullmatch(value) is not None


def is_group_id(company_id: str) -> bool:
    """Whether the company is a WEE5 group (not a Whop company)."""
    return company_id.startswith(GROUP_PREFIX)


def validate_community_id(value: str) -> str:
    """`value` if it is a valid community id, else `InvalidCommunityId` (INVALID_ARGUMENT)."""
    if not is_community_id(value):
        raise InvalidCommunityId()
    return value


COMPANY_ID_RULE = (
    f"a company id is 1-{MAX_COMMUNITY_ID_LENGTH} letters, digits, '_' or '-' "
    "(a Whop company id such as biz_8RkJqV2Lm)"
)


class InvalidCompanyId(InvalidArgument):
    def __init__(self) -> None:
        super().__init__(COMPANY_ID_RULE)


def validate_company_id(value: str) -> str:
    """`value` if it is a valid company id (the community id's rule: it goes into the same
    keys and columns), else `InvalidCompanyId` (INVALID_ARGUMENT)."""
    if not is_community_id(value):
        raise InvalidCompanyId()
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


def check_ids(message: Message, path: str = "") -> None:
    """Every id a gRPC request carries, by the rules above, before a service acts on it: each
    set string field named `…community_id`, `company_id` or `…user_id(s)`, nested messages
    included. INVALID_ARGUMENT names the field (a field violation), so nothing Postgres would refuse (NUL, too
    long) and nothing that would split a Redis key or a NATS subject gets in."""
    for field, value in message.ListFields():
        name = f"{path}{field.name}"
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            entry = field.message_type
            if entry is not None and not entry.GetOptions().map_entry:
                for item in value if field.is_repeated else (value,):
                    check_ids(item, f"{name}.")
        elif field.type == FieldDescriptor.TYPE_STRING and (rule := _id_rule(field.name)):
            is_valid, explanation = rule
            for item in value if field.is_repeated else (value,):
                if item and not is_valid(item):
                    raise InvalidField(name, explanation)


def _id_rule(field_name: str) -> tuple[Callable[[object], bool], str] | None:
    if field_name.endswith("community_id"):
        return is_community_id, COMMUNITY_ID_RULE
    if field_name == "company_id":
        return is_community_id, COMPANY_ID_RULE
    if field_name.endswith(("user_id", "user_ids")):
        return is_member_id, MEMBER_ID_RULE
    return None


# The most communities one call about several of them covers (a company's, in practice).
MAX_COMMUNITIES_PER_CALL = 500


def communities_window(request: Message) -> tuple[datetime, datetime]:
    """The [since, until) of a request counting several communities' activity (fields
    `community_ids`, `since`, `until`): both ends required, at most MAX_COMMUNITIES_PER_CALL
    communities."""
    if not request.HasField("since") or not request.HasField("until"):
        raise InvalidField("since", "since and until are required")
    if len(request.community_ids) > MAX_COMMUNITIES_PER_CALL:  # type: ignore[attr-defined]
        raise InvalidField(
            "community_ids", f"at most {MAX_COMMUNITIES_PER_CALL} communities at once"
        )
    since: datetime = request.since.ToDatetime(UTC)  # type: ignore[attr-defined]
    until: datetime = request.until.ToDatetime(UTC)  # type: ignore[attr-defined]
    return since, until
