"""Following a company's template (issue 20 item 4): the company keeps one template per part
(XP config, reward rules, badges) in the gateway, communities follow parts of it, and a change
of the template is applied to the followers through the same path as a one-off apply.

The template lives in the gateway because it spans two contexts (the XP config is xp's, reward
rules and badges are rewards') and is applied through the gateway's per-community write paths
(plan gates, audit); neither service may call the other's writes for it.

A community that changes a part it follows itself — by the API, the dashboard, or anything
else — overrides it: each follower keeps the part as it held it right after the last apply,
and when the template changes, a follower whose part differs from that stops following it
and is answered `overridden` (the template's change is not applied to it). Checking there,
rather than in each of the community's write routes, covers every way a part can change.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

import msgspec

from wee5_gateway.api.companies.schemas import (
    SHARED_PARTS,
    SharedCommunityOutcome,
    SharedConfigApplied,
    SharedConfigApplyIn,
    SharedConfigState,
    SharedConfigTemplate,
    SharedFollowIn,
    SharedPart,
    SharedPartOutcome,
)
from wee5_gateway.api.companies.shared_config import (
    SharedConfig,
    apply_shared_config,
    apply_to_community,
    badge_body,
    check_template,
    community_status,
    invalid,
    list_badges,
    record_company_entry,
    rules_by_level,
)
from wee5_gateway.api.xp import rules as xp_rules
from wee5_gateway.api.xp.schemas import XpConfigIn
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.entitlements import Entitlements
from wee5_gateway.core.merge_patch import patched
from wee5_gateway.db.repository import SharedConfigRepository

SOURCE = "company_template"


def _shared(template: SharedConfigTemplate) -> SharedConfig:
    return SharedConfig(
        xp_config=template.xp_config,
        reward_rules=tuple(template.reward_rules) if template.reward_rules is not None else None,
        badges=tuple(template.badges) if template.badges is not None else None,
    )


async def stored_template(audit: Auditor, company_id: str) -> SharedConfigTemplate:
    async with audit.sessionmaker() as session:
        parts = await SharedConfigRepository(session).template(company_id)
    return msgspec.convert(parts, SharedConfigTemplate)


async def shared_state(audit: Auditor, company_id: str) -> SharedConfigState:
    template = await stored_template(audit, company_id)
    async with audit.sessionmaker() as session:
        followers = await SharedConfigRepository(session).followers(company_id)
    by_part: dict[str, list[str]] = {part: [] for part in SHARED_PARTS}
    for follower in followers:
        by_part[follower.part].append(follower.community_id)
    return SharedConfigState(company_id, template, by_part)


async def held_part(
    downstream: Downstream, community_id: str, part: SharedPart, badge_names: set[str]
) -> Any:
    """The part as the community holds it now, as JSON (what a follower is compared by);
    for badges, those of `badge_names` (the template's), by name."""
    if part == "xp_config":
        config = patched(await xp_rules.read_config(downstream, community_id), {}, XpConfigIn)
        return msgspec.to_builtins(config)
    badges = await list_badges(downstream, community_id)
    if part == "reward_rules":
        held = await rules_by_level(downstream, community_id, badges)
        return [msgspec.to_builtins(held[level]) for level in sorted(held)]
    chosen = sorted((b for b in badges if b.name in badge_names), key=lambda b: b.name)
    return [msgspec.to_builtins(badge_body(badge)) for badge in chosen]


def _badge_names(shared: SharedConfig) -> set[str]:
    return {badge.name for badge in shared.badges or ()}


async def _follow_applied(
    downstream: Downstream,
    audit: Auditor,
    company_id: str,
    outcome: SharedCommunityOutcome,
    shared: SharedConfig,
) -> None:
    """The community follows each part that now holds the template's (refused: it does not)."""
    for part, part_outcome in outcome.parts.items():
        if part_outcome.status not in ("changed", "unchanged"):
            continue
        held = await held_part(
            downstream, outcome.community_id, cast(SharedPart, part), _badge_names(shared)
        )
        async with audit.sessionmaker.begin() as session:
            await SharedConfigRepository(session).follow(
                company_id, outcome.community_id, part, held
            )


async def follow(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    company_id: str,
    data: SharedFollowIn,
) -> SharedConfigApplied:
    """The communities follow the parts of the template: it is applied to them now, and each
    part they take is followed from then on."""
    template = await stored_template(audit, company_id)
    for part in data.parts:
        if getattr(template, part) is None:
            raise invalid("parts", f"the company's template has no {part}: set it first")
    shared = _shared(template)
    parts = [part for part in SHARED_PARTS if part in data.parts]
    outcomes = []
    for community_id in dict.fromkeys(data.community_ids):
        outcome = await apply_to_community(
            downstream, entitlements, audit, company_id, SOURCE, community_id, shared, parts
        )
        await _follow_applied(downstream, audit, company_id, outcome, shared)
        outcomes.append(outcome)
    await record_company_entry(audit, "shared_config.followed", SOURCE, parts, outcomes)
    return SharedConfigApplied(company_id, SOURCE, parts, outcomes)


def template_parts(template: SharedConfigTemplate) -> list[SharedPart]:
    """The parts the body sets (422 for none, or a rule or badge named ambiguously)."""
    parts = [part for part in SHARED_PARTS if getattr(template, part) is not None]
    if not parts:
        raise invalid("xp_config", "set at least one of xp_config, reward_rules, badges")
    check_template(template)
    return parts


async def change_template(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    company_id: str,
    data: SharedConfigTemplate,
) -> SharedConfigApplied:
    """Sets the parts `data` holds (others stay) and applies each to its followers; a follower
    that changed the part itself since it was applied stops following it (`overridden`)."""
    parts = template_parts(data)
    async with audit.sessionmaker.begin() as session:
        repository = SharedConfigRepository(session)
        for part in parts:
            await repository.set_template_part(
                company_id, part, msgspec.to_builtins(getattr(data, part))
            )
        followers = await repository.followers(company_id)
    shared = _shared(data)
    following: dict[str, dict[str, Any]] = defaultdict(dict)
    for follower in followers:
        if follower.part in parts:
            following[follower.community_id][follower.part] = follower.applied
    outcomes = []
    for community_id, applied in following.items():
        overridden = await _overridden(downstream, community_id, applied)
        for part in overridden:
            async with audit.sessionmaker.begin() as session:
                await SharedConfigRepository(session).unfollow(community_id, part)
        still = [part for part in parts if part in applied and part not in overridden]
        outcome = await apply_to_community(
            downstream, entitlements, audit, company_id, SOURCE, community_id, shared, still
        )
        await refresh_followed(downstream, audit, community_id, still, _badge_names(shared))
        outcome.parts.update(
            {
                part: SharedPartOutcome(
                    "overridden",
                    reason=f"the community changed its {part} itself since the template was "
                    "applied: it no longer follows it",
                )
                for part in overridden
            }
        )
        outcome.status = community_status(outcome.parts)
        outcomes.append(outcome)
    await record_company_entry(audit, "shared_config.template_changed", SOURCE, parts, outcomes)
    return SharedConfigApplied(company_id, SOURCE, parts, outcomes)


async def _overridden(
    downstream: Downstream, community_id: str, applied: dict[str, Any]
) -> list[SharedPart]:
    """The followed parts the community holds otherwise than the template left them."""
    changed: list[SharedPart] = []
    for part in SHARED_PARTS:
        if part not in applied:
            continue
        names = {badge["name"] for badge in applied[part]} if part == "badges" else set()
        if await held_part(downstream, community_id, part, names) != applied[part]:
            changed.append(part)
    return changed


async def refresh_followed(
    downstream: Downstream,
    audit: Auditor,
    community_id: str,
    parts: list[SharedPart],
    badge_names: set[str] | None = None,
) -> None:
    """After the company applied `parts` to the community (whatever each part's outcome): the
    parts it follows are kept as they are now, so only the community's own later changes
    count as overriding. Badges: those of `badge_names`, else the ones followed so far."""
    async with audit.sessionmaker() as session:
        followed = await SharedConfigRepository(session).followed(community_id, parts)
    for part in parts:
        if part not in followed:
            continue
        names = badge_names
        if names is None:
            names = {badge["name"] for badge in followed[part]} if part == "badges" else set()
        held = await held_part(downstream, community_id, part, names)
        async with audit.sessionmaker.begin() as session:
            await SharedConfigRepository(session).refresh(community_id, part, held)


async def apply_once(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    company_id: str,
    data: SharedConfigApplyIn,
) -> SharedConfigApplied:
    """A one-off apply (`…/shared-config/apply`); a community following an applied part keeps
    following it, as the company left it."""
    applied = await apply_shared_config(downstream, entitlements, audit, company_id, data)
    for outcome in applied.communities:
        await refresh_followed(downstream, audit, outcome.community_id, applied.parts)
    return applied


async def unfollow(audit: Auditor, company_id: str, community_id: str) -> None:
    """The community follows no part of the template any more (it keeps what it holds)."""
    async with audit.sessionmaker.begin() as session:
        parts = await SharedConfigRepository(session).unfollow_all(company_id, community_id)
        if parts:
            await audit.record(
                session,
                action="shared_config.unfollowed",
                target=f"community:{community_id}",
                before={"parts": parts},
            )
