from __future__ import annotations

import grpc
import pytest

from wee5_kit.communities import COMMUNITY_ID_RULE, InvalidCommunityId, validate_community_id


@pytest.mark.parametrize("value", ["exp_123abc", "123456789012345678", "a", "a" * 64, "my-group"])
def test_whop_experiences_discord_guilds_and_groups_are_community_ids(value: str) -> None:
    assert validate_community_id(value) == value


@pytest.mark.parametrize("value", ["", "a" * 65, "a\x00b", "exp:1", "a.b", "a b", "../x", "é"])
def test_anything_else_is_invalid_argument_with_one_message(value: str) -> None:
    with pytest.raises(InvalidCommunityId) as raised:
        validate_community_id(value)
    assert raised.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message == COMMUNITY_ID_RULE
