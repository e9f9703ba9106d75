"""Resource types and list orders on the wire, by the enums' descriptors."""

from __future__ import annotations

import pytest

from wee5.resources.v1 import resources_pb2
from wee5_resources.errors import InvalidResource
from wee5_resources.mappers import RESOURCE_TYPES, order_from_proto, type_from_proto
from wee5_resources.models import RESOURCE_TYPES as STORED_TYPES
from wee5_resources.service import ORDERS


def test_the_stored_types_are_the_enums_names() -> None:
    assert RESOURCE_TYPES.names == STORED_TYPES
    assert type_from_proto(resources_pb2.RESOURCE_TYPE_SOP, required=True) == "sop"
    assert type_from_proto(resources_pb2.RESOURCE_TYPE_UNSPECIFIED, required=False) is None
    with pytest.raises(InvalidResource, match="template, sop, playbook, course or video"):
        type_from_proto(resources_pb2.RESOURCE_TYPE_UNSPECIFIED, required=True)


def test_each_order_is_a_column_the_service_sorts_by() -> None:
    orders = [order_from_proto(value) for _, value in resources_pb2.ResourceOrderBy.items()]
    assert orders[0] == "created_at"  # unset: newest first
    assert sorted(set(orders)) == sorted(ORDERS)
    with pytest.raises(InvalidResource, match="order_by"):
        order_from_proto(99)
