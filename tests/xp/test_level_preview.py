"""The level table of a curve before it is saved (the settings editor's preview), over the real
xp gRPC server: the same numbers members' levels follow, and a curve out of bounds named by
field instead of a table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.xp.conftest import set_config
from wee5.xp.v1 import xp_pb2

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub as Xp


async def test_the_default_curve_previews_mee6_steps_from_level_one(xp_rpc: Xp) -> None:
    reply = await xp_rpc.PreviewLevels(xp_pb2.PreviewLevelsRequest(curve="default"))

    rows = [(r.level, r.xp_for_level, r.total_xp) for r in reply.rows]
    assert len(rows) == 20
    assert rows[:4] == [(1, 0, 0), (2, 100, 100), (3, 155, 255), (4, 220, 475)]
    assert not reply.errors


async def test_a_custom_curve_previews_the_levels_members_then_reach(
    xp_rpc: Xp, community_id: str
) -> None:
    curve = xp_pb2.LevelCurve(shape="linear", coefficients=[0, 50], first_level=1)
    preview = await xp_rpc.PreviewLevels(
        xp_pb2.PreviewLevelsRequest(curve="custom", level_curve=curve, levels=5)
    )
    assert [(r.level, r.total_xp) for r in preview.rows] == [
        (1, 0),
        (2, 50),
        (3, 100),
        (4, 150),
        (5, 200),
    ]

    await set_config(xp_rpc, community_id, curve="custom", level_curve=curve)
    await xp_rpc.AdjustXp(
        xp_pb2.AdjustXpRequest(
            community_id=community_id,
            user_id="user_a",
            delta=150,
            reason="welcome",
            actor_user_id="admin",
            idempotency_key="k1",
        )
    )
    member = await xp_rpc.GetMember(
        xp_pb2.GetMemberRequest(community_id=community_id, user_id="user_a")
    )
    assert member.member.level == 4


async def test_a_curve_out_of_bounds_previews_its_errors_by_field(xp_rpc: Xp) -> None:
    reply = await xp_rpc.PreviewLevels(
        xp_pb2.PreviewLevelsRequest(
            curve="custom",
            level_curve=xp_pb2.LevelCurve(shape="cubic", coefficients=[1, 2], first_level=1),
        )
    )

    assert not reply.rows
    assert dict(reply.errors) == {
        "curve.coefficients": "a cubic curve takes 4 coefficients, highest power first"
    }
