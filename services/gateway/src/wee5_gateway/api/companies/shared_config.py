"""Shared configuration of a company (issue 20 item 4): one XP config, one set of reward rules
and one set of badges, copied from a community of the company (or a template) to several of
its communities at once.

Each community gets the copy through the same functions its own routes use (`rules.
update_config`, `changes.upsert_rule`, …): its plan gate, the services' validation and the
audit entries of those routes all apply, community by community. A community that refuses a
part (its plan, a rule xp or rewards rejects) is said so in the answer, next to the ones that
changed; nothing is skipped silently. A part a community holds already is left alone, so
applying the same copy again changes nothing.

What "the same" means per part:
- `xp_config`: the whole rule set (as `PUT …/xp-config`).
- `reward_rules`: the set of level rules: rules of the source's levels are created or replaced,
  rules of other levels removed (rewards already earned are kept, as `DELETE` keeps them). A
  rule giving a badge gives the target's badge of the same name.
- `badges`: badges of the source's names are created or redefined; the community's other
  badges are kept (deleting one would take it from its members).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import grpc
import msgspec
from litestar.exceptions import ValidationException

from wee5.rewards.v1 import rewards_pb2
from wee5_gateway.api.companies.schemas import (
    SHARED_PARTS,
    PartStatus,
    SharedCommunityOutcome,
    SharedConfigApplied,
    SharedConfigApplyIn,
    SharedConfigTemplate,
    SharedPart,
    SharedPartOutcome,
    SharedRewardRule,
)
from wee5_gateway.api.rewards import changes as reward_changes
from wee5_gateway.api.rewards.mappers import badge_view, rule_view
from wee5_gateway.api.rewards.schemas import (
    BadgeBody,
    BadgeView,
    CriteriaBody,
    DiscountBody,
    RewardRuleBody,
    RewardRuleView,
)
from wee5_gateway.api.xp import rules as xp_rules
from wee5_gateway.api.xp.schemas import XpConfigIn
from wee5_gateway.core.access import Access
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.entitlements import Entitlements
from wee5_gateway.core.merge_patch import patched
from wee5_gateway.core.problems import GRPC_TO_HTTP, UNMAPPED_GRPC_STATUS, Conflict, ProblemError

BADGE_PAGE = 200


@dataclass(frozen=True)
class SharedConfig:
    """The parts to apply, as the source has them."""

    xp_config: XpConfigIn | None = None
    reward_rules: tuple[SharedRewardRule, ...] | None = None
    badges: tuple[BadgeBody, ...] | None = None


def invalid(key: str, message: str) -> ValidationException:
    """A 422 naming the field of a well-formed body that breaks a rule."""
    return ValidationException(
        detail=f"{key}: {message}",
        extra=[{"key": key, "message": message, "source": "body"}],
        status_code=422,
    )


def check_apply(data: SharedConfigApplyIn, company_id: str, communities: set[str]) -> None:
    """422 (nothing applied) for a source or target outside the company, a template missing
    a part it is asked for, or a template that names a badge ambiguously."""
    if (data.from_community_id is None) == (data.template is None):
        raise invalid("from_community_id", "give either from_community_id or template")
    if data.from_community_id is not None and data.from_community_id not in communities:
        raise invalid(
            "from_community_id",
            f"{data.from_community_id} is not a community of the company {company_id}",
        )
    check_targets(data.community_ids, company_id, communities)
    if data.template is not None:
        for part in data.parts:
            if getattr(data.template, part) is None:
                raise invalid(f"template.{part}", f"the template has no {part} to apply")
        check_template(data.template, "template.")


def check_targets(community_ids: list[str], company_id: str, communities: set[str]) -> None:
    """422 naming the first of `community_ids` that is not a community of the company."""
    for index, community_id in enumerate(community_ids):
        if community_id not in communities:
            raise invalid(
                f"community_ids[{index}]",
                f"{community_id} is not a community of the company {company_id}",
            )


def check_template(template: SharedConfigTemplate, where: str = "") -> None:
    """422 for a template's rules with one level twice, or naming a badge by id (ids are a
    community's) or not naming one for a badge reward, and for a badge name twice; `where`:
    the template's place in the body (`template.` in an apply)."""
    levels: set[int] = set()
    for index, rule in enumerate(template.reward_rules or []):
        at = f"{where}reward_rules[{index}]"
        if rule.level in levels:
            raise invalid(f"{at}.level", f"level {rule.level} has a rule already")
        levels.add(rule.level)
        if rule.badge_id is not None:
            raise invalid(f"{at}.badge_id", "badge ids belong to one community: name the badge")
        if (rule.kind == "badge") != (rule.badge_name is not None):
            raise invalid(f"{at}.badge_name", "a badge rule (and only one) names its badge")
    names = [badge.name for badge in template.badges or []]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise invalid(f"{where}badges[{index}].name", f"badge {name!r} twice")


async def read_source(downstream: Downstream, data: SharedConfigApplyIn) -> SharedConfig:
    """The parts to apply: the template's, or the source community's as they are now."""
    if data.template is not None:
        template = data.template
        return SharedConfig(
            xp_config=template.xp_config if "xp_config" in data.parts else None,
            reward_rules=tuple(template.reward_rules or ())
            if "reward_rules" in data.parts
            else None,
            badges=tuple(template.badges or ()) if "badges" in data.parts else None,
        )
    assert data.from_community_id is not None
    source = data.from_community_id
    xp_config = (
        patched(await xp_rules.read_config(downstream, source), {}, XpConfigIn)
        if "xp_config" in data.parts
        else None
    )
    badges = (
        await list_badges(downstream, source)
        if {"badges", "reward_rules"} & set(data.parts)
        else []
    )
    return SharedConfig(
        xp_config=xp_config,
        reward_rules=tuple((await rules_by_level(downstream, source, badges)).values())
        if "reward_rules" in data.parts
        else None,
        badges=tuple(badge_body(badge) for badge in badges) if "badges" in data.parts else None,
    )


async def list_badges(downstream: Downstream, community_id: str) -> list[BadgeView]:
    badges: list[BadgeView] = []
    token = ""
    while True:
        reply = await downstream.rewards.ListBadges(
            rewards_pb2.ListBadgesRequest(
                community_id=community_id, page_size=BADGE_PAGE, page_token=token
            )
        )
        badges.extend(badge_view(badge) for badge in reply.badges)
        token = reply.next_page_token
        if not token:
            return badges


async def rules_by_level(
    downstream: Downstream, community_id: str, badges: list[BadgeView]
) -> dict[int, SharedRewardRule]:
    """The community's rules by level, a badge reward naming its badge."""
    names = {badge.id: badge.name for badge in badges}
    reply = await downstream.rewards.ListRewardRules(
        rewards_pb2.ListRewardRulesRequest(community_id=community_id)
    )
    views = [rule_view(rule) for rule in reply.rules]
    return {view.level: _shared_rule(view, names) for view in views}


def _shared_rule(view: RewardRuleView, badge_names: dict[str, str]) -> SharedRewardRule:
    discount = view.discount
    return SharedRewardRule(
        level=view.level,
        kind=view.kind,
        free_days=view.free_days,
        discount=DiscountBody(
            type=discount.type,
            percent_off=discount.percent_off,
            amount_off_minor=discount.amount_off_minor,
            currency=discount.currency,
            duration_months=discount.duration_months,
            expires_in_days=discount.expires_in_days or 0,
        )
        if discount is not None
        else None,
        badge_name=badge_names.get(view.badge_id, f"#{view.badge_id}") if view.badge_id else None,
        role_id=view.role_id,
        enabled=view.enabled,
    )


def badge_body(badge: BadgeView) -> BadgeBody:
    criteria = badge.criteria
    return BadgeBody(
        name=badge.name,
        criteria=CriteriaBody(
            kind=criteria.kind,
            threshold=criteria.threshold,
            activity_kind=criteria.activity_kind,  # type: ignore[arg-type]
            period=criteria.period,
        ),
        description=badge.description,
        image_url=badge.image_url,
        role_id=badge.role_id,
    )


@dataclass(frozen=True)
class Target:
    """One community the copy goes to, with what its own routes need."""

    community_id: str
    downstream: Downstream
    entitlements: Entitlements
    audit: Auditor


async def _apply_badges(target: Target, wanted: tuple[BadgeBody, ...], done: list[str]) -> None:
    held = {
        badge.name: badge for badge in await list_badges(target.downstream, target.community_id)
    }
    for body in wanted:
        badge = held.get(body.name)
        if badge is None:
            await reward_changes.create_badge(
                target.downstream, target.entitlements, target.audit, target.community_id, body
            )
            done.append(f"badge {body.name!r}: created")
        elif badge_body(badge) != body:
            await reward_changes.update_badge(
                target.downstream,
                target.entitlements,
                target.audit,
                target.community_id,
                int(badge.id),
                body,
            )
            done.append(f"badge {body.name!r}: updated")


async def _apply_rules(
    target: Target, wanted: tuple[SharedRewardRule, ...], done: list[str]
) -> None:
    badges = await list_badges(target.downstream, target.community_id)
    ids = {badge.name: badge.id for badge in badges}
    missing = sorted({r.badge_name for r in wanted if r.badge_name and r.badge_name not in ids})
    if missing:
        raise Conflict(
            f"the community has no badge named {', '.join(map(repr, missing))}, which the "
            "reward rules give: apply badges too"
        )
    held = await rules_by_level(target.downstream, target.community_id, badges)
    for rule in sorted(wanted, key=lambda r: r.level):
        if held.get(rule.level) == rule:
            continue
        saved = await reward_changes.upsert_rule(
            target.downstream,
            target.entitlements,
            target.audit,
            target.community_id,
            rule.level,
            _rule_body(rule, ids[rule.badge_name] if rule.badge_name else None),
        )
        done.append(f"level {rule.level}: {'created' if saved.created else 'replaced'}")
    for level in sorted(set(held) - {rule.level for rule in wanted}):
        await reward_changes.delete_rule(
            target.downstream, target.entitlements, target.audit, target.community_id, level
        )
        done.append(f"level {level}: removed")


def _rule_body(rule: SharedRewardRule, badge_id: str | None) -> RewardRuleBody:
    """The rule as the community's own route takes it, giving the community's badge."""
    fields = {field.name for field in msgspec.structs.fields(RewardRuleBody)}
    body = RewardRuleBody(**{name: getattr(rule, name) for name in fields})
    return msgspec.structs.replace(body, badge_id=badge_id)


async def _apply_xp_config(target: Target, wanted: XpConfigIn, done: list[str]) -> None:
    current = patched(
        await xp_rules.read_config(target.downstream, target.community_id), {}, XpConfigIn
    )
    if current == wanted:
        return
    await xp_rules.update_config(
        target.downstream, target.entitlements, target.audit, target.community_id, wanted
    )
    done.extend(
        field.name
        for field in msgspec.structs.fields(XpConfigIn)
        if getattr(current, field.name) != getattr(wanted, field.name)
    )


async def _apply_part(
    apply: Callable[[list[str]], Awaitable[None]],
) -> SharedPartOutcome:
    done: list[str] = []
    try:
        await apply(done)
    except ProblemError as error:
        return _refused(done, error.status, error.detail)
    except grpc.aio.AioRpcError as error:
        status = GRPC_TO_HTTP.get(error.code(), UNMAPPED_GRPC_STATUS)
        return _refused(done, status, error.details() or error.code().name)
    return SharedPartOutcome("changed" if done else "unchanged", done)


def _refused(done: list[str], status: int, reason: str) -> SharedPartOutcome:
    return SharedPartOutcome("partial" if done else "refused", done, status, reason)


async def apply_to(
    target: Target, shared: SharedConfig, parts: list[SharedPart]
) -> dict[str, SharedPartOutcome]:
    """Each part, badges first (reward rules may give them), to one community."""
    appliers: dict[SharedPart, Callable[[list[str]], Awaitable[None]] | None] = {
        "badges": partial(_apply_badges, target, shared.badges)
        if shared.badges is not None
        else None,
        "reward_rules": partial(_apply_rules, target, shared.reward_rules)
        if shared.reward_rules is not None
        else None,
        "xp_config": partial(_apply_xp_config, target, shared.xp_config)
        if shared.xp_config is not None
        else None,
    }
    outcomes: dict[str, SharedPartOutcome] = {}
    for part in SHARED_PARTS:
        apply = appliers[part]
        if part in parts and apply is not None:
            outcomes[part] = await _apply_part(apply)
    return outcomes


def community_status(outcomes: dict[str, SharedPartOutcome]) -> PartStatus:
    statuses = {outcome.status for outcome in outcomes.values()}
    for status in ("partial", "refused", "overridden", "changed"):
        if status in statuses:
            return status
    return "unchanged"


async def apply_to_community(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    company_id: str,
    source: str,
    community_id: str,
    shared: SharedConfig,
    parts: list[SharedPart],
) -> SharedCommunityOutcome:
    """The parts applied to one community by the company's admin (`audit`'s actor), with a
    `shared_config.applied` entry in the community when something changed."""
    community_audit = Auditor(audit.sessionmaker, Access(audit.actor, community_id, None, None))
    target = Target(community_id, downstream, entitlements, community_audit)
    by_part = await apply_to(target, shared, parts)
    changed = {part: o.changes for part, o in by_part.items() if o.changes}
    if changed:
        async with audit.sessionmaker.begin() as session:
            await community_audit.record(
                session,
                action="shared_config.applied",
                target=f"company:{company_id}",
                after={"source": source, "parts": parts, "changes": changed},
            )
    return SharedCommunityOutcome(community_id, community_status(by_part), by_part)


async def apply_shared_config(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    company_id: str,
    data: SharedConfigApplyIn,
) -> SharedConfigApplied:
    """Applies the source's parts to each community in turn and says what each did. Audited:
    one `shared_config.applied` entry in each community that changed (next to the entries of
    each change), and one for the company (who, from where, which parts, each outcome)."""
    shared = await read_source(downstream, data)
    source = f"community:{data.from_community_id}" if data.from_community_id else "template"
    parts = [part for part in SHARED_PARTS if part in data.parts]
    outcomes = [
        await apply_to_community(
            downstream, entitlements, audit, company_id, source, community_id, shared, parts
        )
        for community_id in dict.fromkeys(data.community_ids)
    ]
    await record_company_entry(audit, "shared_config.applied", source, parts, outcomes)
    return SharedConfigApplied(company_id, source, parts, outcomes)


async def record_company_entry(
    audit: Auditor,
    action: str,
    source: str,
    parts: list[SharedPart],
    outcomes: list[SharedCommunityOutcome],
) -> None:
    """The company's entry of an apply: who (the actor), from where, which parts, and what
    each community did."""
    async with audit.sessionmaker.begin() as session:
        await audit.record(
            session,
            action=action,
            target=source,
            after={
                "source": source,
                "parts": parts,
                "communities": {outcome.community_id: outcome.status for outcome in outcomes},
            },
        )
