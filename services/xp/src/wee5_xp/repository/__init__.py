"""Every SQL statement of the xp service, one module per aggregate."""

from wee5_xp.repository.analytics import AnalyticsRepository, DailyActivity
from wee5_xp.repository.company_boards import (
    CommunityXp,
    CompanyBoardRepository,
    CompanyCommunity,
)
from wee5_xp.repository.maintenance import MaintenanceRepository
from wee5_xp.repository.members import (
    ACTIVITY_COUNTERS,
    ActivityRow,
    LedgerRow,
    MemberLevel,
    MemberState,
    XpRepository,
)
from wee5_xp.repository.memberships import MembershipRepository
from wee5_xp.repository.points import PointsRepository
from wee5_xp.repository.profiles import ProfileRepository
from wee5_xp.repository.syncs import SyncStateRepository

__all__ = [
    "ACTIVITY_COUNTERS",
    "ActivityRow",
    "AnalyticsRepository",
    "CommunityXp",
    "CompanyBoardRepository",
    "CompanyCommunity",
    "DailyActivity",
    "LedgerRow",
    "MaintenanceRepository",
    "MemberLevel",
    "MemberState",
    "MembershipRepository",
    "PointsRepository",
    "ProfileRepository",
    "SyncStateRepository",
    "XpRepository",
]
