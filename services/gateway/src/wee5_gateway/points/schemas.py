"""Bodies of the points and import routes."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

ShortId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.:-]*$")]


class PointsIn(msgspec.Struct, forbid_unknown_fields=True):
    user_id: ShortId
    # Why, e.g. "intro"; intro, benchmark_submitted, resource_downloaded and
    # subscription_renewed have configured amounts.
    reason: Reason
    # Sending the same key again changes nothing (`duplicate: true`).
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    # Omitted: the configured amount of the reason.
    points: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None


class PointsAwarded(msgspec.Struct):
    duplicate: bool
    total_xp: int
    level: int


class ImportedMemberIn(msgspec.Struct, forbid_unknown_fields=True):
    user_id: ShortId
    xp: Annotated[int, msgspec.Meta(ge=0, le=10**12)]
    message_count: Annotated[int, msgspec.Meta(ge=0)] = 0


class ImportIn(msgspec.Struct, forbid_unknown_fields=True):
    # Where the numbers come from; re-imports compare with the last import of the same source.
    source: Literal["mee6", "discord", "whop", "api"]
    members: Annotated[list[ImportedMemberIn], msgspec.Meta(min_length=1, max_length=1000)]


class ImportDone(msgspec.Struct):
    # Members whose imported XP grew (0 when the same numbers were imported before).
    imported: int
