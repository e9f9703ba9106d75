from __future__ import annotations

import grpc
import pytest

from wee5_kit.communities import (
    COMMUNITY_ID_RULE,
    COMPANY_ID_RULE,
    InvalidCommunityId,
    InvalidCompanyId,
    validate_community_id,
    validate_company_id,
)


@pytest.mark.parametrize("value", ["exp_123abc", "123456789012345678", "a", "a" * 64, "my-group"])
def test_whop_experiences_discord_guilds_and_groups_are_community_ids(value: str) -> None:
    assert validate_community_id(value) == value


@pytest.mark.parametrize("value", ["", "a" * 65, "a\x00b", "exp:1", "a.b", "a b", "../x", "é"])
def test_anything_else_is_invalid_argument_with_one_message(value: str) -> None:
    with pytest.raises(InvalidCommunityId) as raised:
        validate_community_id(value)
    assert raised.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message == COMMUNITY_ID_RULE


@pytest.mark.parametrize("value", ["", "b" * 65, "biz\x00", "biz:1", "biz.a", "biz a", "é"])
def test_a_company_id_follows_the_community_id_rule_with_its_own_message(value: str) -> None:
    assert validate_company_id("biz_8RkJqV2Lm") == "biz_8RkJqV2Lm"
    with pytest.raises(InvalidCompanyId) as raised:
        validate_company_id(value)
    assert raised.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message == COMPANY_ID_RULE
