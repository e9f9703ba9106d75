"""Bodies of the company board, company member cards and a community's opt-in."""

from __future__ import annotations

from datetime import date

import msgspec

from wee5_gateway.api.xp.schemas import Period, Updating

__all__ = ["Period"]


class CompanyLeaderboardEntry(msgspec.Struct):
    rank: int
    user_id: str
    # XP summed over the company's communities that count on its board (in the period).
    xp: int
    display_name: str | None = None
    username: str | None = None
    avatar_url: str | None = None


class CompanyLeaderboard(msgspec.Struct):
    company_id: str
    period: str
    # First day of the period shown (the period of today in UTC); null for all time.
    period_start: date | None
    entries: list[CompanyLeaderboardEntry]
    next_cursor: str | None
    # Members on the whole board.
    total: int
    updating: Updating = False


class CompanyPeriodStanding(msgspec.Struct):
    period_start: date
    # 0 when the member has no XP in the period.
    rank: int
    xp: int


class CommunityStanding(msgspec.Struct):
    community_id: str
    xp: int
    level: int
    # Whether this community counts on the company board (its XP is in the total).
    in_company_board: bool


class CompanyMemberCard(msgspec.Struct):
    company_id: str
    user_id: str
    # Summed over the communities that count on the company board.
    xp: int
    # 0 when the member is not on the board (hidden from the boards in one of them).
    rank: int
    periods: dict[str, CompanyPeriodStanding]
    # The member in each community of the company, counted or not, most XP first.
    communities: list[CommunityStanding]
    display_name: str | None = None
    username: str | None = None
    avatar_url: str | None = None
    updating: Updating = False


class CompanyBoardSettingIn(msgspec.Struct, forbid_unknown_fields=True):
    # true: the community's XP counts on its company's board; false (the default): it does not.
    in_company_board: bool


class CompanyBoardSetting(msgspec.Struct):
    community_id: str
    company_id: str
    in_company_board: bool
