"""A community's XP rules (read by admins; changed by admins on a premium plan) and admin
XP adjustments. Both changes are recorded in the audit log with before and after."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.xp.v1 import xp_pb2
from wee5_gateway.access import Action, Principal, authorize
from wee5_gateway.audit import record_audit
from wee5_gateway.clients import Downstream
from wee5_gateway.models import AuditEntry
from wee5_gateway.openapi import API_KEY_AUTH, BEARER_AUTH, COOKIE_AUTH
from wee5_gateway.problems import problem_responses
from wee5_gateway.tiers.entitlements import Entitlements, Feature, provide_entitlements

Sessions = async_sessionmaker[AsyncSession]
COMMUNITY = "/api/v1/communities/{community_id:str}"
SECURITY: list[dict[str, list[str]]] = [{BEARER_AUTH: []}, {COOKIE_AUTH: []}, {API_KEY_AUTH: []}]

Xp = Annotated[int, msgspec.Meta(ge=0, le=1000)]
Multiplier = Annotated[float, msgspec.Meta(ge=0, le=10)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class XpRange(msgspec.Struct, forbid_unknown_fields=True):
    """Fixed when min == max, else drawn uniformly from [min, max]."""

    min: Xp
    max: Xp


class Boost(msgspec.Struct, forbid_unknown_fields=True):
    """A timed multiplier, e.g. double XP this weekend: [starts_at, ends_at)."""

    starts_at: datetime
    ends_at: datetime
    multiplier: Multiplier
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""


class LevelCurve(msgspec.Struct, forbid_unknown_fields=True):
    """A preset (`default`: MEE6's 5n²+50n+100 from level 1; `mee6`: the same from level 0;
    `linear`; `cubic`), or `custom` with a shape and its coefficients, highest power first
    (linear a·n+b, quadratic a·n²+b·n+c, cubic a·n³+b·n²+c·n+d for the n-th step)."""

    preset: Literal["default", "mee6", "linear", "cubic", "custom"] = "default"
    shape: Literal["linear", "quadratic", "cubic"] | None = None
    coefficients: Annotated[list[int], msgspec.Meta(max_length=4)] = msgspec.field(
        default_factory=list
    )
    first_level: Literal[0, 1] = 1


class XpConfigIn(msgspec.Struct, forbid_unknown_fields=True):
    message: XpRange
    post: XpRange
    reaction: XpRange
    # XP of the kinds this community defines (activities with kind "custom" name one).
    custom_kinds: Annotated[dict[Name, XpRange], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=dict
    )
    cooldown_seconds: Annotated[int, msgspec.Meta(ge=0, le=604800)] = 60
    min_message_length: Annotated[int, msgspec.Meta(ge=0, le=4000)] = 0
    no_xp_channel_ids: Annotated[list[Name], msgspec.Meta(max_length=500)] = msgspec.field(
        default_factory=list
    )
    channel_multipliers: Annotated[dict[Name, Multiplier], msgspec.Meta(max_length=500)] = (
        msgspec.field(default_factory=dict)
    )
    boosts: Annotated[list[Boost], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list
    )
    curve: LevelCurve = msgspec.field(default_factory=LevelCurve)
    max_level: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1000
    # IANA time zone of the community's days, weeks and months (boards, streaks).
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"


class XpConfigView(XpConfigIn, kw_only=True):
    community_id: str


class XpConfigChanged(XpConfigView, kw_only=True):
    # Members whose level the new curve changed (XP never changes with the curve).
    levels_changed: int = 0


class XpAdjustmentIn(msgspec.Struct, forbid_unknown_fields=True):
    # XP to add; negative to take away (never below 0 in total).
    delta: Annotated[int, msgspec.Meta(ge=-10_000_000, le=10_000_000)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=180)]
    # Sending the same key again changes nothing.
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=150)]


class XpAdjusted(msgspec.Struct):
    community_id: str
    user_id: str
    xp: int
    level: int
    previous_xp: int
    previous_level: int
    # True when the idempotency key was used before: nothing changed this time.
    duplicate: bool


def _config_to_proto(body: XpConfigIn) -> xp_pb2.XpConfig:
    def rng(rate: XpRange) -> xp_pb2.XpRange:
        return xp_pb2.XpRange(min=rate.min, max=rate.max)

    config = xp_pb2.XpConfig(
        message=rng(body.message),
        post=rng(body.post),
        reaction=rng(body.reaction),
        cooldown_seconds=body.cooldown_seconds,
        min_message_length=body.min_message_length,
        no_xp_channel_ids=body.no_xp_channel_ids,
        curve=body.curve.preset,
        max_level=body.max_level,
        custom_kinds={name: rng(rate) for name, rate in body.custom_kinds.items()},
        channel_multipliers=body.channel_multipliers,
        level_curve=xp_pb2.LevelCurve(
            shape=body.curve.shape or "",
            coefficients=body.curve.coefficients,
            first_level=body.curve.first_level,
        ),
        timezone=body.timezone,
    )
    for boost in body.boosts:
        window = config.boosts.add(multiplier=boost.multiplier, name=boost.name)
        window.starts_at.FromDatetime(_utc(boost.starts_at))
        window.ends_at.FromDatetime(_utc(boost.ends_at))
    return config


def _config_view(community_id: str, config: xp_pb2.XpConfig) -> XpConfigView:
    def rng(rate: xp_pb2.XpRange) -> XpRange:
        return XpRange(min=rate.min, max=rate.max)

    custom = config.curve == "custom"
    return XpConfigView(
        community_id=community_id,
        message=rng(config.message),
        post=rng(config.post),
        reaction=rng(config.reaction),
        custom_kinds={name: rng(rate) for name, rate in config.custom_kinds.items()},
        cooldown_seconds=config.cooldown_seconds,
        min_message_length=config.min_message_length,
        no_xp_channel_ids=list(config.no_xp_channel_ids),
        channel_multipliers=dict(config.channel_multipliers),
        boosts=[
            Boost(
                starts_at=b.starts_at.ToDatetime(tzinfo=UTC),
                ends_at=b.ends_at.ToDatetime(tzinfo=UTC),
                multiplier=b.multiplier,
                name=b.name,
            )
            for b in config.boosts
        ],
        curve=LevelCurve(
            preset=config.curve,  # type: ignore[arg-type]
            shape=config.level_curve.shape if custom else None,  # type: ignore[arg-type]
            coefficients=list(config.level_curve.coefficients) if custom else [],
            first_level=config.level_curve.first_level,  # type: ignore[arg-type]
        ),
        max_level=config.max_level,
        timezone=config.timezone,
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _plain(view: XpConfigView) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(view)
    data.pop("community_id", None)
    return data


class XpConfigController(Controller):
    path = f"{COMMUNITY}/xp-config"
    tags = ["xp"]
    security = SECURITY
    dependencies = {"entitlements": Provide(provide_entitlements, sync_to_thread=False)}

    @get(
        "/",
        operation_id="getXpConfig",
        summary="The community's XP rules: XP per kind, cooldown, channels, boosts, level curve",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_config(
        self,
        community_id: FromPath[str],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        downstream: NamedDependency[Downstream],
    ) -> XpConfigView:
        await authorize(principal, community_id, Action.MANAGE_XP_CONFIG, sessionmaker)
        reply = await downstream.xp.GetXpConfig(
            xp_pb2.GetXpConfigRequest(community_id=community_id)
        )
        return _config_view(community_id, reply.config)

    @put(
        "/",
        operation_id="updateXpConfig",
        summary="Replace the community's XP rules (admins; premium plan; audited). A new level "
        "curve recomputes every member's level; rewards of levels reached before are never "
        "granted again.",
        responses=problem_responses(400, 401, 402, 403, 503, 504),
    )
    async def update_config(
        self,
        community_id: FromPath[str],
        data: JSONBody[XpConfigIn],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        downstream: NamedDependency[Downstream],
        entitlements: NamedDependency[Entitlements],
    ) -> XpConfigChanged:
        await authorize(principal, community_id, Action.MANAGE_XP_CONFIG, sessionmaker)
        await entitlements.require_feature(community_id, Feature.CUSTOM_XP_RATES)
        reply = await downstream.xp.UpdateXpConfig(
            xp_pb2.UpdateXpConfigRequest(community_id=community_id, config=_config_to_proto(data))
        )
        after = _config_view(community_id, reply.config)
        # xp commits first: the audit log never records a change that did not happen.
        async with sessionmaker.begin() as session:
            await record_audit(
                session,
                principal,
                community_id=community_id,
                action="xp_config.changed",
                target=f"community:{community_id}",
                before=_plain(_config_view(community_id, reply.previous)),
                after={**_plain(after), "levels_changed": reply.levels_changed},
            )
        return XpConfigChanged(
            **{f: getattr(after, f) for f in after.__struct_fields__},
            levels_changed=reply.levels_changed,
        )


async def _adjustment_audited(session: AsyncSession, community_id: str, key: str) -> bool:
    found = await session.scalar(
        select(AuditEntry.id)
        .where(
            AuditEntry.community_id == community_id,
            AuditEntry.action == "xp.adjusted",
            AuditEntry.after["idempotency_key"].astext == key,
        )
        .limit(1)
    )
    return found is not None


class XpAdjustmentController(Controller):
    path = f"{COMMUNITY}/members/{{user_id:str}}/xp-adjustments"
    tags = ["xp"]
    security = SECURITY

    @post(
        "/",
        status_code=200,
        operation_id="adjustMemberXp",
        summary="Add or take away a member's XP with a reason (admins; audited). A new ledger "
        "entry: the level may go down; idempotent on idempotency_key.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def adjust(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        data: JSONBody[XpAdjustmentIn],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        downstream: NamedDependency[Downstream],
    ) -> XpAdjusted:
        await authorize(principal, community_id, Action.ADJUST_XP, sessionmaker)
        actor = str(principal.account_id or f"api_key:{principal.api_key_id}")
        reply = await downstream.xp.AdjustXp(
            xp_pb2.AdjustXpRequest(
                community_id=community_id,
                user_id=user_id,
                delta=data.delta,
                reason=data.reason,
                actor_user_id=actor[:64],
                idempotency_key=data.idempotency_key,
            )
        )
        async with sessionmaker.begin() as session:
            # A retry after xp committed but before this was written records it then.
            if not reply.duplicate or not await _adjustment_audited(
                session, community_id, data.idempotency_key
            ):
                await record_audit(
                    session,
                    principal,
                    community_id=community_id,
                    action="xp.adjusted",
                    target=f"member:{user_id}",
                    before={"xp": reply.previous_xp, "level": reply.previous_level},
                    after={
                        "xp": reply.total_xp,
                        "level": reply.level,
                        "delta": data.delta,
                        "reason": data.reason,
                        "idempotency_key": data.idempotency_key,
                    },
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
