"""Every SQL statement of roles and API keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_gateway.models import ApiKey, CommunityRole, User


class RolesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, community_id: str) -> list[CommunityRole]:
        return list(
            await self.session.scalars(
                select(CommunityRole)
                .where(CommunityRole.community_id == community_id)
                .order_by(CommunityRole.created_at, CommunityRole.account_id)
            )
        )

    async def get_for_update(
        self, community_id: str, account_id: uuid.UUID
    ) -> CommunityRole | None:
        role: CommunityRole | None = await self.session.scalar(
            select(CommunityRole)
            .where(
                CommunityRole.community_id == community_id,
                CommunityRole.account_id == account_id,
            )
            .with_for_update()
        )
        return role

    async def count_owners(self, community_id: str) -> int:
        # Locks the owners' rows so two concurrent demotions cannot both leave "one other owner".
        owners = await self.session.scalars(
            select(CommunityRole.account_id)
            .where(CommunityRole.community_id == community_id, CommunityRole.role == "owner")
            .with_for_update()
        )
        return len(list(owners))

    async def account_exists(self, account_id: uuid.UUID) -> bool:
        return await self.session.get(User, account_id) is not None

    async def member_id_taken(
        self, community_id: str, member_user_id: str, account_id: uuid.UUID
    ) -> bool:
        other = await self.session.scalar(
            select(CommunityRole.account_id).where(
                CommunityRole.community_id == community_id,
                CommunityRole.member_user_id == member_user_id,
                CommunityRole.account_id != account_id,
            )
        )
        return other is not None

    async def delete(self, role: CommunityRole) -> None:
        await self.session.delete(role)
        await self.session.flush()


class ApiKeysRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, community_id: str) -> list[ApiKey]:
        return list(
            await self.session.scalars(
                select(ApiKey)
                .where(ApiKey.community_id == community_id)
                .order_by(ApiKey.created_at.desc())
            )
        )

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        await self.session.refresh(key)
        return key

    async def revoke(self, community_id: str, key_id: uuid.UUID) -> ApiKey | None:
        """The key, revoked now if it was live; None if this community has no such key."""
        key: ApiKey | None = await self.session.scalar(
            select(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.community_id == community_id)
            .with_for_update()
        )
        if key is not None and key.revoked_at is None:
            await self.session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=func.now())
            )
            key.revoked_at = datetime.now(UTC)
        return key
