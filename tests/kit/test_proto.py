"""Enum codecs from descriptors and timestamp converters (no infrastructure)."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from wee5.billing.v1 import billing_pb2
from wee5.rewards.v1 import rewards_pb2
from wee5_kit.errors import InvalidArgument
from wee5_kit.proto import (
    EnumCodec,
    UnknownEnumName,
    from_timestamp,
    optional_timestamp,
    timestamp_field,
    to_timestamp,
)

REWARD_KINDS = EnumCodec(rewards_pb2.RewardKind)


def test_names_are_the_values_without_prefix_in_declaration_order() -> None:
    assert REWARD_KINDS.names == ("free_days", "discount_code", "badge", "role")
    assert REWARD_KINDS.value("discount_code") == rewards_pb2.REWARD_KIND_DISCOUNT_CODE
    assert REWARD_KINDS.name(rewards_pb2.REWARD_KIND_ROLE) == "role"
    assert "badge" in REWARD_KINDS
    assert "unspecified" not in REWARD_KINDS


def test_every_value_round_trips() -> None:
    for name, value in rewards_pb2.RewardStatus.items():
        codec = EnumCodec(rewards_pb2.RewardStatus)
        if value == 0:
            assert codec.name_or_none(value) is None
        else:
            assert codec.value(codec.name(value)) == value
            assert name.lower().endswith(codec.name(value))


def test_unknown_name_is_invalid_argument_listing_the_allowed_names() -> None:
    with pytest.raises(UnknownEnumName) as raised:
        EnumCodec(billing_pb2.Plan).value("gold")
    assert raised.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message == "unknown plan 'gold'; one of: free, premium, enterprise"


def test_unspecified_value_has_no_name() -> None:
    codec = EnumCodec(billing_pb2.BillingInterval, what="billing interval")
    assert codec.name_or_none(billing_pb2.BILLING_INTERVAL_UNSPECIFIED) is None
    with pytest.raises(InvalidArgument, match="billing interval is required; one of: monthly"):
        codec.name(billing_pb2.BILLING_INTERVAL_UNSPECIFIED)


def test_timestamps_are_utc_and_naive_means_utc() -> None:
    aware = datetime(2026, 12, 2, 13, 30, 5, 250000, tzinfo=UTC)
    assert from_timestamp(to_timestamp(aware)) == aware
    assert from_timestamp(to_timestamp(aware.replace(tzinfo=None))) == aware
    assert optional_timestamp(None) is None


def test_timestamp_field_is_none_when_unset() -> None:
    sub = billing_pb2.Subscription()
    assert timestamp_field(sub, "current_period_end") is None
    moment = datetime(2027, 1, 1, tzinfo=UTC)
    sub.current_period_end.CopyFrom(to_timestamp(moment))
    assert timestamp_field(sub, "current_period_end") == moment
