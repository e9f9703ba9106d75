"""Bodies of the company board, company member cards and a community's opt-in."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec

from wee5_gateway.api.rewards.schemas import BadgeBody, RewardRuleBody
from wee5_gateway.api.xp.schemas import Period, Updating, XpConfigIn

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


SharedPart = Literal["xp_config", "reward_rules", "badges"]
# The order parts are applied in: badges first, so that a reward rule giving a badge finds it.
SHARED_PARTS: tuple[SharedPart, ...] = ("badges", "reward_rules", "xp_config")


class SharedRewardRule(RewardRuleBody, kw_only=True):
    """A reward rule of a shared set: its level, and for a badge reward the badge's name (badge
    ids belong to one community; the rule gives the target community's badge of that name)."""

    level: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
    badge_name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)] | None = None


class SharedConfigTemplate(msgspec.Struct, forbid_unknown_fields=True):
    """What to apply when it does not come from a community: each part the apply names."""

    xp_config: XpConfigIn | None = None
    reward_rules: Annotated[list[SharedRewardRule], msgspec.Meta(max_length=200)] | None = None
    badges: Annotated[list[BadgeBody], msgspec.Meta(max_length=200)] | None = None


class SharedConfigApplyIn(msgspec.Struct, forbid_unknown_fields=True):
    # The parts to apply to each community.
    parts: Annotated[list[SharedPart], msgspec.Meta(min_length=1, max_length=3)]
    community_ids: Annotated[list[str], msgspec.Meta(min_length=1, max_length=100)]
    # The source: one community of the company, or a template (exactly one of the two).
    from_community_id: str | None = None
    template: SharedConfigTemplate | None = None


# overridden: the community changed a part it followed itself; it no longer follows it, and
# the template's change was not applied to it.
PartStatus = Literal["changed", "unchanged", "refused", "partial", "overridden"]


class SharedPartOutcome(msgspec.Struct, omit_defaults=True):
    status: PartStatus
    # What changed, one line each ("level 5: created", "badge 'Chatterbox': updated").
    changes: list[str] = msgspec.field(default_factory=list)
    # Why it was refused (or stopped, `partial`): the HTTP status and detail the community's
    # own route would have answered.
    problem_status: int | None = None
    reason: str | None = None


class SharedCommunityOutcome(msgspec.Struct):
    community_id: str
    # changed: something changed; unchanged: it had the source's config already; refused or
    # partial: some part was refused (see `parts`).
    status: PartStatus
    parts: dict[str, SharedPartOutcome]


class SharedConfigApplied(msgspec.Struct):
    company_id: str
    # `community:<id>` or `template`
    source: str
    parts: list[SharedPart]
    communities: list[SharedCommunityOutcome]


class SharedFollowIn(msgspec.Struct, forbid_unknown_fields=True):
    # The parts of the company's template the communities follow from now on.
    parts: Annotated[list[SharedPart], msgspec.Meta(min_length=1, max_length=3)]
    community_ids: Annotated[list[str], msgspec.Meta(min_length=1, max_length=100)]


class SharedConfigState(msgspec.Struct):
    company_id: str
    # The parts the company's template holds (null: none set yet).
    template: SharedConfigTemplate
    # Per part, the communities following it.
    followers: dict[str, list[str]]
