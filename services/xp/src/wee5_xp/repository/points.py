"""SQL of points for actions (their idempotency records) and of imported XP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_xp.models import ImportedXp, PointAward

point_awards = cast(Table, PointAward.__table__)
imported_xp = cast(Table, ImportedXp.__table__)


class PointsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_award(
        self,
        *,
        community_id: str,
        idempotency_key: str,
        user_id: str,
        reason: str,
        points: int,
        source: str,
    ) -> bool:
        """True when the key is new (the award is now this transaction's to make)."""
        claimed = await self.session.scalar(
            insert(point_awards)
            .values(
                community_id=community_id,
                idempotency_key=idempotency_key,
                user_id=user_id,
                reason=reason,
                points=points,
                source=source,
            )
            .on_conflict_do_nothing()
            .returning(point_awards.c.idempotency_key)
        )
        return claimed is not None

    async def get_award(self, community_id: str, idempotency_key: str) -> PointAward | None:
        award: PointAward | None = await self.session.get(
            PointAward, (community_id, idempotency_key)
        )
        return award

    async def imported(
        self, community_id: str, source: str, user_ids: Sequence[str]
    ) -> dict[str, ImportedXp]:
        rows = await self.session.scalars(
            select(ImportedXp).where(
                ImportedXp.community_id == community_id,
                ImportedXp.source == source,
                ImportedXp.user_id.in_(user_ids),
            )
        )
        return {row.user_id: row for row in rows}

    async def save_imported(
        self, community_id: str, source: str, user_id: str, xp: int, message_count: int
    ) -> None:
        statement = insert(imported_xp).values(
            community_id=community_id,
            source=source,
            user_id=user_id,
            xp=xp,
            message_count=message_count,
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[
                    imported_xp.c.community_id,
                    imported_xp.c.source,
                    imported_xp.c.user_id,
                ],
                set_={
                    "xp": statement.excluded.xp,
                    "message_count": statement.excluded.message_count,
                    "updated_at": func.now(),
                },
            )
        )
