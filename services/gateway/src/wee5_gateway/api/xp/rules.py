"""The XP rules and adjustments as the JSON routes and the dashboard pages both change them:
one function per write (the plan gate, the call to xp, the audit entry), and the level-table
preview computed by xp."""

from __future__ import annotations

import msgspec

from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.xp import mappers
from wee5_gateway.api.xp.reads import member_standing
from wee5_gateway.api.xp.schemas import (
    LevelCurve,
    LevelPreview,
    LevelRow,
    XpAdjusted,
    XpAdjustmentIn,
    XpConfigChanged,
    XpConfigIn,
    XpConfigView,
)
from wee5_gateway.core.access import Principal
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.entitlements import Entitlements, Feature


async def read_config(downstream: Downstream, community_id: str) -> XpConfigView:
    reply = await downstream.xp.GetXpConfig(xp_pb2.GetXpConfigRequest(community_id=community_id))
    return mappers.config_view(community_id, reply.config)


async def update_config(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    community_id: str,
    data: XpConfigIn,
) -> XpConfigChanged:
    """Replaces the community's XP rules (premium: 402 otherwise), audited."""
    await entitlements.require_feature(community_id, Feature.CUSTOM_XP_RATES)
    async with audit.change(
        "xp_config.changed",
        target=f"community:{community_id}",
        intent=msgspec.to_builtins(data),
    ) as change:
        reply = await downstream.xp.UpdateXpConfig(
            xp_pb2.UpdateXpConfigRequest(
                community_id=community_id, config=mappers.config_to_proto(data)
            )
        )
        after = mappers.config_view(community_id, reply.config)
        change.done(
            before=mappers.audited_config(mappers.config_view(community_id, reply.previous)),
            after={**mappers.audited_config(after), "levels_changed": reply.levels_changed},
        )
    return XpConfigChanged(
        **{f: getattr(after, f) for f in after.__struct_fields__},
        levels_changed=reply.levels_changed,
    )


async def preview_levels(
    downstream: Downstream, curve: LevelCurve, max_level: int, levels: int = 20
) -> LevelPreview:
    """Levels 1..`levels` under `curve` as xp computes them, or the curve's errors by field."""
    reply = await downstream.xp.PreviewLevels(
        xp_pb2.PreviewLevelsRequest(
            curve=curve.preset,
            level_curve=mappers.level_curve_to_proto(curve),
            max_level=max_level,
            levels=levels,
        )
    )
    return LevelPreview(
        rows=[LevelRow(r.level, r.xp_for_level, r.total_xp) for r in reply.rows],
        errors=dict(reply.errors),
    )


async def adjust_xp(
    downstream: Downstream,
    audit: Auditor,
    principal: Principal,
    community_id: str,
    user_id: str,
    data: XpAdjustmentIn,
) -> XpAdjusted:
    """Adds (or takes away) a member's XP with a reason, audited; idempotent on the key."""
    request = {
        "delta": data.delta,
        "reason": data.reason,
        "idempotency_key": data.idempotency_key,
    }
    # A retry after a crash completes the entry its first attempt left pending, with the
    # state that attempt read before its call: xp answers a repeated key with the current
    # state, which is the state after.
    async with audit.change(
        "xp.adjusted",
        target=f"member:{user_id}",
        intent=request,
        idempotency_key=data.idempotency_key,
        before=await member_standing(downstream, community_id, user_id),
    ) as change:
        reply = await downstream.xp.AdjustXp(
            xp_pb2.AdjustXpRequest(
                community_id=community_id,
                user_id=user_id,
                delta=data.delta,
                reason=data.reason,
                actor_user_id=principal.actor_id[:64],
                idempotency_key=data.idempotency_key,
            )
        )
        change.done(
            before=None
            if reply.duplicate
            else {"xp": reply.previous_xp, "level": reply.previous_level},
            after={"xp": reply.total_xp, "level": reply.level, **request},
        )
    return XpAdjusted(
        community_id=community_id,
        user_id=user_id,
        xp=reply.total_xp,
        level=reply.level,
        previous_xp=reply.previous_xp,
        previous_level=reply.previous_level,
        duplicate=reply.duplicate,
    )
