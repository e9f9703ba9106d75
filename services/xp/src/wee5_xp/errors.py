"""Failures of the xp service that a caller can act on, each with its gRPC status."""

from wee5_kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from wee5_kit.pagination import InvalidPageToken


class MemberNotFound(NotFound):
    def __init__(self, community_id: str, user_id: str) -> None:
        super().__init__(f"member {user_id} has no XP in community {community_id}")


class InvalidActivity(InvalidArgument):
    """An activity xp refuses; `field` names what is wrong with it, when one field is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def in_batch(index: int, error: DomainError) -> InvalidActivity:
    """`error` of the activity at `index` of a batch, named as a caller would point at it:
    `activities[3].custom_kind: …`."""
    field = getattr(error, "field", None)
    return InvalidActivity(
        f"activities[{index}]{'.' + field if field else ''}: {error.message}",
        f"activities[{index}]{'.' + field if field else ''}",
    )


class InvalidCursor(InvalidPageToken):
    def __init__(self) -> None:
        super().__init__("leaderboard cursor")


class InvalidAnalyticsRequest(InvalidArgument):
    pass


class InvalidLeaderboardRequest(InvalidArgument):
    pass


class InvalidPoints(InvalidArgument):
    pass


class IdempotencyKeyReused(AlreadyExists):
    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different award")


class InvalidImport(InvalidArgument):
    pass


class ImportWouldCountTwice(FailedPrecondition):
    def __init__(self, community_id: str) -> None:
        super().__init__(
            f"community {community_id} is synced with MEE6: importing MEE6 XP again would count "
            "the XP the sync already turned into points; unlink it first (mee6-sync --unlink)"
        )


class InvalidXpConfig(InvalidArgument):
    """Names every field out of bounds, e.g. `post: min must not exceed max`."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in errors.items()))


class InvalidHistoryRequest(InvalidArgument):
    pass


class InvalidAdjustment(InvalidArgument):
    pass


class AdjustmentBelowZero(FailedPrecondition):
    def __init__(self, current: int, delta: int) -> None:
        super().__init__(f"the member has {current} XP; an adjustment of {delta} would go below 0")


class UnknownCustomKind(InvalidArgument):
    field = "custom_kind"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"custom kind {name!r} is not defined in this community's XP config (custom_kinds)"
        )


class InvalidPrivacy(InvalidArgument):
    pass


class CompanyNotKnown(FailedPrecondition):
    def __init__(self, community_id: str) -> None:
        super().__init__(
            f"xp does not know the company of community {community_id} yet (it learns it from "
            "the community's first Whop webhook, or when the community joins a WEE5 group)"
        )


class CompanyMemberNotFound(NotFound):
    def __init__(self, company_id: str, user_id: str) -> None:
        super().__init__(f"member {user_id} has no XP on the board of company {company_id}")
