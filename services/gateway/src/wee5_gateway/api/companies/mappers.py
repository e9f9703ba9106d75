"""xp's company replies -> the gateway's response bodies."""

from __future__ import annotations

from datetime import date

from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.companies.schemas import (
    CommunityStanding,
    CompanyBoardSetting,
    CompanyLeaderboard,
    CompanyLeaderboardEntry,
    CompanyMemberCard,
    CompanyPeriodStanding,
    Period,
)
from wee5_gateway.api.xp.mappers import PERIODS
from wee5_gateway.core.problems import reply_name


def leaderboard(
    company_id: str, period: Period, reply: xp_pb2.GetCompanyLeaderboardResponse
) -> CompanyLeaderboard:
    return CompanyLeaderboard(
        company_id=company_id,
        period=period,
        period_start=date.fromisoformat(reply.period_start) if reply.period_start else None,
        entries=[
            CompanyLeaderboardEntry(
                rank=e.rank,
                user_id=e.user_id,
                xp=e.xp,
                display_name=e.profile.display_name or None,
                username=e.profile.username or None,
                avatar_url=e.profile.avatar_url or None,
            )
            for e in reply.entries
        ],
        next_cursor=reply.next_cursor or None,
        total=reply.total,
        updating=reply.updating,
    )


def member_card(m: xp_pb2.CompanyMember) -> CompanyMemberCard:
    return CompanyMemberCard(
        company_id=m.company_id,
        user_id=m.user_id,
        xp=m.xp,
        rank=m.rank,
        periods={
            reply_name(PERIODS, p.period): CompanyPeriodStanding(
                period_start=date.fromisoformat(p.period_start), rank=p.rank, xp=p.xp
            )
            for p in m.periods
        },
        communities=[
            CommunityStanding(
                community_id=c.community_id,
                xp=c.xp,
                level=c.level,
                in_company_board=c.in_company_board,
            )
            for c in m.communities
        ],
        display_name=m.profile.display_name or None,
        username=m.profile.username or None,
        avatar_url=m.profile.avatar_url or None,
        updating=m.updating,
    )


def setting(s: xp_pb2.CompanyBoardSetting) -> CompanyBoardSetting:
    return CompanyBoardSetting(
        community_id=s.community_id, company_id=s.company_id, in_company_board=s.in_company_board
    )
