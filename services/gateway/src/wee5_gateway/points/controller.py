"""`POST …/points` (admins, API keys with xp:admin) and `POST …/imports` (owners)."""

from __future__ import annotations

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.xp.v1 import xp_pb2
from wee5_gateway.access import Action, Principal, authorize
from wee5_gateway.audit import record_audit
from wee5_gateway.clients import Downstream
from wee5_gateway.points.schemas import ImportDone, ImportIn, PointsAwarded, PointsIn
from wee5_gateway.problems import problem_responses
from wee5_gateway.tiers.controller import ACCOUNTS, ACCOUNTS_OR_KEYS

Sessions = async_sessionmaker[AsyncSession]
COMMUNITY = "/api/v1/communities/{community_id:str}"
_SOURCES = {
    "mee6": xp_pb2.SOURCE_MEE6,
    "discord": xp_pb2.SOURCE_DISCORD,
    "whop": xp_pb2.SOURCE_WHOP,
    "api": xp_pb2.SOURCE_API,
}


class PointsController(Controller):
    path = f"{COMMUNITY}/points"
    tags = ["points"]
    security = ACCOUNTS_OR_KEYS

    @post(
        "/",
        status_code=200,
        operation_id="awardPoints",
        summary="Give a member points for an action (admins, API keys with xp:admin; audited). "
        "Idempotent on idempotency_key.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def award_points(
        self,
        community_id: FromPath[str],
        data: JSONBody[PointsIn],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        downstream: NamedDependency[Downstream],
    ) -> PointsAwarded:
        await authorize(principal, community_id, Action.AWARD_POINTS, sessionmaker)
        reply = await downstream.xp.AwardPoints(
            xp_pb2.AwardPointsRequest(
                community_id=community_id,
                user_id=data.user_id,
                points=data.points or 0,
                reason=data.reason,
                idempotency_key=data.idempotency_key,
            )
        )
        if not reply.duplicate:
            # xp committed first: the audit log never records an award that did not happen.
            async with sessionmaker.begin() as session:
                await record_audit(
                    session,
                    principal,
                    community_id=community_id,
                    action="points.awarded",
                    target=f"member:{data.user_id}",
                    after={
                        "reason": data.reason,
                        "points": data.points,
                        "idempotency_key": data.idempotency_key,
                        "total_xp": reply.total_xp,
                    },
                )
        return PointsAwarded(duplicate=reply.duplicate, total_xp=reply.total_xp, level=reply.level)


class ImportsController(Controller):
    path = f"{COMMUNITY}/imports"
    tags = ["imports"]
    security = ACCOUNTS

    @post(
        "/",
        status_code=200,
        operation_id="importMembers",
        summary="Import members' XP from another bot, up to 1000 per call (owners; audited). "
        "Importing the same numbers again changes nothing; newer ones add the difference.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def import_members(
        self,
        community_id: FromPath[str],
        data: JSONBody[ImportIn],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        downstream: NamedDependency[Downstream],
    ) -> ImportDone:
        await authorize(principal, community_id, Action.IMPORT_MEMBERS, sessionmaker)
        reply = await downstream.xp.ImportMembers(
            xp_pb2.ImportMembersRequest(
                community_id=community_id,
                source=_SOURCES[data.source],
                members=[
                    xp_pb2.ImportedMember(user_id=m.user_id, xp=m.xp, message_count=m.message_count)
                    for m in data.members
                ],
            )
        )
        async with sessionmaker.begin() as session:
            await record_audit(
                session,
                principal,
                community_id=community_id,
                action="members.imported",
                target=f"community:{community_id}",
                after={
                    "source": data.source,
                    "members": len(data.members),
                    "imported": reply.imported,
                },
            )
        return ImportDone(imported=reply.imported)
