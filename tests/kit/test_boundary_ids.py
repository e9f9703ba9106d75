"""Every gRPC service checks the ids a request carries before acting on it (one rule set,
wee5_kit.communities): a NUL, a control character or an over-long id is INVALID_ARGUMENT
naming the field, nested messages included, and the method never runs."""

from __future__ import annotations

from collections import Counter

import grpc
import pytest
from google.protobuf.message import Message

from tests.conftest import free_port
from wee5.xp.v1 import xp_pb2
from wee5_gateway.core.problems import field_violations
from wee5_kit.communities import COMMUNITY_ID_RULE, COMPANY_ID_RULE, MEMBER_ID_RULE
from wee5_kit.grpc import GrpcServer, channel

XP = xp_pb2.DESCRIPTOR.services_by_name["XpService"]


@pytest.mark.parametrize(
    ("request_message", "named"),
    [
        (xp_pb2.GetLeaderboardRequest(community_id="exp_a\x00b"), "community_id"),
        (xp_pb2.GetLeaderboardRequest(community_id="exp_a.b"), "community_id"),
        (xp_pb2.GetLeaderboardRequest(community_id="x" * 65), "community_id"),
        (xp_pb2.GetCompanyLeaderboardRequest(company_id="biz_a:b"), "company_id"),
        (
            xp_pb2.GetLeaderboardRequest(community_id="exp_ok", viewer_user_id="u\x01"),
            "viewer_user_id",
        ),
        (
            xp_pb2.RecordActivitiesRequest(
                activities=[
                    xp_pb2.Activity(community_id="exp_ok", user_id="user_ok"),
                    xp_pb2.Activity(community_id="exp_ok", user_id="user_" + "y" * 60),
                ]
            ),
            "activities.user_id",
        ),
    ],
)
async def test_an_id_no_store_could_hold_is_refused_before_the_method_runs(
    request_message: Message, named: str
) -> None:
    calls: Counter[str] = Counter()
    method = type(request_message).__name__.removesuffix("Request")

    async def handle(request: object, context: object) -> bytes:
        calls[method] += 1
        return b""

    handler = grpc.method_handlers_generic_handler(
        XP.full_name,
        {
            method: grpc.unary_unary_rpc_method_handler(
                handle, request_deserializer=type(request_message).FromString
            )
        },
    )
    server = GrpcServer("ids", host="127.0.0.1", port=free_port())
    server.add_service(XP.full_name, lambda s: s.add_generic_rpc_handlers((handler,)))
    await server.start()
    try:
        async with channel(server.address) as chan:
            call = chan.unary_unary(
                f"/{XP.full_name}/{method}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=None,
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(request_message)
    finally:
        await server.stop()

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() in {COMMUNITY_ID_RULE, COMPANY_ID_RULE, MEMBER_ID_RULE}
    assert [error["key"] for error in field_violations(refused.value)] == [named]
    assert calls == {}
