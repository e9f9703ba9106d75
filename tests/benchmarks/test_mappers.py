"""The protobuf enums' names (from their descriptors) are the benchmarks domain's names, so
the codecs in mappers.py need no table of their own."""

from __future__ import annotations

import pytest

from wee5.benchmarks.v1 import benchmarks_pb2
from wee5_benchmarks.categories import Category, FieldType
from wee5_benchmarks.errors import InvalidBenchmarkRequest
from wee5_benchmarks.mappers import (
    CONFIDENCES,
    FIELD_TYPES,
    SUBMISSION_STATUSES,
    category_from_proto,
    category_to_proto,
)


def test_each_category_round_trips_through_its_enum_value() -> None:
    assert [category_from_proto(category_to_proto(c)) for c in Category] == list(Category)
    assert category_to_proto(Category.OPERATIONAL) == benchmarks_pb2.CATEGORY_OPERATIONAL
    assert category_from_proto(benchmarks_pb2.CATEGORY_UNSPECIFIED) is None
    with pytest.raises(InvalidBenchmarkRequest):
        category_from_proto(99)


def test_the_domain_names_are_the_enums_names() -> None:
    # FIELD_TYPE_TEXT exists on the wire only: no schema field is free text.
    assert {t.value for t in FieldType} <= set(FIELD_TYPES.names)
    assert FIELD_TYPES.value(FieldType.MULTI_ENUM.value) == benchmarks_pb2.FIELD_TYPE_MULTI_ENUM
    assert set(SUBMISSION_STATUSES.names) == {"accepted", "pending_review", "rejected"}
    assert CONFIDENCES.names == ("low", "medium", "high")
