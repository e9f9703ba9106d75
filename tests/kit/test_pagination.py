"""Page tokens: what is encoded comes back; anything else is INVALID_ARGUMENT."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import grpc
import pytest

from wee5_kit.pagination import (
    InvalidPageToken,
    decode_page_token,
    encode_page_token,
    take_page,
)


def _forge(parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def test_parts_round_trip() -> None:
    token = encode_page_token(40, "2026-11-30", None)
    assert decode_page_token(token, int, str, (str, type(None))) == (40, "2026-11-30", None)
    assert "=" not in token


@pytest.mark.parametrize(
    "token",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _forge({"offset": 1}),  # not a list
        _forge([1, 2]),  # too many parts
        _forge(["1"]),  # a string where an int belongs
        _forge([True]),  # JSON true is not 1
        _forge([10**33]),  # would overflow BIGINT in SQL
        "A" * 2000,
    ],
)
def test_forged_or_damaged_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidPageToken) as raised:
        decode_page_token(token, int)
    assert raised.value.status == grpc.StatusCode.INVALID_ARGUMENT


def test_strings_with_nul_are_rejected() -> None:
    with pytest.raises(InvalidPageToken, match="cursor"):
        decode_page_token(encode_page_token("a\x00b"), str, name="cursor")


def test_take_page_reads_one_row_more_to_know_if_another_page_exists() -> None:
    assert take_page([1, 2, 3], 2) == ([1, 2], True)
    assert take_page([1, 2], 2) == ([1, 2], False)
    assert take_page([], 5) == ([], False)


def test_aware_times_and_uuids_round_trip_as_themselves() -> None:
    moment = datetime(2026, 12, 2, 14, 0, 0, 123456, tzinfo=UTC)
    key = uuid.uuid4()
    assert decode_page_token(encode_page_token(moment, key), datetime, uuid.UUID) == (moment, key)


@pytest.mark.parametrize(
    ("parts", "kinds"),
    [
        (["2026-12-02T14:00:00"], (datetime,)),  # naive: which zone?
        (["yesterday"], (datetime,)),
        ([5], (datetime,)),
        (["not-a-uuid"], (uuid.UUID,)),
    ],
)
def test_times_and_uuids_that_do_not_parse_are_rejected(
    parts: list[object], kinds: tuple[type, ...]
) -> None:
    with pytest.raises(InvalidPageToken):
        decode_page_token(_forge(parts), *kinds)
