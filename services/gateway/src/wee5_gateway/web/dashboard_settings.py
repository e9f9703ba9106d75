"""The dashboard's settings pages (admins): the XP rules with a live level-table preview,
reward rules, badges, and members (search, adjust XP with a reason, history).

Every write is the JSON route's own function (api/xp/rules.py, api/rewards/changes.py: the plan
gate, the call, the audit entry); a form becomes the JSON route's body type (web/forms.py), so
the same bounds apply and a refusal shows next to its field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import grpc
from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from wee5.rewards.v1 import rewards_pb2
from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.rewards import changes
from wee5_gateway.api.rewards.mappers import badge_view, rule_view
from wee5_gateway.api.rewards.schemas import BadgeBody, BadgeView, RewardRuleBody, RewardRuleView
from wee5_gateway.api.xp import mappers as xp_mappers
from wee5_gateway.api.xp import rules
from wee5_gateway.api.xp.schemas import (
    LeaderboardEntry,
    LevelPreview,
    LevelPreviewIn,
    XpAdjustmentIn,
    XpConfigIn,
    XpConfigView,
)
from wee5_gateway.core.access import Action, requires
from wee5_gateway.core.deps import AccessDep, AuditorDep, DownstreamDep, EntitlementsDep
from wee5_gateway.core.entitlements import Feature
from wee5_gateway.core.problems import PlanRequired
from wee5_gateway.web.dashboard import admin_context
from wee5_gateway.web.forms import FORM_ERROR, FieldErrors, parse_form, refused_fields
from wee5_gateway.web.page import Page

PREVIEW_LEVELS = 20
# Members searched by name: the board's first pages, most XP first.
SEARCH_PAGES = 5
SEARCH_PAGE_SIZE = 100
HISTORY_PAGE = 25
_LINE = re.compile(r"^\s*([^=:\s][^=:]*?)\s*[=:]\s*(.+?)\s*$")
_RANGE = re.compile(r"^(\d+)\s*(?:(?:-|\.\.|to)\s*(\d+))?$")
_CURVE_FIELDS = ("curve.preset", "curve.shape", "curve.coefficients", "curve.first_level")


def _form_fields(form: FormMultiDict) -> dict[str, str]:
    return {key: str(value).strip() for key, value in form.items()}


async def _read_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    return _form_fields(await request.form())


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    """`a.b` = v -> {"a": {"b": v}}: a form's flat names as the API body's nesting."""
    *parents, leaf = dotted.split(".")
    for parent in parents:
        target = target.setdefault(parent, {})
    target[leaf] = value


def _nested(values: Mapping[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in names:
        value = values.get(name, "")
        if value != "":
            _put(body, name, value)
    return body


def _field_of(key: str, fields: tuple[str, ...]) -> str:
    """The form field an error belongs to: `curve.coefficients[1]` -> `curve.coefficients`,
    `channel_multipliers[...]` -> `channel_multipliers`."""
    best = max(
        (f for f in fields if key == f or key.startswith((f + ".", f + "["))), key=len, default=None
    )
    return best or key


def _on_fields(errors: FieldErrors, fields: tuple[str, ...]) -> dict[str, str]:
    return {_field_of(key, fields): message for key, message in errors.errors.items()}


# --- the XP rules ------------------------------------------------------------------------------

_RANGE_FIELDS = tuple(
    f"{kind}.{end}" for kind in ("message", "post", "reaction") for end in ("min", "max")
)
_PLAIN_FIELDS = (*_RANGE_FIELDS, "cooldown_seconds", "min_message_length", "max_level", "timezone")
CONFIG_FIELDS = (
    *_PLAIN_FIELDS,
    "custom_kinds",
    "no_xp_channel_ids",
    "channel_multipliers",
    "boosts",
    *_CURVE_FIELDS,
)


def config_values(config: XpConfigView) -> dict[str, Any]:
    """The form's fields showing the community's rules."""
    values: dict[str, Any] = {
        "message.min": config.message.min,
        "message.max": config.message.max,
        "post.min": config.post.min,
        "post.max": config.post.max,
        "reaction.min": config.reaction.min,
        "reaction.max": config.reaction.max,
        "cooldown_seconds": config.cooldown_seconds,
        "min_message_length": config.min_message_length,
        "max_level": config.max_level,
        "timezone": config.timezone,
        "custom_kinds": "\n".join(
            f"{name} = {r.min}" if r.min == r.max else f"{name} = {r.min}-{r.max}"
            for name, r in config.custom_kinds.items()
        ),
        "no_xp_channel_ids": "\n".join(config.no_xp_channel_ids),
        "channel_multipliers": "\n".join(
            f"{channel} = {multiplier:g}"
            for channel, multiplier in config.channel_multipliers.items()
        ),
        "curve.preset": config.curve.preset,
        "curve.shape": config.curve.shape or "",
        "curve.coefficients": ", ".join(str(c) for c in config.curve.coefficients),
        "curve.first_level": config.curve.first_level,
        "boosts": [
            {
                "name": b.name,
                "starts_at": _local_input(b.starts_at),
                "ends_at": _local_input(b.ends_at),
                "multiplier": f"{b.multiplier:g}",
            }
            for b in config.boosts
        ],
    }
    return {k: v if isinstance(v, list) else str(v) for k, v in values.items()}


def _local_input(moment: datetime) -> str:
    """A UTC time as a `datetime-local` input shows it."""
    return moment.strftime("%Y-%m-%dT%H:%M")


def _utc(text: str) -> str:
    """A `datetime-local` value (no zone) read as UTC, as the form says."""
    if text and not re.search(r"(Z|[+-]\d\d:?\d\d)$", text):
        return text + "Z"
    return text


def _lines(text: str) -> list[str]:
    return [line.strip() for line in re.split(r"[\n,]", text) if line.strip()]


def _pairs(text: str, field: str, example: str) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise FieldErrors({field: f"line {number}: write it as {example}"})
        pairs.append((match.group(1), match.group(2)))
    return pairs


def _boost_rows(form: Mapping[str, str]) -> list[dict[str, str]]:
    rows = []
    index = 0
    while f"boosts.{index}.multiplier" in form:
        row = {
            key: form.get(f"boosts.{index}.{key}", "")
            for key in ("name", "starts_at", "ends_at", "multiplier")
        }
        rows.append(row)
        index += 1
    return rows


def config_form_values(form: Mapping[str, str]) -> dict[str, Any]:
    """What the admin typed, to show again with the errors."""
    values: dict[str, Any] = {
        name: form.get(name, "") for name in CONFIG_FIELDS if name != "boosts"
    }
    values["boosts"] = [row for row in _boost_rows(form) if any(row.values())]
    return values


def config_body(form: Mapping[str, str]) -> XpConfigIn:
    """The form as the JSON route's body (the same bounds), or FieldErrors by field."""
    body = _nested(form, _PLAIN_FIELDS)
    body["curve"] = curve_body(form)
    custom: dict[str, Any] = {}
    for name, text in _pairs(
        form.get("custom_kinds", ""), "custom_kinds", "name = 10 or name = 5-15"
    ):
        found = _RANGE.match(text)
        if found is None:
            raise FieldErrors({"custom_kinds": f"{name}: XP is a number or a range such as 5-15"})
        low, high = found.group(1), found.group(2) or found.group(1)
        custom[name] = {"min": low, "max": high}
    body["custom_kinds"] = custom
    body["no_xp_channel_ids"] = _lines(form.get("no_xp_channel_ids", ""))
    body["channel_multipliers"] = dict(
        _pairs(form.get("channel_multipliers", ""), "channel_multipliers", "channel_id = 1.5")
    )
    body["boosts"] = [
        {
            "name": row["name"],
            "starts_at": _utc(row["starts_at"]),
            "ends_at": _utc(row["ends_at"]),
            "multiplier": row["multiplier"],
        }
        for row in _boost_rows(form)
        if any(row.values())
    ]
    for i, boost in enumerate(body["boosts"]):
        missing = [key for key in ("starts_at", "ends_at", "multiplier") if not boost[key]]
        if missing:
            raise FieldErrors({"boosts": f"boost {i + 1}: {', '.join(missing)} required"})
    try:
        return parse_form(body, XpConfigIn)
    except FieldErrors as refused:
        raise FieldErrors(_on_fields(refused, CONFIG_FIELDS)) from None


def _config_errors(refused: FieldErrors) -> dict[str, str]:
    """Errors next to their fields. xp names the fields it refuses in its message
    (`post: min must not exceed max; timezone: …`, as the JSON route's 400 shows it); a
    range's error goes next to its min."""
    message = refused.errors.get(FORM_ERROR)
    if message is None or len(refused.errors) > 1:
        return _on_fields(refused, CONFIG_FIELDS)
    named: dict[str, str] = {}
    for part in message.split("; "):
        name, colon, problem = part.partition(": ")
        if name in ("message", "post", "reaction"):
            name = f"{name}.min"
        elif name == "curve":
            name = "curve.preset"
        field = _field_of(name, CONFIG_FIELDS)
        if not colon or field not in CONFIG_FIELDS:
            return refused.errors  # not a list of fields: shown above the form
        named[field] = problem
    return named


def curve_body(form: Mapping[str, str]) -> dict[str, Any]:
    curve: dict[str, Any] = {"preset": form.get("curve.preset") or "default"}
    if curve["preset"] == "custom":
        if form.get("curve.shape"):
            curve["shape"] = form["curve.shape"]
        curve["coefficients"] = _lines(form.get("curve.coefficients", ""))
        if form.get("curve.first_level"):
            curve["first_level"] = form["curve.first_level"]
    return curve


async def _preview(downstream: DownstreamDep, form: Mapping[str, str]) -> LevelPreview:
    """The level table of the curve in the form (as xp computes it), or its errors by field."""
    try:
        wanted = parse_form(
            {"curve": curve_body(form), **_nested(form, ("max_level",))}, LevelPreviewIn
        )
    except FieldErrors as refused:
        return LevelPreview(rows=[], errors=_on_fields(refused, CONFIG_FIELDS))
    preview = await rules.preview_levels(downstream, wanted.curve, wanted.max_level, PREVIEW_LEVELS)
    preview.errors = {_field_of(k, CONFIG_FIELDS): v for k, v in preview.errors.items()}
    return preview


async def _plan_notice(
    entitlements: EntitlementsDep, community_id: str, feature: Feature
) -> str | None:
    """Why the community may not change this (the JSON route's 402 words), or None."""
    try:
        await entitlements.require_feature(community_id, feature)
    except PlanRequired as refused:
        return refused.detail
    return None


class XpSettingsPage(Controller):
    path = "/{community_id:str}"

    @get("/settings", opt=requires(Action.MANAGE_XP_CONFIG), name="dashboard:settings")
    async def settings(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
    ) -> Template:
        values = config_values(await rules.read_config(downstream, community_id))
        return page.render(
            "dashboard_settings/settings.html",
            **admin_context(access, "settings"),
            community_id=community_id,
            values=values,
            errors={},
            preview=await _preview(downstream, values),
            plan_notice=await _plan_notice(entitlements, community_id, Feature.CUSTOM_XP_RATES),
            saved=None,
        )

    @post("/settings", opt=requires(Action.MANAGE_XP_CONFIG), status_code=200)
    async def save_settings(
        self,
        community_id: FromPath[str],
        request: Request[Any, Any, Any],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> Template:
        form = await _read_form(request)
        context: dict[str, Any] = {
            "community_id": community_id,
            "values": config_form_values(form),
            "errors": {},
            "plan_notice": await _plan_notice(entitlements, community_id, Feature.CUSTOM_XP_RATES),
            "saved": None,
        }
        status = 200
        try:
            data = config_body(form)
            changed = await refused_fields(
                rules.update_config(downstream, entitlements, audit, community_id, data)
            )
        except FieldErrors as refused:
            context["errors"], status = _config_errors(refused), 422
        except PlanRequired as refused:
            context["plan_notice"], status = refused.detail, 402
        else:
            context["values"] = config_values(changed)
            context["saved"] = changed.levels_changed
        context["preview"] = await _preview(downstream, context["values"])
        return page.render(
            "dashboard_settings/settings.html",
            **admin_context(access, "settings"),
            status_code=status,
            **context,
        )

    @get("/settings/levels", opt=requires(Action.MANAGE_XP_CONFIG))
    async def level_preview(
        self,
        community_id: FromPath[str],
        request: Request[Any, Any, Any],
        downstream: DownstreamDep,
    ) -> Template:
        """The level table of the curve being edited (htmx swaps it in as the fields change)."""
        form = {key: str(value).strip() for key, value in request.query_params.items()}
        return Template(
            template_name="dashboard_settings/_levels.html",
            context={"preview": await _preview(downstream, form)},
        )


# --- members -----------------------------------------------------------------------------------


def _matches(entry: LeaderboardEntry, query: str) -> bool:
    needle = query.casefold()
    return any(
        needle in (text or "").casefold()
        for text in (entry.display_name, entry.username, entry.user_id)
    )


async def _search_members(
    downstream: DownstreamDep, community_id: str, query: str
) -> tuple[list[LeaderboardEntry], bool]:
    """Members whose name, username or id contains `query`, most XP first, from the board's
    first pages; and whether more members were left unsearched."""
    found: list[LeaderboardEntry] = []
    cursor = ""
    for _ in range(SEARCH_PAGES if query else 1):
        reply = await downstream.xp.GetLeaderboard(
            xp_pb2.GetLeaderboardRequest(
                community_id=community_id,
                period=xp_pb2.PERIOD_ALL,
                limit=SEARCH_PAGE_SIZE,
                cursor=cursor,
            )
        )
        board = xp_mappers.leaderboard(community_id, "all", reply)
        found.extend(e for e in board.entries if not query or _matches(e, query))
        cursor = board.next_cursor or ""
        if not cursor:
            break
    return found, bool(cursor)


async def _member_context(
    downstream: DownstreamDep, community_id: str, user_id: str, cursor: str = ""
) -> dict[str, Any]:
    try:
        reply = await downstream.xp.GetMember(
            xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
        )
        member: xp_pb2.Member | None = reply.member
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        member = None  # no XP yet: an adjustment makes them known
    history = await downstream.xp.GetHistory(
        xp_pb2.GetHistoryRequest(
            community_id=community_id, user_id=user_id, page_size=HISTORY_PAGE, page_token=cursor
        )
    )
    return {
        "community_id": community_id,
        "user_id": user_id,
        "member": member,
        "history": xp_mappers.history(community_id, user_id, history),
        "values": {"idempotency_key": uuid.uuid4().hex},
        "errors": {},
        "adjusted": None,
    }


class MembersPage(Controller):
    path = "/{community_id:str}"

    @get("/members", opt=requires(Action.ADJUST_XP), name="dashboard:members")
    async def members(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        q: FromQuery[str] = "",
    ) -> Template:
        query = q.strip()[:100]
        found, more = await _search_members(downstream, community_id, query)
        return page.render(
            "dashboard_settings/members.html",
            **admin_context(access, "members"),
            community_id=community_id,
            query=query,
            members=found,
            more=more,
        )

    @get("/members/{user_id:str}", opt=requires(Action.ADJUST_XP))
    async def member(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        cursor: FromQuery[str] = "",
    ) -> Template:
        context = await _member_context(downstream, community_id, user_id, cursor)
        return page.render(
            "dashboard_settings/member.html", **admin_context(access, "members"), **context
        )

    @post("/members/{user_id:str}/xp", opt=requires(Action.ADJUST_XP), status_code=200)
    async def adjust(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        request: Request[Any, Any, Any],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> Template:
        form = await _read_form(request)
        status, errors, adjusted = 200, {}, None
        try:
            data = parse_form(form, XpAdjustmentIn)
            adjusted = await refused_fields(
                rules.adjust_xp(downstream, audit, access.principal, community_id, user_id, data)
            )
        except FieldErrors as refused:
            status, errors = 422, refused.errors
        except grpc.aio.AioRpcError as refused:
            if refused.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            status, errors = 409, {"delta": refused.details() or "refused"}
        context = await _member_context(downstream, community_id, user_id)
        if adjusted is None:
            context["values"] = form  # the same key again: a retry changes nothing twice
        context.update(errors=errors, adjusted=adjusted)
        return page.render(
            "dashboard_settings/member.html",
            **admin_context(access, "members"),
            status_code=status,
            **context,
        )


# --- reward rules ------------------------------------------------------------------------------

_DISCOUNT_FIELDS = tuple(
    f"discount.{name}"
    for name in (
        "type",
        "percent_off",
        "amount_off_minor",
        "currency",
        "duration_months",
        "expires_in_days",
    )
)
RULE_FIELDS = ("level", "kind", "free_days", "badge_id", "role_id", "enabled", *_DISCOUNT_FIELDS)


def rule_values(rule: RewardRuleView | None) -> dict[str, str]:
    if rule is None:
        return {"kind": "free_days", "enabled": "true", "discount.type": "percent"}
    values = {
        "level": str(rule.level),
        "kind": rule.kind,
        "free_days": str(rule.free_days or ""),
        "badge_id": rule.badge_id or "",
        "role_id": rule.role_id or "",
        "enabled": "true" if rule.enabled else "",
        "discount.type": "percent",
    }
    if rule.discount is not None:
        d = rule.discount
        values.update(
            {
                "discount.type": d.type,
                "discount.percent_off": str(d.percent_off or ""),
                "discount.amount_off_minor": str(d.amount_off_minor or ""),
                "discount.currency": d.currency or "",
                "discount.duration_months": str(d.duration_months),
                "discount.expires_in_days": str(d.expires_in_days or ""),
            }
        )
    return values


def rule_body(form: Mapping[str, str]) -> tuple[int, RewardRuleBody]:
    """The level and the JSON route's body: only the field of the chosen kind is sent."""
    level_text = form.get("level", "")
    if not level_text.isdigit() or int(level_text) < 1:
        raise FieldErrors({"level": "a level is a whole number from 1"})
    kind = form.get("kind", "")
    own = {
        "free_days": ("free_days",),
        "discount_code": _DISCOUNT_FIELDS,
        "badge": ("badge_id",),
        "role": ("role_id",),
    }.get(kind, ())
    body = _nested(form, ("kind", *own))
    body["enabled"] = form.get("enabled") == "true"
    return int(level_text), parse_form(body, RewardRuleBody)


async def _rules_context(
    downstream: DownstreamDep, entitlements: EntitlementsDep, community_id: str
) -> dict[str, Any]:
    reply = await downstream.rewards.ListRewardRules(
        rewards_pb2.ListRewardRulesRequest(community_id=community_id)
    )
    return {
        "community_id": community_id,
        "rules": [rule_view(rule) for rule in reply.rules],
        "badges": await _badges(downstream, community_id),
        "plan_notice": await _plan_notice(entitlements, community_id, Feature.REWARD_RULES),
        "errors": {},
        "notice": None,
    }


async def _badges(downstream: DownstreamDep, community_id: str) -> list[BadgeView]:
    reply = await downstream.rewards.ListBadges(
        rewards_pb2.ListBadgesRequest(community_id=community_id, page_size=200)
    )
    return [badge_view(badge) for badge in reply.badges]


class RewardsPage(Controller):
    path = "/{community_id:str}"

    @get("/rewards", opt=requires(Action.READ_REWARDS), name="dashboard:rewards")
    async def rewards(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        level: FromQuery[int | None] = None,
    ) -> Template:
        context = await _rules_context(downstream, entitlements, community_id)
        editing = next((r for r in context["rules"] if r.level == level), None)
        context["values"] = rule_values(editing)
        context["editing"] = editing is not None
        return page.render(
            "dashboard_settings/rewards.html", **admin_context(access, "rewards"), **context
        )

    @post("/rewards", opt=requires(Action.MANAGE_REWARDS), status_code=200)
    async def save_rule(
        self,
        community_id: FromPath[str],
        request: Request[Any, Any, Any],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> Template:
        form = await _read_form(request)
        status, errors, notice, plan = 200, {}, None, None
        try:
            level, data = rule_body(form)
            saved = await refused_fields(
                changes.upsert_rule(downstream, entitlements, audit, community_id, level, data)
            )
        except FieldErrors as refused:
            status, errors = 422, _on_fields(refused, RULE_FIELDS)
        except PlanRequired as refused:
            status, plan = 402, refused.detail
        else:
            notice = f"Level {saved.rule.level}: rule {'added' if saved.created else 'saved'}"
        context = await _rules_context(downstream, entitlements, community_id)
        context.update(
            values=rule_values(None) if status == 200 else form,
            editing=False,
            errors=errors,
            notice=notice,
        )
        if plan:
            context["plan_notice"] = plan
        return page.render(
            "dashboard_settings/rewards.html",
            **admin_context(access, "rewards"),
            status_code=status,
            **context,
        )

    @post("/rewards/{level:int}/delete", opt=requires(Action.MANAGE_REWARDS), status_code=200)
    async def delete_rule(
        self,
        community_id: FromPath[str],
        level: FromPath[int],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> Template:
        status, notice = 200, None
        try:
            await changes.delete_rule(downstream, entitlements, audit, community_id, level)
            notice = f"Level {level}: rule removed"
        except PlanRequired:
            status = 402
        context = await _rules_context(downstream, entitlements, community_id)
        context.update(values=rule_values(None), editing=False, notice=notice)
        return page.render(
            "dashboard_settings/rewards.html",
            **admin_context(access, "rewards"),
            status_code=status,
            **context,
        )


# --- badges ------------------------------------------------------------------------------------

BADGE_FIELDS = (
    "name",
    "description",
    "image_url",
    "role_id",
    "criteria.kind",
    "criteria.threshold",
    "criteria.activity_kind",
    "criteria.period",
)
AWARD_FIELDS = ("award.badge_id", "award.user_id")


async def _badges_context(
    downstream: DownstreamDep, entitlements: EntitlementsDep, community_id: str
) -> dict[str, Any]:
    return {
        "community_id": community_id,
        "badges": await _badges(downstream, community_id),
        "plan_notice": await _plan_notice(entitlements, community_id, Feature.BADGES),
        "values": {"criteria.kind": "manual", "criteria.period": "all_time"},
        "errors": {},
        "notice": None,
    }


class BadgesPage(Controller):
    path = "/{community_id:str}"

    @get("/badges", opt=requires(Action.MANAGE_BADGES), name="dashboard:badges")
    async def badges(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
    ) -> Template:
        context = await _badges_context(downstream, entitlements, community_id)
        return page.render(
            "dashboard_settings/badges.html", **admin_context(access, "badges"), **context
        )

    @post("/badges", opt=requires(Action.MANAGE_BADGES), status_code=200)
    async def create(
        self,
        community_id: FromPath[str],
        request: Request[Any, Any, Any],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> Template:
        form = await _read_form(request)
        status, errors, notice, plan = 200, {}, None, None
        try:
            data = parse_form(_nested(form, BADGE_FIELDS), BadgeBody)
            badge = await refused_fields(
                changes.create_badge(downstream, entitlements, audit, community_id, data)
            )
        except FieldErrors as refused:
            status, errors = 422, _on_fields(refused, BADGE_FIELDS)
        except PlanRequired as refused:
            status, plan = 402, refused.detail
        else:
            notice = f"Badge “{badge.name}” created"
        context = await _badges_context(downstream, entitlements, community_id)
        if status != 200:
            context["values"] = form
        context.update(errors=errors, notice=notice)
        if plan:
            context["plan_notice"] = plan
        return page.render(
            "dashboard_settings/badges.html",
            **admin_context(access, "badges"),
            status_code=status,
            **context,
        )

    @post("/badges/award", opt=requires(Action.MANAGE_BADGES), status_code=200)
    async def award(
        self,
        community_id: FromPath[str],
        request: Request[Any, Any, Any],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> Template:
        form = await _read_form(request)
        status, errors, notice, plan = 200, {}, None, None
        badge_id, user_id = form.get("award.badge_id", ""), form.get("award.user_id", "")
        try:
            if not badge_id.isdigit():
                raise FieldErrors({"award.badge_id": "choose a badge"})
            if not user_id:
                raise FieldErrors({"award.user_id": "the member's user id, e.g. user_…"})
            awarded = await refused_fields(
                changes.award_badge(
                    downstream,
                    entitlements,
                    audit,
                    access.principal,
                    community_id,
                    int(badge_id),
                    user_id,
                )
            )
        except FieldErrors as refused:
            status, errors = 422, {_field_of(k, AWARD_FIELDS): v for k, v in refused.errors.items()}
        except PlanRequired as refused:
            status, plan = 402, refused.detail
        except grpc.aio.AioRpcError as refused:
            if refused.code() != grpc.StatusCode.NOT_FOUND:
                raise
            status, errors = 404, {"award.badge_id": refused.details() or "no such badge"}
        else:
            name = awarded.member_badge.badge.name
            notice = (
                f"{user_id} now holds “{name}”"
                if awarded.newly_awarded
                else f"{user_id} already held “{name}”"
            )
        context = await _badges_context(downstream, entitlements, community_id)
        if status != 200:
            context["values"] = {**context["values"], **form}
        context.update(errors=errors, notice=notice)
        if plan:
            context["plan_notice"] = plan
        return page.render(
            "dashboard_settings/badges.html",
            **admin_context(access, "badges"),
            status_code=status,
            **context,
        )


__all__ = ["BadgesPage", "MembersPage", "RewardsPage", "XpSettingsPage"]
