"""The protobuf enums' names (from their descriptors) are the names the rewards tables store,
so the codecs in mappers.py need no table of their own."""

from __future__ import annotations

from typing import Any

from wee5_kit.proto import EnumCodec
from wee5_rewards import mappers, models


def test_every_stored_name_has_its_enum_value_and_back() -> None:
    pairs: list[tuple[EnumCodec[Any], tuple[str, ...]]] = [
        (mappers.REWARD_KINDS, models.REWARD_KINDS),
        (mappers.REWARD_STATUSES, models.REWARD_STATUSES),
        (mappers.DISCOUNT_TYPES, models.DISCOUNT_TYPES),
        (mappers.BADGE_CRITERIA, models.BADGE_CRITERIA),
        (mappers.BADGE_PERIODS, models.BADGE_PERIODS),
    ]
    for codec, stored in pairs:
        assert set(codec.names) == set(stored), codec.what
        for name in stored:
            assert codec.name(codec.value(name)) == name
