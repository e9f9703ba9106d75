"""WEE5 groups: a company for communities outside Whop. An account creates a group and puts
communities it owns into it; the group's enterprise subscription then covers them all
(billing holds groups and decides each community's plan through its company).

Whop communities need no group: billing learns their Whop company (`biz_…`) from xp, which
learns it from Whop's signed webhooks, and a community of a Whop company cannot join a group.
"""

from __future__ import annotations

import re
from typing import Annotated

from litestar import Controller, delete, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath

from wee5.billing.v1 import billing_pb2
from wee5_gateway.api.accounts.controller import account_required
from wee5_gateway.api.accounts.service import signed_in_account
from wee5_gateway.api.billing.schemas import GroupCreate, GroupMembership, GroupView
from wee5_gateway.core.access import Access, Action, Principal, requires
from wee5_gateway.core.audit import Auditor, record_audit
from wee5_gateway.core.deps import ACCOUNTS, AccessDep, AuditorDep, DownstreamDep, SessionsDep
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import ProblemError, problem_responses

GROUPS = "/api/v1/groups"
_GROUP_ID = re.compile(r"grp_[0-9a-f]{24}")


class InvalidGroupId(ProblemError):
    status = 400
    slug = "invalid-group-id"
    title = "Not a group id"


def _check_group_id(group_id: str) -> None:
    if _GROUP_ID.fullmatch(group_id) is None:
        raise InvalidGroupId("group_id is a group's id: grp_ and 24 hex digits")


class GroupsController(Controller):
    path = GROUPS
    tags = ["billing"]
    security = ACCOUNTS

    @post(
        "/",
        guards=[account_required],
        operation_id="createGroup",
        status_code=201,
        summary="Create a WEE5 group: a company for communities outside Whop (accounts; audited)",
        description="The signed-in account owns the group and may put communities it owns into "
        "it. An enterprise checkout from a community of the group buys the plan for the group: "
        "one subscription covering all its communities. Whop communities belong to their Whop "
        "company already and need no group.",
        responses=problem_responses(400, 401, 503, 504),
    )
    async def create_group(
        self,
        data: Annotated[GroupCreate, body_example({"name": "My servers"})],
        principal: NamedDependency[Principal],
        downstream: DownstreamDep,
        sessionmaker: SessionsDep,
    ) -> GroupView:
        account_id = signed_in_account(principal)
        reply = await downstream.billing.CreateGroup(
            billing_pb2.CreateGroupRequest(owner_account_id=str(account_id), name=data.name)
        )
        # After billing's commit: an unaudited group can only be an empty one nobody used.
        async with sessionmaker.begin() as session:
            await record_audit(
                session,
                principal,
                community_id=None,
                action="group.created",
                target=f"group:{reply.group_id}",
                after={"name": reply.name},
            )
        return GroupView(group_id=reply.group_id, name=reply.name)

    @put(
        "/{group_id:str}/communities/{community_id:str}",
        opt=requires(Action.MANAGE_GROUPS),
        operation_id="addCommunityToGroup",
        summary="Put a community into a group (owners of both; audited)",
        description="The caller must own the community and the group. The community is then "
        "covered by the group's subscription (the dearer of its own plan and the group's). "
        "409 for a community of a Whop company; idempotent.",
        responses=problem_responses(400, 401, 403, 404, 409, 503, 504),
    )
    async def add_community(
        self,
        group_id: FromPath[str],
        community_id: FromPath[str],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> GroupMembership:
        return await _set_member(group_id, community_id, True, access, downstream, audit)

    @delete(
        "/{group_id:str}/communities/{community_id:str}",
        opt=requires(Action.MANAGE_GROUPS),
        operation_id="removeCommunityFromGroup",
        status_code=200,
        summary="Take a community out of a group (owners of both; audited)",
        description="The community keeps only its own plan from then on. Idempotent.",
        responses=problem_responses(400, 401, 403, 404, 503, 504),
    )
    async def remove_community(
        self,
        group_id: FromPath[str],
        community_id: FromPath[str],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> GroupMembership:
        return await _set_member(group_id, community_id, False, access, downstream, audit)


async def _set_member(
    group_id: str,
    community_id: str,
    member: bool,
    access: Access,
    downstream: DownstreamDep,
    audit: Auditor,
) -> GroupMembership:
    _check_group_id(group_id)
    action = "group.community_added" if member else "group.community_removed"
    async with audit.change(action, target=f"group:{group_id}") as change:
        reply = await downstream.billing.SetGroupCommunity(
            billing_pb2.SetGroupCommunityRequest(
                group_id=group_id,
                community_id=community_id,
                owner_account_id=str(access.principal.account_id or ""),
                member=member,
            )
        )
        if reply.changed:
            change.done(after={"group_id": group_id, "member": member})
        else:
            change.unchanged()
    return GroupMembership(
        group_id=group_id, community_id=community_id, member=member, changed=reply.changed
    )
